"""Small shared helpers: random state, progress reporting, device choice, BLAS threads."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Progress callback: ``callback(total, completed, message)``. The CLI shows it with rich, the
#: dashboard with ``st.progress``; the library never prints.
ProgressCallback = Callable[[int, int, str], None]


def make_rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A local numpy Generator (never the global random state).

    >>> bool(make_rng(0).integers(10) == make_rng(0).integers(10))
    True
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def derive_seed(rng: np.random.Generator) -> int:
    """A child seed drawn from ``rng`` (for torch generators and sub-components)."""
    return int(rng.integers(0, 2**31 - 1))


def report(
    callback: ProgressCallback | None, total: int, completed: int, message: str = ""
) -> None:
    if callback is not None:
        callback(total, completed, message)


def text_dtype() -> Any:
    """pandas' default dtype for text: ``str`` (a StringDtype) from pandas 3, ``object`` before.

    Decoded text columns take it when the real column had it, so that a synthetic table has
    the dtypes ``pd.read_csv`` gives the real one.
    """
    import pandas as pd

    dtype = pd.api.types.pandas_dtype("str")
    return dtype if isinstance(dtype, pd.StringDtype) else object


_blas_lock = threading.Lock()
_blas_users = 0
_blas_state: dict[str, Any] = {}


def _controller() -> Any:
    """One threadpoolctl controller (finding the libraries takes milliseconds; limiting
    through it, microseconds)."""
    if "controller" not in _blas_state:
        from threadpoolctl import ThreadpoolController

        _blas_state["controller"] = ThreadpoolController()
    return _blas_state["controller"]


@contextlib.contextmanager
def one_openmp_thread() -> Iterator[None]:
    """Run the block with OpenMP (torch's intra-op threads) on one thread, in this thread only.

    OpenMP keeps its thread count per calling thread, so threads that each make a block of
    rows can each run single-threaded without changing the rest of the process.
    """
    with _controller().limit(limits=1, user_api="openmp"):
        yield


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with the BLAS libraries (numpy's OpenBLAS) on one thread.

    Sampling's matrix products are a few tens of milliseconds each and run in threads that
    already make blocks side by side: a multi-threaded BLAS only adds threads spinning for work
    (measured: 10x the CPU time of the product on two cores). Nested and concurrent uses share
    one limit, set by the first to enter and lifted by the last to leave; while it is set, every
    thread of the process sees one BLAS thread.

    >>> with one_blas_thread():
    ...     pass
    """
    global _blas_users
    with _blas_lock:
        if _blas_users == 0:
            _blas_state["limit"] = _controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_state.pop("limit").restore_original_limits()
