"""Discovery of conditional identities: two numbers equal on every row of one level of a
category, and not elsewhere.

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
    """(target, source) pairs of columns identical on ``rows`` (found by sorting the columns,
    not by comparing every pair)."""
    block = filled[rows]
    known = np.isfinite(block)
    candidates = [
        j
        for j in range(block.shape[1])
        if known[:, j].sum() >= min_rows and len(np.unique(block[known[:, j], j])) >= MIN_DISTINCT
    ]
    if len(candidates) < 2:
        return []
    _, group = np.unique(block[:, candidates].T, axis=0, return_inverse=True)
    group = group.ravel()
    pairs = []
    for g in np.unique(group):
        members = [candidates[i] for i in np.flatnonzero(group == g)]
        if len(members) < 2:
            continue
        source = num.names[members[0]]
        pairs += [(num.names[j], source) for j in members[1:]]
    return pairs


def _share_equal(num: Numbers, target: str, source: str, rows: np.ndarray) -> float:
    t, s = num.values[rows, num.names.index(target)], num.values[rows, num.names.index(source)]
    both = ~np.isnan(t) & ~np.isnan(s)
    return float((t[both] == s[both]).mean()) if both.any() else 0.0
