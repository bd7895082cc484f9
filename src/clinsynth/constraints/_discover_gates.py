"""Discovery of what holds on one level of a category only: two numbers equal on every row of
the level and not elsewhere (conditional identities), a number's range on the level that most
other rows fall outside (conditional ranges).

Clinical tables hold them wherever one event closes another: the day of a DNR order is the
length of stay for patients with no order; the survival time is the length of stay for the
patients who died in hospital; follow-up ends at the censoring date for the censored. A model
that learns both columns freely breaks the identity on nearly every such row (and a detector
finds it at once). Each one found becomes a ``Formula`` with ``when_column``/``when_values``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.constraints._discover_numbers import Numbers
from clinsynth.constraints._formula import Formula
from clinsynth.constraints._logic import plain
from clinsynth.constraints._ranges import Range

#: Most levels of one category tried as a condition (the most frequent ones).
MAX_LEVELS = 20
#: Distinct values the two columns must take on the level's rows (a pair of mostly-zero counts
#: is equal by chance, not by logic).
MIN_DISTINCT = 5
#: Share of the other rows (both known) on which the identity may hold and still be
#: conditional (more: it is a plain identity, found as a formula if it holds everywhere).
MOST_ELSEWHERE = 0.95


def conditional_identities(
    num: Numbers,
    data: pd.DataFrame,
    gates: list[str],
    *,
    min_rows: int,
    skip: set[str],
) -> list[Formula]:
    """``target = source when gate is level`` for every pair of numeric columns of ``num``
    equal (missing together) on all rows of a level with at least ``min_rows`` rows, and not
    on most others; levels of one gate with the same identity are joined. ``skip``: columns
    already derived (never a target). The later column of the pair is the target."""
    if num.values.shape[1] < 2:
        return []
    filled = np.where(num.present, num.values, -np.inf)
    found: dict[tuple[str, str, str], list] = {}
    for gate in gates:
        series = data[gate]
        counts = series.value_counts(dropna=True)
        counts = counts[counts >= min_rows].iloc[:MAX_LEVELS]
        for level in counts.index:
            rows = (series == level).to_numpy(dtype=bool, na_value=False)
            for target, source in _equal_pairs(num, filled, rows, min_rows):
                if target in skip:
                    continue
                found.setdefault((gate, target, source), []).append(plain(level))
    best: dict[tuple[str, str], Formula] = {}
    for (gate, target, source), levels in found.items():
        rows = data[gate].isin(levels).to_numpy(dtype=bool, na_value=False)
        if _share_equal(num, target, source, ~rows) > MOST_ELSEWHERE:
            continue
        rule = Formula(target, f"`{source}`", when_column=gate, when_values=levels)
        rule.support = {"rows": len(data), "informative": int(rows.sum())}
        # One condition per identity: the one that covers most rows (two categories that
        # say the same thing, e.g. a code and its label, give the same identity twice).
        kept = best.get((target, source))
        if kept is None or rule.support["informative"] > kept.support["informative"]:
            best[(target, source)] = rule
    return list(best.values())


def _equal_pairs(
    num: Numbers, filled: np.ndarray, rows: np.ndarray, min_rows: int
) -> list[tuple[str, str]]:
    """(target, source) pairs of columns identical on ``rows``: columns with the same random
    projection of their values and of their missing cells, then checked exactly."""
    block = filled[rows]
    known = np.isfinite(block)
    values = np.where(known, block, 0.0)
    weights = np.random.default_rng(0).standard_normal((2, len(block)))
    with np.errstate(all="ignore"):
        keys = np.column_stack([weights[0] @ values, weights[1] @ known])
    usable = (known.sum(axis=0) >= min_rows) & np.isfinite(keys).all(axis=1)
    cols = np.flatnonzero(usable)
    if len(cols) < 2:
        return []
    _, group, sizes = np.unique(keys[cols], axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    pairs = []
    for g in np.flatnonzero(sizes > 1):
        members = cols[group == g]
        first = members[0]
        if len(np.unique(block[known[:, first], first])) < MIN_DISTINCT:
            continue
        for j in members[1:]:
            if np.array_equal(block[:, first], block[:, j]):
                pairs.append((num.names[j], num.names[first]))
    return pairs


def _share_equal(num: Numbers, target: str, source: str, rows: np.ndarray) -> float:
    t, s = num.values[rows, num.names.index(target)], num.values[rows, num.names.index(source)]
    both = ~np.isnan(t) & ~np.isnan(s)
    return float((t[both] == s[both]).mean()) if both.any() else 0.0


#: Share of the other rows (known) that must lie beyond a level's bound for the bound to be the
#: level's own (a level's range drawn by chance leaves a few percent outside, not a quarter).
MIN_OUTSIDE = 0.25
#: Chance of a level's rows all falling inside the bound if the level did not matter (many
#: levels and columns are tried: one in a million each).
CHANCE = 1e-6


def conditional_ranges(
    num: Numbers,
    data: pd.DataFrame,
    gates: list[str],
    *,
    min_rows: int,
    skip: set[str],
) -> list[Range]:
    """``low <= x`` and/or ``x <= high`` on the rows of one level of a category, where at least
    a quarter of the other rows lie beyond the bound: "censored patients were followed at
    least 344 days", "'<2 mo. follow-up' means died before day 60". Each bound sits halfway
    between the level's extreme and the nearest other value beyond it (all real rows obey it;
    it is no patient's value). ``skip``: columns derived by a formula."""
    wanted = [j for j, name in enumerate(num.names) if name not in skip]
    if not wanted:
        return []
    x = num.values[:, wanted]
    ordered = [np.sort(x[~np.isnan(x[:, i]), i]) for i in range(x.shape[1])]
    rules: list[Range] = []
    for gate in gates:
        series = data[gate]
        counts = series.value_counts(dropna=True)
        counts = counts[counts >= min_rows].iloc[:MAX_LEVELS]
        for level in counts.index:
            rows = (series == level).to_numpy(dtype=bool, na_value=False)
            found = _level_ranges(num, wanted, x[rows], ordered, min_rows)
            for name, low, high in found:
                rule = Range(name, low, high, when_column=gate, when_values=[plain(level)])
                rule.support = {"rows": len(rows), "informative": int(rows.sum())}
                rules.append(rule)
    return rules


