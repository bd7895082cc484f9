"""No training value of fewer than ``k`` patients in a saved model: univariate microaggregation.

A model's saved state (a column's range, its quantile knots, the points of an empirical marginal,
a mixture component sitting on one value) is computed from the column's values. Computed from
the raw values, it can hold a patient's rare value verbatim: the oldest patient's age as the
column's maximum, a unique creatinine of 14.2 as a knot. :func:`microaggregate` replaces the
values first, so that every value the state can be built from is held by at least ``k``
patients:

- a value held by at least ``k`` patients (a frequent dose, an exact zero) is kept as it is;
- the other values, in sorted runs between two such values, are merged into consecutive groups
  of at least ``k`` patients each, and every value of a group becomes the group's mean (a
  number that is an average over ``k`` or more patients, not one patient's value);
- the lowest and the highest group take, instead of their mean (an outlier would pull it),
  the point halfway between their ``k``-th value from the end and the next value inwards:
  extremes are clipped to a quantile of at least ``k`` patients;
- a run holding fewer than ``k`` patients in all joins the nearest kept value.

Only the saved statistics are computed from the merged values; the model still trains on the
real ones. The ordering of the values is kept, the distribution changes only inside groups of a
few patients, and a column with fewer than ``k`` patients in all is collapsed to its mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Patients a saved value must belong to (the rare-category threshold).
MIN_PATIENTS = 5


def microaggregate(
    values: np.ndarray, k: int = MIN_PATIENTS, entities: np.ndarray | None = None
) -> np.ndarray:
    """``values`` (finite, any order) with every value held by fewer than ``k`` patients merged
    into a group of at least ``k`` patients; same length and order as ``values``.

    ``entities`` gives each value's patient (a patient with several rows counts once per
    distinct value); without it every row is a patient.

    >>> x = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10, 10, 99])
    >>> microaggregate(x, k=5).tolist()
    [5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0 or k <= 1:
        return x.copy()
    uniq, inverse = np.unique(x, return_inverse=True)
    inverse = inverse.ravel()
    if entities is None:
        support = np.bincount(inverse, minlength=len(uniq))
    else:
        pairs = pd.DataFrame({"v": inverse, "e": np.asarray(entities)}).drop_duplicates()
        support = np.bincount(pairs["v"].to_numpy(), minlength=len(uniq))
    return _representatives(uniq, support, k)[inverse]


def _representatives(uniq: np.ndarray, support: np.ndarray, k: int) -> np.ndarray:
    """The value each distinct value (sorted, with its patients) is replaced by."""
    total = int(support.sum())
    if total < k:
        return np.full(len(uniq), float(np.average(uniq, weights=support)))
    heavy = support >= k
    out = uniq.copy()
    if heavy.all():
        return out
    # Runs of light values between two heavy ones: the heavy values before them name the run.
    run = np.cumsum(heavy)
    light = ~heavy
    _, light_run = np.unique(run[light], return_inverse=True)
    s = support[light].astype(np.int64)
    # Patients before each light value inside its run.
    run_total = np.bincount(light_run, weights=s).astype(np.int64)
    run_start = np.concatenate([[0], np.cumsum(run_total)[:-1]])
    before = np.cumsum(s) - s - run_start[light_run]
    # Buckets of width 2k: each holds more than k patients (a light value has fewer than k),
    # except perhaps the run's last, which joins the one before it.
    bucket = before // (2 * k)
    group = light_run * (total + 1) + bucket
    _, g = np.unique(group, return_inverse=True)
    short_last = (np.bincount(g, weights=s)[g] < k) & (bucket > 0)
    group = np.where(short_last, group - 1, group)
    _, g = np.unique(group, return_inverse=True)
    g_support = np.bincount(g, weights=s)
    g_mean = np.bincount(g, weights=s * uniq[light]) / g_support
    rep = g_mean[g]
    # The lowest and the highest group: a mean there is pulled by an outlier (and would let one
    # read it back), so they take the point halfway between the k-th value from the end and the
    # next distinct value inwards -- at least k patients lie at or beyond it.
    where = np.flatnonzero(light)
    for first, step in ((0, 1), (len(uniq) - 1, -1)):
        if heavy[first]:
            continue
        members = g == g[0 if step == 1 else -1]
        order = where[members][::step]
        reached = np.flatnonzero(np.cumsum(support[order]) >= k)
        if len(reached) == 0:
            continue  # a short run: it joins the nearest kept value below
        kth = order[reached[0]]
        inward = kth + step
        if 0 <= inward < len(uniq):
            rep = np.where(members, (uniq[kth] + uniq[inward]) / 2, rep)
    short = g_support[g] < k  # a whole run of fewer than k patients
    if short.any():
        rep = np.where(short, _nearest_heavy(uniq, heavy, where), rep)
    out[light] = rep
    return out


def _nearest_heavy(uniq: np.ndarray, heavy: np.ndarray, where: np.ndarray) -> np.ndarray:
    """For the values at ``where``: the nearest value held by enough patients."""
    kept = uniq[heavy]
    pos = np.searchsorted(kept, uniq[where])
    below = kept[np.clip(pos - 1, 0, len(kept) - 1)]
    above = kept[np.clip(pos, 0, len(kept) - 1)]
    x = uniq[where]
    return np.where(np.abs(x - below) <= np.abs(above - x), below, above)


def merged_knots(merged: np.ndarray, most: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """A continuous quantile function of merged values: one knot per distinct value at the
    middle of its probability mass (or ``most`` knots interpolated between them), so that
    values drawn between two knots are spread between them rather than piled on the merged
    points; it spans the lowest to the highest merged value.

    >>> xs, ps = merged_knots(np.array([1.0, 1, 1, 1, 3, 3, 3, 3]))
    >>> xs.tolist(), ps.tolist()
    ([1.0, 3.0], [0.25, 0.75])
    """
    uniq, counts = np.unique(np.asarray(merged, dtype=np.float64), return_counts=True)
    mid = (np.cumsum(counts) - counts / 2) / counts.sum()
    if len(uniq) <= most:
        return uniq, mid
    grid = np.linspace(mid[0], mid[-1], most)
    return np.interp(grid, mid, uniq), grid
