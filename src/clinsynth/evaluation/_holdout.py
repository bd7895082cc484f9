"""Real rows kept aside from training, the evidence of privacy and utility.

``clinsynth fit --holdout 0.2`` (and the dashboard's "keep aside") trains on 80% of the rows and
writes the other 20% beside the model, never inside its bundle: the model folder ``model`` (or
``model.zip``) gets ``model.holdout.csv`` next to it. ``clinsynth evaluate ... --model model``
finds that file, uses it as the holdout, and removes those rows from REAL when REAL is the whole
file the model was fitted on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from clinsynth.errors import DataError, ParameterError

__all__ = ["exclude_holdout", "holdout_path", "split_holdout"]

HOLDOUT_SUFFIX = ".holdout.csv"


def holdout_path(model_path: str | os.PathLike) -> Path:
    """Where the rows kept aside from ``model_path``'s training live: beside the bundle.

    >>> holdout_path("out/model").as_posix(), holdout_path("out/model.zip").as_posix()
    ('out/model.holdout.csv', 'out/model.holdout.csv')
    """
    path = Path(model_path)
    stem = path.stem if path.suffix.lower() == ".zip" else path.name
    return path.with_name(stem + HOLDOUT_SUFFIX)


def split_holdout(
    data: pd.DataFrame, fraction: float, seed: int | None = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(training rows, held-out rows)``: a random ``fraction`` of the rows kept aside.

    Both keep the original row order and get a fresh index.

    >>> df = pd.DataFrame({"x": range(10)})
    >>> train, holdout = split_holdout(df, 0.2, seed=0)
    >>> len(train), len(holdout)
    (8, 2)
    """
    ok = isinstance(fraction, int | float) and not isinstance(fraction, bool)
    if not ok or not 0 < fraction <= 0.5:
        raise ParameterError(
            f"The holdout share must be a number in (0, 0.5], e.g. 0.2. Got {fraction!r}."
        )
    n = len(data)
    k = int(round(fraction * n))
    if k < 1 or n - k < 2:
        raise ParameterError(
            f"Cannot keep {fraction:.0%} of {n} rows aside: the holdout and the training part "
            "both need rows. Use more data or leave the holdout out."
        )
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, size=k, replace=False)] = True
    return data[~held].reset_index(drop=True), data[held].reset_index(drop=True)


def _keys(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Comparable cells (numbers as floats, everything else as text, missing as one marker)
    and each row's occurrence number among identical rows."""
    out = pd.DataFrame(index=df.index)
    for col in columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("float64").map(repr)
        else:
            out[col] = s.astype("object").map(str)
        out.loc[s.isna().to_numpy(), col] = "<NA>"
    out["__occurrence"] = out.groupby(columns, sort=False, dropna=False).cumcount()
    return out


def exclude_holdout(
    real: pd.DataFrame, holdout: pd.DataFrame, num_training_rows: int
) -> tuple[pd.DataFrame, int]:
    """REAL without the held-out rows: ``(training rows, how many were removed)``.

    REAL is either the training part already (``num_training_rows`` rows: nothing is removed)
    or the whole file the model was fitted on (training plus held-out rows: one REAL row is
    removed per held-out row; identical rows are interchangeable, so which copy goes does not
    change the result). Anything else is refused.

    >>> real = pd.DataFrame({"x": [1, 2, 3, 4]})
    >>> train, removed = exclude_holdout(real, pd.DataFrame({"x": [3]}), 3)
    >>> train["x"].tolist(), removed
    ([1, 2, 4], 1)
    """
    if list(holdout.columns) != list(real.columns):
        raise DataError(
            f"The holdout's columns {list(holdout.columns)} differ from the real data's "
            f"{list(real.columns)}. Give the holdout written for this data."
        )
    if len(real) == num_training_rows:
        return real, 0
    if len(real) != num_training_rows + len(holdout):
        raise DataError(
            f"The real data has {len(real)} rows; the model was trained on {num_training_rows} "
            f"with {len(holdout)} kept aside. Give the file given to `clinsynth fit` (or its "
            "training part)."
        )
    columns = [str(c) for c in real.columns]
    left = _keys(real.set_axis(columns, axis=1), columns)
    right = _keys(holdout.set_axis(columns, axis=1), columns)
    found = left.reset_index().merge(right, on=[*columns, "__occurrence"], how="inner")
    if len(found) != len(holdout):
        raise DataError(
            f"Only {len(found)} of the {len(holdout)} held-out rows are in the real data: it is "
            "not the file the model was fitted on. Give the file given to `clinsynth fit`."
        )
    keep = ~real.index.isin(found["index"])
    return real[keep].reset_index(drop=True), len(found)
