"""Atomic writes: write to a temporary sibling, then rename over the target.

A failed or interrupted run never leaves a half-written file, and never damages the file that was
there before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target``.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    # mkstemp/mkdtemp create private (0600/0700) entries; give the result the permissions a
    # plain open()/mkdir() would have under the user's umask.
    mask = _umask()
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        os.chmod(tmp, 0o777 & ~mask)
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent, suffix=target.suffix)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~mask)
    try:
        yield tmp
        if directory:
            _replace_dir(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists() and not target.is_dir():
        target.unlink()
    if target.is_dir():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result over ``target`` if it succeeds."""
    with atomic_path(target) as tmp:
        writer(tmp)
