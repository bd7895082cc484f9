"""Sampling given a context, for any model: the default conditioning strategy of
``BaseSynthesizer.sample_given_context`` (a model that conditions natively, like the Gaussian
copula, overrides it).

The model draws rows jointly with the context columns, and the rows are paired with the
requested contexts by rank along the first principal axis of the context (a capacity-respecting
nearest-context match: each generated row is used once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer


def rank_matched(
    model: BaseSynthesizer, context: pd.DataFrame, axis: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """Generate rows jointly with their context; give each requested context the generated row
    of the same rank along ``axis``."""
    rows = model.sample_rows(len(context), rng)
    columns = list(context.columns)
    generated = rows[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy()
    wanted = context.to_numpy(dtype=np.float64)
    weights = axis if len(axis) == len(columns) else np.ones(len(columns))
    # Random tie-breaks so that identical contexts get a random share of the matching rows.
    g_order = np.lexsort((rng.random(len(rows)), generated @ weights))
    w_order = np.lexsort((rng.random(len(rows)), wanted @ weights))
    take = np.empty(len(rows), dtype=np.int64)
    take[w_order] = g_order
    out = rows.iloc[take].reset_index(drop=True)
    return out.drop(columns=columns)