def _level_ranges(
    num: Numbers, wanted: list[int], inside: np.ndarray, ordered: list[np.ndarray], min_rows: int
) -> list[tuple[str, float | None, float | None]]:
    """(column, low, high) bounds of one level's rows (``inside``); the other rows are counted
    in each column's sorted values (every value beyond the level's extreme is another row's)."""
    out = []
    for i, values in enumerate(ordered):
        col = inside[:, i]
        col = col[~np.isnan(col)]
        n_in, n_out = len(col), len(values) - len(col)
        if n_in < min_rows or n_out < min_rows:
            continue
        lo, hi = col.min(), col.max()
        up = np.searchsorted(values, hi, side="right")
        down = np.searchsorted(values, lo, side="left")
        high = _bound(len(values) - up, n_in, n_out, hi, values[up] if up < len(values) else 0)
        low = _bound(down, n_in, n_out, lo, values[down - 1] if down > 0 else 0)
        if high is not None or low is not None:
            out.append((num.names[wanted[i]], low, high))
    return out


def _bound(beyond: int, n_in: int, n_out: int, extreme: float, nearest: float) -> float | None:
    """Halfway between the level's extreme and the nearest other value, when enough other
    rows lie beyond it: all ``n_in`` rows of a level land inside a range that a share q of the
    others fall outside with probability (1 - q) ** n_in if the level did not matter."""
    q = beyond / n_out
    if q < MIN_OUTSIDE or q >= 1 or -n_in * np.log1p(-q) < -np.log(CHANCE):
        return None
    return plain((extreme + nearest) / 2)
