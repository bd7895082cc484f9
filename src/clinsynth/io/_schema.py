"""A small schema checker for JSON read from untrusted files (model bundles).

Every field a loader uses is declared with its type, range and size before anything is built
from it, so that a tampered file gives one clear error instead of a traceback deep inside numpy
or torch, or an allocation of whatever size the file asks for::

    spec = mapping({"rows": integer(0, 10**9), "name": name()}, required=("rows",))
    check_json(doc, spec, "Model 'm': manifest.json")   # BundleError listing every problem

A check is a function ``check(value, path, problems)`` that appends what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from clinsynth.errors import BundleError, ClinsynthError
from clinsynth.io._limits import shorten

Check = Callable[[Any, str, list[str]], None]

#: Most problems listed in one error.
MAX_PROBLEMS = 8
#: Characters that may not appear in a name used as a file name or a key.
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.?$")


def _at(path: str) -> str:
    return path or "the document"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _null_ok(check: Check, null: bool) -> Check:
    if not null:
        return check

    def nullable(value: Any, path: str, problems: list[str]) -> None:
        if value is not None:
            check(value, path, problems)

    return nullable


def nullable(check: Check) -> Check:
    """``check``, or null."""
    return _null_ok(check, True)


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo:,}, {hi:,}]"
    if lo is not None:
        return f" >= {lo:,}"
    if hi is not None:
        return f" <= {hi:,}"
    return ""


def integer(lo: int | None = None, hi: int | None = None, *, null: bool = False) -> Check:
    """An int (not a bool) within ``[lo, hi]``."""

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not _is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.append(f"{_at(path)} must be an integer{_range(lo, hi)}; got {shorten(value)}")

    return _null_ok(check, null)


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    null: bool = False,
    finite: bool = True,
) -> Check:
    """An int or float within ``[lo, hi]``; NaN and infinities only when ``finite=False``."""

    def check(value: Any, path: str, problems: list[str]) -> None:
        ok = _is_number(value)
        if ok and not math.isfinite(value):
            ok = not finite
        elif ok:
            ok = (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            kind = "a finite number" if finite else "a number"
            problems.append(f"{_at(path)} must be {kind}{_range(lo, hi)}; got {shorten(value)}")

    return _null_ok(check, null)


def boolean(*, null: bool = False) -> Check:
    def check(value: Any, path: str, problems: list[str]) -> None:
        if not isinstance(value, bool):
            problems.append(f"{_at(path)} must be true or false; got {shorten(value)}")

    return _null_ok(check, null)


def text(
    max_len: int = 1000,
    *,
    null: bool = False,
    choices: Iterable[str] | None = None,
    safe_name: bool = False,
) -> Check:
    """A string of at most ``max_len`` characters, one of ``choices`` when given;
    ``safe_name``: no path separator, control character, and not ``.`` or ``..``."""
    allowed = tuple(choices) if choices is not None else None

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not isinstance(value, str) or len(value) > max_len:
            problems.append(
                f"{_at(path)} must be a string of at most {max_len:,} characters; "
                f"got {shorten(value)}"
            )
        elif allowed is not None and value not in allowed:
            problems.append(f"{_at(path)} must be one of {list(allowed)}; got {shorten(value)}")
        elif safe_name and (not value or _UNSAFE_NAME.search(value)):
            problems.append(
                f"{_at(path)} must be a name without path separators or control characters; got "
                f"{shorten(value)}"
            )

    return _null_ok(check, null)


def name(max_len: int = 1000, *, null: bool = False) -> Check:
    """A table or column name: a string that is safe as a file name."""
    return text(max_len, null=null, safe_name=True)


def array(
    item: Check | None = None,
    *,
    max_len: int = 100_000,
    min_len: int = 0,
    length: int | None = None,
    null: bool = False,
) -> Check:
    """A list of at most ``max_len`` items (exactly ``length`` when given), each ``item``."""

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not isinstance(value, list):
            problems.append(f"{_at(path)} must be a list; got {shorten(value)}")
            return
        if length is not None and len(value) != length:
            problems.append(f"{_at(path)} must have {length:,} items; got {len(value):,}")
            return
        if not min_len <= len(value) <= max_len:
            problems.append(
                f"{_at(path)} must have {min_len:,} to {max_len:,} items; got {len(value):,}"
            )
            return
        if item is not None:
            for i, v in enumerate(value):
                item(v, f"{path or 'item'}[{i}]", problems)
                if len(problems) > MAX_PROBLEMS:
                    return

    return _null_ok(check, null)


def mapping(
    fields: dict[str, Check] | None = None,
    *,
    required: Iterable[str] = (),
    values: Check | None = None,
    keys: Check | None = None,
    extra: bool = False,
    max_len: int = 100_000,
    null: bool = False,
) -> Check:
    """An object with the declared ``fields`` (``required`` ones must be present); other keys
    are refused unless ``extra`` (then checked by ``keys``/``values`` when given)."""
    fields = fields or {}
    needed = tuple(required)

    def check(value: Any, path: str, problems: list[str]) -> None:
        if not isinstance(value, dict):
            problems.append(f"{_at(path)} must be an object; got {shorten(value)}")
            return
        if len(value) > max_len:
            problems.append(
                f"{_at(path)} must have at most {max_len:,} entries; got {len(value):,}"
            )
            return
        for key in needed:
            if key not in value:
                problems.append(f"{_join(path, key)} is missing")
        for key, v in value.items():
            where = _join(path, key) if isinstance(key, str) and len(key) < 80 else path
            if key in fields:
                fields[key](v, where, problems)
            elif not extra and values is None:
                problems.append(f"{_at(path)} has an unexpected entry {shorten(key)}")
            else:
                if keys is not None:
                    keys(key, f"{_at(path)} key", problems)
                if values is not None:
                    values(v, where, problems)
            if len(problems) > MAX_PROBLEMS:
                return

    return _null_ok(check, null)


def any_of(*checks: Check, what: str) -> Check:
    """The value passes one of ``checks`` (``what`` describes them in the message)."""

    def check(value: Any, path: str, problems: list[str]) -> None:
        for candidate in checks:
            trial: list[str] = []
            candidate(value, path, trial)
            if not trial:
                return
        problems.append(f"{_at(path)} must be {what}; got {shorten(value)}")

    return check


def scalar(max_len: int = 10_000) -> Check:
    """A JSON scalar: null, bool, number (NaN allowed) or a bounded string."""
    return any_of(
        text(max_len),
        number(finite=False),
        boolean(),
        lambda v, p, pr: None if v is None else pr.append(p),
        what="a number, a string, true/false or null",
    )


def json_value(max_items: int = 100_000, max_len: int = 10_000) -> Check:
    """Any JSON value whose lists and objects hold at most ``max_items`` items and strings at
    most ``max_len`` characters (depth is bounded when the document is read)."""
    leaf = scalar(max_len)

    def check(value: Any, path: str, problems: list[str]) -> None:
        if isinstance(value, list):
            array(check, max_len=max_items)(value, path, problems)
        elif isinstance(value, dict):
            mapping(values=check, keys=text(max_len), max_len=max_items)(value, path, problems)
        else:
            leaf(value, path, problems)

    return check


def check_json(
    doc: Any, spec: Check, where: str, error: type[ClinsynthError] = BundleError
) -> None:
    """Raise one ``error`` listing what in ``doc`` does not meet ``spec``.

    Examples
    --------
    >>> check_json({"rows": 10}, mapping({"rows": integer(0, 100)}), "manifest.json")
    >>> check_json({"rows": 10**12}, mapping({"rows": integer(0, 100)}), "manifest.json")
    Traceback (most recent call last):
    ...
    clinsynth.errors.BundleError: manifest.json is not what clinsynth wrote: rows must be \
an integer in [0, 100]; got 1000000000000. It was damaged or tampered with; fit and save the \
model again.
    """
    problems: list[str] = []
    spec(doc, "", problems)
    if problems:
        raise_problems(problems, where, error)


def raise_problems(
    problems: list[str], where: str, error: type[ClinsynthError] = BundleError
) -> None:
    """One error for ``problems`` found in ``where`` (at most :data:`MAX_PROBLEMS` listed)."""
    shown = problems[:MAX_PROBLEMS]
    more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
    raise error(
        f"{where} is not what clinsynth wrote: {'; '.join(shown)}{more}. It was damaged or "
        "tampered with; fit and save the model again.",
        problems,
    )
