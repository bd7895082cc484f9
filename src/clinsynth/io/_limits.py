"""Limits on what clinsynth reads and allocates: untrusted files never decide how much memory,
disk or recursion a command uses.

* JSON (bundle members, metadata files): at most :data:`MAX_JSON_BYTES`, nested at most
  :data:`MAX_JSON_DEPTH` deep; a document nested deeper than Python's parser can follow is a
  clear error, not a ``RecursionError``.
* Values quoted in error messages are cut to a few dozen characters (:func:`shorten`): a 10 MB
  string in a file is never echoed in full.
* Memory and disk: :func:`check_memory` and :func:`check_disk` compare what a job needs with
  what the machine has *before* the job starts, and say both numbers.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from clinsynth.errors import ClinsynthError

#: Largest JSON document read (a bundle's manifest, transformer or model state; metadata).
MAX_JSON_BYTES = 64 * 2**20
#: Deepest nesting of JSON arrays and objects accepted (clinsynth writes fewer than 10 levels).
MAX_JSON_DEPTH = 64
#: Characters of a value quoted in an error message.
QUOTE_CHARS = 60


def shorten(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length said.

    >>> shorten("x" * 10_000_000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (10,000,002 characters)"
    >>> shorten(12)
    '12'
    """
    if isinstance(value, str | bytes) and len(value) > 4 * limit:
        text = repr(value[: 2 * limit])  # no repr of a huge value just to cut it
    elif isinstance(value, list | tuple | dict | set) and len(value) > limit:
        text = f"<{type(value).__name__} of {len(value):,} items>"
    else:
        text = repr(value)
    if len(text) <= limit:
        return text
    total = len(repr(value)) if not isinstance(value, str | bytes) else len(value) + 2
    return f"{text[:limit]}... ({total:,} characters)"


def json_depth(doc: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON document (iteratively)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads_limited(raw: bytes | str, where: str, error: type[ClinsynthError], fix: str = "") -> Any:
    """Parse JSON within :data:`MAX_JSON_BYTES` and :data:`MAX_JSON_DEPTH`.

    Parameters
    ----------
    raw : bytes or str
    where : str
        What the document is, for the message ("Model 'm': manifest.json").
    error : type
        The :class:`~clinsynth.errors.ClinsynthError` subclass to raise.
    fix : str
        How to fix it, appended to the message.

    Examples
    --------
    >>> from clinsynth.errors import DataError
    >>> loads_limited(b'{"a": [1, 2]}', "x.json", DataError)
    {'a': [1, 2]}
    >>> loads_limited("[" * 200_000 + "]" * 200_000, "x.json", DataError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinsynth.errors.DataError: x.json is nested deeper than 64 levels ...
    """
    if len(raw) > MAX_JSON_BYTES:
        raise error(
            f"{where} is larger than the {MAX_JSON_BYTES // 2**20} MB a "
            f"clinsynth JSON document may be. It was not written by clinsynth, or is damaged. {fix}"
        )
    try:
        doc = json.loads(raw)
    except RecursionError:
        doc = None
        deep = True
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(
            f"{where} is not valid JSON ({shorten(str(exc), 120)}). {fix}".strip()
        ) from None
    else:
        deep = json_depth(doc) > MAX_JSON_DEPTH
    if deep:
        raise error(
            f"{where} is nested deeper than {MAX_JSON_DEPTH} levels (arrays inside arrays...), "
            f"which clinsynth never writes. It was not written by clinsynth, or was tampered with. "
            f"{fix}".strip()
        )
    return doc


# --------------------------------------------------------------------------- memory and disk
def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``.

    >>> human_bytes(3 * 2**30)
    '3.0 GB'
    """
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            if unit == "PB" and abs(n) >= 1e6:
                return f"{n:.3g} PB"
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"  # pragma: no cover - the loop returns


def count(n: float) -> str:
    """``1234567`` -> ``'1,234,567'``; astronomically large counts in scientific notation.

    >>> count(10**10), count(10**30)
    ('10,000,000,000', '1e+30')
    """
    return f"{int(n):,}" if n < 1e15 else f"{float(n):.3g}"


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the smaller of the machine's available
    memory and what its control group (container) allows; None when unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text().strip())
            found.append(max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(needed: float, what: str, fix: str, error: type[ClinsynthError]) -> None:
    """Raise ``error`` when ``needed`` bytes exceed the memory available.

    >>> from clinsynth.errors import SamplingError
    >>> check_memory(1024, "Sampling 10 rows", "Sample fewer rows.", SamplingError)
    """
    available = available_memory()
    if available is not None and needed > available:
        raise error(
            f"{what} needs about {human_bytes(needed)} of memory; this machine has "
            f"{human_bytes(available)} available. {fix}"
        )


def check_disk(path: str | os.PathLike, needed: float, what: str) -> None:
    """Raise a :class:`~clinsynth.errors.DataError` when the file system of ``path`` has less
    free space than ``needed`` bytes."""
    from clinsynth.errors import DataError

    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise DataError(
            f"{what} needs about {human_bytes(needed)} of disk at '{folder}'; only "
            f"{human_bytes(free)} is free. Free some space, write elsewhere, or make fewer rows."
        )


def check_table_disk(path: str | os.PathLike, num_rows: int, num_columns: int) -> None:
    """Refuse to start making a table whose file would not fit on the disk of ``path``."""
    from clinsynth.io._formats import format_of

    # Bytes a cell takes in the file, roughly (numbers and short codes; text is larger).
    fmt = format_of(path, writing=True)
    per_cell = fmt.cell_bytes if fmt is not None else 10
    needed = int(num_rows) * max(int(num_columns), 1) * per_cell
    if needed > 64 * 2**20:  # small files: no need to look
        check_disk(path, needed, f"Writing {count(num_rows)} rows to '{path}'")
