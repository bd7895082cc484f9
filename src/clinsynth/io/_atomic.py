"""Atomic writes: write to a temporary sibling, then rename over the target.

A failed or interrupted run never leaves a half-written file, and never damages the file that was
there before:

* temporary entries are hidden siblings named ``.<target>.tmp-<pid>-<random>``: recognisable,
  and removed by the next write to the same target (or the next load of it) once the process
  that made them is gone, whether it failed or was killed;
* a folder (a model bundle) is replaced by an atomic exchange of the two folders where the
  system has one (Linux ``renameat2(RENAME_EXCHANGE)``), so the target path always holds a
  complete copy. Elsewhere the old copy is first renamed to ``.<target>.old-<pid>`` and is put
  back by the next write or load if the process died before the new copy took its place;
* folders created for the output are removed again when the write fails;
* the operating system's errors (no such folder, permission denied, disk full) become a
  :class:`~clinsynth.errors.DataError` naming the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from clinsynth.errors import ClinsynthError, DataError

#: Use the atomic folder exchange when the system offers it (tests turn it off).
USE_EXCHANGE = True
#: Leftovers whose name carries no process id are stale after this many seconds.
_UNTAGGED_STALE_S = 3600.0
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?:(?P<pid>\d+)(?:-|$))?")


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
    created = _make_parents(target)
    tmp: Path | None = None
    try:
        recover(target)
        tmp = _make_temp(target, directory)
        yield tmp
        if directory:
            _replace_dir(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            _remove(tmp)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, ClinsynthError):
            raise _write_error(target, exc) from None
        raise


def _make_parents(target: Path) -> list[Path]:
    """Create the missing folders above ``target``; return them, outermost first."""
    missing: list[Path] = []
    folder = target.absolute().parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise DataError(
            f"Cannot write '{target}': '{folder}' is a file, not a folder. Choose another path."
        )
    made: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            made.append(path)
    except OSError as exc:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise _write_error(target, exc) from None
    return made


def _make_temp(target: Path, directory: bool) -> Path:
    prefix = f".{target.name}.tmp-{os.getpid()}-"
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
    return tmp


def _write_error(target: Path, exc: OSError) -> DataError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        fix = "Free some disk space or write elsewhere."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "Choose a folder you can write to."
    else:
        fix = "Check the path, or choose another one."
    where = exc.filename if exc.filename else target
    return DataError(f"Cannot write '{target}' ({reason}: '{where}'). {fix}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


# --------------------------------------------------------------------------- folders
def _replace_dir(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` at ``target``; ``target`` never stops holding a complete copy
    (old or new) where the system can exchange two paths atomically."""
    if not os.path.lexists(target):
        os.replace(tmp, target)
        return
    if _exchange(tmp, target):  # tmp now holds the old copy
        _remove(tmp)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    _remove(old)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not available."""
    if not USE_EXCHANGE or not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # this file system cannot exchange: use the two renames
    raise OSError(err, os.strerror(err), str(b))


# --------------------------------------------------------------------------- recovery
def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no harmless way to probe a process: assume it is alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def leftovers(target: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(path, "tmp" or "old")`` of the temporary and kept-old entries of ``target`` whose
    writer is gone."""
    target = Path(target)
    folder = target.parent
    if not folder.is_dir():
        return []
    found = []
    prefixes = (f".{target.name}.tmp-", f".{target.name}.old-")
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(prefixes)]
    except OSError:
        return []
    for path in entries:
        match = _LEFTOVER.match(path.name)
        if match is None or match["name"] != target.name:
            continue
        stale = False
        if match["pid"] is not None:
            stale = not _alive(int(match["pid"]))
        else:
            with contextlib.suppress(OSError):
                stale = time.time() - path.lstat().st_mtime > _UNTAGGED_STALE_S
        if stale:
            found.append((path, match["kind"]))
    return found


def recover(target: str | os.PathLike) -> bool:
    """Finish what an interrupted write to ``target`` left: put a kept old copy back when the
    target is missing, and remove the temporary entries of dead processes.

    Returns True when an old copy was put back.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".model.old-999999999").mkdir()
    >>> recover(folder / "model"), (folder / "model").is_dir()
    (True, True)
    """
    target = Path(target)
    restored = False
    stale = leftovers(target)
    olds = [p for p, kind in stale if kind == "old"]
    if olds and not os.path.lexists(target):
        newest = max(olds, key=_mtime)
        with contextlib.suppress(OSError):
            os.replace(newest, target)
            restored = True
    for path, _ in stale:
        if os.path.lexists(path):
            _remove(path)
    return restored


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result over ``target`` if it succeeds."""
    with atomic_path(target) as tmp:
        writer(tmp)
