"""Checks on output paths before a command starts its work.

A command must never destroy its own input, replace a file or folder that is not one of its own
outputs, or find out after an hour of training that it cannot write its result.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from clinsynth.errors import DataError
from clinsynth.io._formats import writable_suffixes

OutputKind = Literal["model", "table", "tables", "metadata"]
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f:*?\"<>|]")


def is_model_bundle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a clinsynth model bundle (folder or zip with its manifest)."""
    path = Path(path)
    try:
        if path.is_dir():
            head = (path / "manifest.json").read_bytes()[:4096]
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf, zf.open("manifest.json") as member:
                head = member.read(4096)
        else:
            return False
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return b'"clinsynth-model"' in head


def _same_or_inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output_path(
    inputs: Iterable[str | os.PathLike | None], output: str | os.PathLike, kind: OutputKind
) -> None:
    """Refuse an output that would destroy an input or something that is not ours.

    Parameters
    ----------
    inputs : paths
        The files and folders the command reads (None entries are skipped).
    output : path
        Where it will write.
    kind : {"model", "table", "tables", "metadata"}
        ``model``: a bundle folder or zip (an existing path must be a clinsynth model or an
        empty folder); ``tables``: a folder of table files (an existing folder may hold only
        table files); ``table`` and ``metadata``: one file (an existing folder is refused).

    Raises
    ------
    DataError
        Saying which path, what it would destroy, and what to do instead.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> data = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = data.write_text("a\\n1\\n")
    >>> check_output_path([data], data, "model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinsynth.errors.DataError: The output ... is also an input: ...
    """
    out = Path(output).absolute()
    resolved = out.resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).absolute().resolve()
        if _same_or_inside(source, resolved):
            what = "is also an input" if source == resolved else f"holds the input '{item}'"
            raise DataError(
                f"The output '{output}' {what}: writing there would destroy the data it is made "
                "from. Give another output path with -o."
            )
    if os.path.lexists(out):
        _check_existing(out, output, kind)
    _check_writable(out, output)


def _check_existing(out: Path, output: str | os.PathLike, kind: OutputKind) -> None:
    if kind == "model":
        if out.is_dir() and not any(out.iterdir()):
            return
        if not is_model_bundle(out):
            what = "a folder" if out.is_dir() else "a file"
            raise DataError(
                f"The output '{output}' is {what} that is not a clinsynth model; fit will not "
                "replace it. Give a new path with -o (or the path of a model to overwrite)."
            )
        return
    if kind == "tables":
        if not out.is_dir():
            raise DataError(
                f"The output '{output}' is a file; the tables are written to a folder. Give a "
                "new folder path with -o."
            )
        others = [p.name for p in out.iterdir() if p.suffix.lower() not in writable_suffixes()]
        if others:
            raise DataError(
                f"The output folder '{output}' holds other things than tables "
                f"({', '.join(sorted(others)[:3])}); it would be replaced as a whole. Give a new "
                "or empty folder with -o."
            )
        return
    if out.is_dir():
        raise DataError(
            f"The output '{output}' is a folder; give a file path with -o (e.g. "
            f"{Path(output) / 'out.csv' if kind == 'table' else 'metadata.json'})."
        )


def _check_writable(out: Path, output: str | os.PathLike) -> None:
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(
            f"Cannot write '{output}': '{folder}' is a file, not a folder. Choose another path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(
            f"Cannot write '{output}': the folder '{folder}' is not writable. Choose a folder "
            "you can write to."
        )


def unsafe_file_name(name: object) -> bool:
    """Whether ``name`` cannot be used as one file name inside a folder.

    >>> unsafe_file_name("patients"), unsafe_file_name("../x"), unsafe_file_name(".hidden")
    (False, True, True)
    """
    text = str(name)
    return not text or text in (".", "..") or text.startswith(".") or bool(_UNSAFE.search(text))


def check_file_name(name: str, what: str = "table") -> str:
    """``name`` if it is safe as one file name (no separators, control or reserved characters,
    not ``.``/``..``, not hidden); otherwise a :class:`~clinsynth.errors.DataError`.

    >>> check_file_name("patients")
    'patients'
    >>> check_file_name("../../ESCAPED")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinsynth.errors.DataError: The table name '../../ESCAPED' cannot be a file name ...
    """
    text = str(name)
    if unsafe_file_name(text):
        raise DataError(
            f"The {what} name {text[:80]!r} cannot be a file name (it is empty, hidden, or holds a "
            "path separator or a character such as / \\ : * ? < > |), so it could write outside "
            f"the output folder. Rename the {what} (in the metadata or the database)."
        )
    return text
