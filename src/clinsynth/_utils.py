"""Small shared helpers: random state, progress reporting, device choice."""

from __future__ import annotations

from collections.abc import Callable
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
