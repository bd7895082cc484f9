"""How long training will take, said before the click.

The estimate is measured, not guessed from constants: the chosen model is fitted on a sample of
the user's own rows (at most :data:`PROBE_ROWS` per table) on this computer, after a small
discarded fit that pays the first-call costs, and the time is scaled to the whole data. A model
trained in epochs is fitted twice on the sample (one epoch and four), which separates the set-up
(learning the column encodings) from the cost of an epoch; an epoch grows with the rows, the
set-up with their square root (as measured on the cohort simulator), and the epochs multiply.
A one-pass model (the Gaussian copula) is its set-up. Linked tables: the largest table is probed
and the others count in proportion to their cells; the auto model adds up its candidates
(capped by its time budget). The figure is rough — on a busy two-core machine it was within a
factor of about four of the real time — which is what a user needs to decide between 20 seconds
and 20 minutes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from clinsynth import Metadata, list_synthesizers
from clinsynth.synthesizers._auto import DEFAULT_CANDIDATES

#: Most rows of a table the probe fits on.
PROBE_ROWS = 400
#: Rows of the first, discarded fit (imports and first-call costs are not training time).
WARM_UP_ROWS = 50
#: Epochs the second probe adds to the first (their difference is the cost of an epoch).
PROBE_EPOCHS = 3
#: The set-up time (encodings, a copula's correlations) grows as rows ** SETUP_GROWTH.
SETUP_GROWTH = 0.5


def estimate_seconds(
    name: str, params: dict[str, Any], metadata: Metadata, data: pd.DataFrame | dict
) -> float:
    """Estimated seconds to train model ``name`` with ``params`` on ``data``.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_cohort
    >>> df, md = simulate_cohort(500, seed=0)
    >>> 0 < estimate_seconds("gaussian_copula", {}, md, df) < 60
    True
    """
    if name == "auto":
        budget = _seconds(params.get("time_budget"))
        names = params.get("candidates") or DEFAULT_CANDIDATES
        epochs = {k: v for k, v in params.items() if k in ("epochs",) and v}
        total = sum(estimate_seconds(n, epochs, metadata, data) for n in names)
        return min(total, budget) if budget else total
    cls = list_synthesizers(sequential=True)[name]
    if isinstance(data, dict):
        # Linked tables: the largest is probed, the others count by their number of cells.
        cells = {t: len(df) * len(df.columns) for t, df in data.items() if len(df)}
        if not cells:
            return 0.0
        largest = max(cells, key=cells.get)
        one = _table_seconds(
            cls, Metadata({largest: metadata.tables[largest]}), data[largest], params
        )
        return one * sum(cells.values()) / cells[largest]
    return _table_seconds(cls, metadata, data, params)


def _table_seconds(cls: type, md: Metadata, df: pd.DataFrame, params: dict[str, Any]) -> float:
    n = len(df)
    if n == 0:
        return 0.0
    probe = _probe(df, md, PROBE_ROWS)
    warm = _probe(probe, md, WARM_UP_ROWS)
    scale = n / len(probe)
    defaults = cls(md).get_params()
    kept = {k: v for k, v in params.items() if k in defaults and k != "epochs"}
    if "epochs" not in defaults:
        _fit_seconds(cls, md, warm, kept)  # imports, first-call costs
        return _fit_seconds(cls, md, probe, kept) * scale**SETUP_GROWTH
    epochs = int(params.get("epochs") or defaults["epochs"] or 300)
    _fit_seconds(cls, md, warm, {**kept, "epochs": 1})
    one = _fit_seconds(cls, md, probe, {**kept, "epochs": 1})
    more = _fit_seconds(cls, md, probe, {**kept, "epochs": 1 + PROBE_EPOCHS})
    per_epoch = max((more - one) / PROBE_EPOCHS, 0.0)
    setup = max(one - per_epoch, 0.0)
    # An epoch's steps grow with the rows; learning the encodings grows more slowly.
    return setup * scale**SETUP_GROWTH + epochs * per_epoch * scale


def _probe(df: pd.DataFrame, md: Metadata, rows: int) -> pd.DataFrame:
    """About ``rows`` rows drawn at random: whole patients of a longitudinal table (at least
    two), single rows otherwise."""
    key = md.get_table().sequence_key if len(md.tables) == 1 else None
    if key is None or key not in df:
        return df.sample(n=min(len(df), rows), random_state=0).reset_index(drop=True)
    patients = df[key].drop_duplicates().sample(frac=1.0, random_state=0)
    sizes = df[key].value_counts().reindex(patients).to_numpy()
    kept = patients[: max(2, int((sizes.cumsum() <= rows).sum()))]
    return df[df[key].isin(kept)].reset_index(drop=True)


def _fit_seconds(cls: type, md: Metadata, df: pd.DataFrame, params: dict[str, Any]) -> float:
    start = time.perf_counter()
    cls(md, random_state=0, **params).fit(df)
    return time.perf_counter() - start


def _seconds(budget: object) -> float | None:
    if budget is None:
        return None
    if isinstance(budget, int | float):
        return float(budget)
    text = str(budget).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def describe(seconds: float) -> str:
    """``about 20 seconds``, ``about 4 minutes``, ``about 1.5 hours``.

    >>> describe(3.2), describe(250), describe(5400)
    ('a few seconds', 'about 4 minutes', 'about 1.5 hours')
    """
    if seconds < 10:
        return "a few seconds"
    if seconds < 90:
        return f"about {int(round(seconds, -1)) or 10} seconds"
    if seconds < 90 * 60:
        return f"about {math.ceil(seconds / 60 - 0.5)} minutes"
    return f"about {seconds / 3600:.1f} hours"
