"""Secondary parents chosen by the columns that tie them to the child row.

A child row's primary parent comes with it; a *secondary* parent (a condition's encounter when
the condition hangs under the patient) is picked among the synthetic parent rows. Weighting the
pick by the parents' modeled number of children alone ignores the child's own columns: a
condition dated 2012 could get an encounter of 1998. At fit time :func:`fit_match` finds the
numeric or date columns of the child that predict a column of its real secondary parent
(a straight-line fit over linked rows with R² >= ``MIN_R2``: the encounter's start from the
condition's start). At sampling time :func:`match_pick` draws ``CANDIDATES`` parents per child
row as before (weighted by modeled children, inside the shared ancestor) and keeps one with
probability proportional to the likelihood (Student t, robust scale) of its column given the
child's (sampling importance resampling: the pick follows ``weight x likelihood``).

Choosing cannot help when the shared ancestor offers one candidate (a person with one visit):
the child was drawn from its primary chain, years away. So a child *date* tied to a parent date
(:func:`fit_anchor`: slope near 1, a gap far tighter than the date's spread, e.g. a procedure
on the day of its visit) is then redrawn from the chosen parent's date plus a gap from the real
gaps' quantiles; the child's dates that move with it shift too, and the date rules are clipped
again (:func:`clinsynth.multitable._dates.shift_dates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.metadata import TableMetadata
from clinsynth.multitable._dates import to_ns

#: Smallest share of the parent column's variance the child column must explain.
MIN_R2 = 0.5
#: Candidate parents drawn per child row before the likelihood picks one.
CANDIDATES = 64
#: Child rows matched at a time (bounds the memory of the candidates' likelihoods).
MATCH_BLOCK = 16_384
#: Column pairs used per secondary relationship (the best fits).
MAX_PAIRS = 2
#: Fewest linked real rows a fit needs.
MIN_ROWS = 20
_DAY_NS = 86_400e9


def numeric_values(values: pd.Series, spec: dict) -> np.ndarray | None:
    """Numbers (dates in days since 1970) with NaN where missing; None for other sdtypes."""
    sdtype = spec.get("sdtype")
    if sdtype == "datetime":
        ns, ok = to_ns(values, spec.get("datetime_format"))
        return np.where(ok, ns / _DAY_NS, np.nan)
    if sdtype == "numerical":
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def fit_match(
    child: pd.DataFrame,
    child_table: TableMetadata,
    parent: pd.DataFrame,
    parent_table: TableMetadata,
    pos: np.ndarray,
    exclude: set[str],
    parent_exclude: set[str],
) -> list[dict[str, Any]]:
    """The child/parent column pairs that tie child rows to their secondary parent row.

    ``pos`` is the real parent row of each child row (``-1``: none). Returns up to
    ``MAX_PAIRS`` fits ``{"child", "parent", "a", "b", "sigma", "r2"}`` of
    ``parent ~ a + b * child`` with R² >= ``MIN_R2``, best first.
    """
    linked = pos >= 0
    if linked.sum() < MIN_ROWS:
        return []
    xs = {}
    for column, spec in child_table.columns.items():
        if column in exclude or column not in child.columns:
            continue
        values = numeric_values(child[column], spec)
        if values is not None:
            xs[column] = values[linked]
    fits = []
    for column, spec in parent_table.columns.items():
        if column in parent_exclude or column not in parent.columns:
            continue
        values = numeric_values(parent[column], spec)
        if values is None:
            continue
        y_all = values[pos[linked]]
        for name, x_all in xs.items():
            fit = _line(x_all, y_all)
            if fit is not None and fit["r2"] >= MIN_R2:
                fits.append({"child": name, "parent": column, **fit})
    fits.sort(key=lambda f: -f["r2"])
    chosen, used = [], set()
    for fit in fits:  # one fit per parent column (they would count the same evidence twice)
        if fit["parent"] in used:
            continue
        used.add(fit["parent"])
        chosen.append(fit)
        if len(chosen) == MAX_PAIRS:
            break
    return chosen


def _line(x: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    ok = ~np.isnan(x) & ~np.isnan(y)
    if ok.sum() < MIN_ROWS:
        return None
    x, y = x[ok], y[ok]
    x_mean, y_mean = x.mean(), y.mean()
    sxx = float(((x - x_mean) ** 2).sum())
    syy = float(((y - y_mean) ** 2).sum())
    if sxx <= 0 or syy <= 0:
        return None
    b = float(((x - x_mean) * (y - y_mean)).sum() / sxx)
    a = float(y_mean - b * x_mean)
    residual = y - (a + b * x)
    r2 = 1.0 - float((residual**2).sum()) / syy
    # A robust scale (real ties are often exact, with a few far-off rows: a condition on the
    # day of its encounter, or years later), floored so that an exact relation (scale 0)
    # leaves the other candidates possible.
    mad = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    sigma = max(mad, 1e-3 * float(y.std()))
    return {"a": a, "b": b, "sigma": sigma, "r2": r2}


def match_pick(
    candidates: np.ndarray,
    child_values: dict[str, np.ndarray],
    parent_values: dict[str, np.ndarray],
    fits: list[dict[str, Any]],
    rng: np.random.Generator,
) -> np.ndarray:
    """One parent per child row among its ``candidates`` (rows x CANDIDATES positions, ``-1``
    for none), drawn with probability proportional to the likelihood of the parent's columns
    given the child's under ``fits``; a missing value makes a fit neutral for that row.

    >>> cands = np.array([[0, 1], [0, 1], [-1, -1]])
    >>> fit = [{"child": "d", "parent": "d", "a": 0.0, "b": 1.0, "sigma": 0.1}]
    >>> match_pick(cands, {"d": np.array([0.0, 5.0, 1.0])}, {"d": np.array([0.0, 5.0])},
    ...            fit, np.random.default_rng(0)).tolist()
    [0, 1, -1]
    """
    n, k = candidates.shape
    valid = candidates >= 0
    loglik = np.zeros((n, k))
    safe = np.where(valid, candidates, 0)
    for fit in fits:
        x = child_values[fit["child"]]
        y = parent_values[fit["parent"]][safe]
        z = (y - (fit["a"] + fit["b"] * x)[:, None]) / fit["sigma"]
        # Student t with 3 degrees of freedom: heavy tails for the far-off real rows
        loglik += np.where(np.isnan(z), 0.0, -2.0 * np.log1p(z**2 / 3.0))
    loglik[~valid] = -np.inf
    # Gumbel-max: argmax(loglik + Gumbel noise) draws a candidate with probability ~ exp(loglik).
    gumbel = -np.log(-np.log(rng.random((n, k)).clip(1e-300, 1.0 - 1e-16)))
    best = np.argmax(loglik + gumbel, axis=1)
    pick = candidates[np.arange(n), best]
    pick[~valid.any(axis=1)] = -1
    return pick


# --------------------------------------------------------------------------- re-anchored dates
#: Quantiles of the real child-parent date gap kept in the model: 21, the extremes left out, so
#: that a small linked table's individual gaps are not stored one by one.
_GAP_LEVELS = np.linspace(0.025, 0.975, 21)


def fit_anchor(
    child: pd.DataFrame,
    child_table: TableMetadata,
    parent: pd.DataFrame,
    parent_table: TableMetadata,
    pos: np.ndarray,
    fits: list[dict[str, Any]],
    exclude: set[str],
) -> dict[str, Any] | None:
    """A date of the child that is its secondary parent's date plus a short gap (a procedure
    on the day of its visit), to be redrawn from the chosen parent at sampling time.

    Returns ``{"child", "parent", "gaps", "shift", "range"}`` for the first matched pair of
    dates with a slope near 1 whose real gap varies less than a fifth of the child date itself
    (quartile spreads): ``gaps`` are 21 quantiles (2.5% to 97.5%) of the real gap in days,
    ``shift`` the child's other date columns that move with it (their gap to it varies less
    than they do), ``range`` the child date's observed range in days (kept when redrawn).
    """
    linked = pos >= 0
    for fit in fits:
        cspec = child_table.columns[fit["child"]]
        pspec = parent_table.columns[fit["parent"]]
        if cspec.get("sdtype") != "datetime" or pspec.get("sdtype") != "datetime":
            continue
        if not 0.9 <= fit["b"] <= 1.1:
            continue
        x_all = numeric_values(child[fit["child"]], cspec)
        y = numeric_values(parent[fit["parent"]], pspec)[pos[linked]]
        x = x_all[linked]
        ok = ~np.isnan(x) & ~np.isnan(y)
        if ok.sum() < MIN_ROWS:
            continue
        gap = x[ok] - y[ok]
        if _spread(gap) >= 0.2 * _spread(x_all[~np.isnan(x_all)]):
            continue
        shift = []
        for column, spec in child_table.columns.items():
            if column in exclude or column == fit["child"] or spec.get("sdtype") != "datetime":
                continue
            v = numeric_values(child[column], spec)
            both = ~np.isnan(v) & ~np.isnan(x_all)
            if both.sum() >= MIN_ROWS and np.std(v[both] - x_all[both]) < 0.5 * np.std(v[both]):
                shift.append(column)
        present = x_all[~np.isnan(x_all)]
        return {
            "child": fit["child"],
            "parent": fit["parent"],
            "gaps": np.quantile(gap, _GAP_LEVELS).tolist(),
            "shift": shift,
            # the child date's observed range, which a redrawn date keeps (like every model)
            "range": [float(present.min()), float(present.max())],
        }
    return None


def _spread(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75]) if len(x) else (0.0, 0.0)
    return float(q3 - q1) if q3 > q1 else float(np.std(x))


def redrawn_dates(
    anchor: dict[str, Any], parent_ns: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Child dates (nanoseconds) from their parents' dates plus gaps drawn from the stored
    quantiles of the real gaps, kept within the child date's observed range."""
    days = np.interp(
        rng.random(len(parent_ns)), _GAP_LEVELS, np.asarray(anchor["gaps"], dtype=np.float64)
    )
    target = parent_ns + np.round(days * _DAY_NS).astype(np.int64)
    if "range" in anchor:
        low, high = (np.round(np.asarray(anchor["range"]) * _DAY_NS)).astype(np.int64)
        target = np.clip(target, low, high)
    return target
