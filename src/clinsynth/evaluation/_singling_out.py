"""Singling-out risk as Giomi et al. (PoPETs 2023) define it; our own implementation.

The attacker reads the synthetic data and writes predicates ("age >= 87 and sex == F and bmi <= 19")
that match exactly one synthetic record, betting that they also isolate one real patient. Each
predicate is built from a random synthetic record and ``n_cols`` random columns: ``==`` on a
category, ``>=`` or ``<=`` (at random) on a number, "is missing" on a missing value; only predicates
that match exactly one synthetic record are kept, each once (Cohen & Nissim's predicate singling
out, 2020). An attack succeeds on a table when its predicate matches exactly one record there.
The baseline attacker writes predicates from values drawn at random, column by column.

**Tables of unequal sizes.** Whether a predicate of population weight ``w`` matches exactly one of
``n`` records depends on ``n``: ``P_n = n w (1 - w)^(n - 1)``. The main attack runs on all ``N``
training records (a predicate that isolates a copied patient must find that patient), so the
control rate must be the rate at size ``N`` too. From the ``c_q`` matches of each predicate among
the ``M`` holdout records:

* ``N <= M``: the expected rate on a random subset of ``N`` holdout records is exact
  (hypergeometric: ``P(exactly 1) = c C(M - c, N - 1) / C(M, N)``);
* ``N > M``: an extrapolation. The counts are modelled as Poisson with a Gamma-distributed mean
  ``lam = M w`` across predicates (a negative binomial, fitted by maximum likelihood), and each
  predicate contributes its posterior expectation of ``r lam exp(-r lam)`` with ``r = N / M``:
  ``r (a + c) / (b + 1) * ((b + 1) / (b + 1 + r))^(a + c + 1)``. The fit's uncertainty (refits
  on predicates resampled with replacement) is added to the control rate's error, so the risk's
  interval widens with ``N / M``.

On real data split three ways (train, holdout, and unseen records standing in for synthetic
data, where no risk is possible) the extrapolated control rate is unbiased and the risk's
interval covers 0 (``benchmarks/bench_anonymeter.py``). The anonymeter package's own correction
reads as a singling-out risk of 0.15-0.24 there when the holdout is smaller than the training
set (docs/PRIVACY.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from clinsynth.evaluation._attacks import MixedTable, attack_risk

EQ, GE, LE, NA = 0, 1, 2, 3
_BLOCK = 8_000_000
#: Synthetic records of the quick first test of a candidate predicate.
_PROBE = 256


@dataclass
class Ranked:
    """A table for predicates: each column's values as dense ranks shared by every table (order
    and equality kept, so ``>=``, ``<=`` and ``==`` on ranks are the same tests as on values), one
    contiguous row per column; missing values are -1."""

    by_column: np.ndarray
    is_numeric: np.ndarray
    columns: list[str]

    def __len__(self) -> int:
        return self.by_column.shape[1]


def ranked(tables: list[MixedTable]) -> list[Ranked]:
    """Rank-code the columns of ``tables`` alike."""
    d = tables[0].values.shape[1]
    out = [np.full((d, len(t)), -1, dtype=np.int64) for t in tables]
    for j in range(d):
        values = np.concatenate([t.values[:, j] for t in tables])
        levels = np.unique(values[~np.isnan(values)])
        for o, t in zip(out, tables, strict=True):
            v = t.values[:, j]
            o[j] = np.where(np.isnan(v), -1, np.searchsorted(levels, v))
    top = max((int(o.max()) for o in out if o.size), default=0)
    dtype = np.int16 if top < np.iinfo(np.int16).max else np.int32
    first = tables[0]
    return [
        Ranked(np.ascontiguousarray(o.astype(dtype)), first.is_numeric, first.columns) for o in out
    ]


def match_counts(table: Ranked, cols: np.ndarray, ops: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Number of records of ``table`` each predicate matches (predicates as rows of cols, ops,
    vals: every condition must hold)."""
    n, n_pred = len(table), len(cols)
    # every condition as low <= rank <= high: "==" low = high, ">=" and "<=" open on one side
    # (but above -1: a missing value satisfies no inequality), "is missing" low = high = -1
    big = np.iinfo(table.by_column.dtype).max
    low = np.where(ops == LE, 0, vals).astype(table.by_column.dtype)
    high = np.where(ops == GE, big, vals).astype(table.by_column.dtype)
    counts = np.zeros(n_pred, dtype=np.int64)
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, n_pred, step):  # blocks of predicates bound the memory
        sl = slice(start, min(start + step, n_pred))
        mask = None
        for k in range(cols.shape[1]):
            v = table.by_column[cols[sl, k]]  # (predicates, records)
            cond = (v >= low[sl, k, None]) & (v <= high[sl, k, None])
            mask = cond if mask is None else mask & cond
        counts[sl] = mask.sum(axis=1)
    return counts


def _predicates(
    table: Ranked, n: int, width: int, rng: np.random.Generator, *, same_row: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random predicates of ``width`` distinct columns, in a canonical column order.

    With ``same_row`` every value comes from one random record (the attack), else each from its
    own random record (the baseline)."""
    d = table.by_column.shape[0]
    cols = np.argsort(rng.random((n, d)), axis=1)[:, :width]
    cols.sort(axis=1)
    rows = rng.integers(0, len(table), (n, 1) if same_row else (n, width))
    vals = table.by_column[cols, np.broadcast_to(rows, cols.shape)].astype(np.int64)
    ops = np.where(table.is_numeric[cols], rng.integers(GE, LE + 1, cols.shape), EQ)
    ops[vals < 0] = NA
    return cols, ops, vals


def singling_out_predicates(
    synthetic: Ranked,
    n_attacks: int,
    n_cols: int,
    rng: np.random.Generator,
    max_attempts: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``n_attacks`` distinct predicates that each match exactly one synthetic record."""
    width = min(n_cols, synthetic.by_column.shape[0])
    max_attempts = max_attempts or 200 * n_attacks
    kept = np.zeros((0, 3 * width), dtype=np.int64)
    tried = 0
    batch = max(64, min(4 * n_attacks, 4096))
    # A predicate matching two records of a random subset matches two or more in all: most
    # candidates are rejected on the subset, and only the rest are counted on every record.
    probe = Ranked(
        synthetic.by_column[:, rng.permutation(len(synthetic))[:_PROBE]],
        synthetic.is_numeric,
        synthetic.columns,
    )
    while len(kept) < n_attacks and tried < max_attempts:
        cols, ops, vals = _predicates(synthetic, batch, width, rng, same_row=True)
        tried += batch
        maybe = match_counts(probe, cols, ops, vals) <= 1
        cols, ops, vals = cols[maybe], ops[maybe], vals[maybe]
        unique = match_counts(synthetic, cols, ops, vals) == 1
        if unique.any():
            merged = np.vstack([kept, np.hstack([cols[unique], ops[unique], vals[unique]])])
            _, first = np.unique(merged, axis=0, return_index=True)
            kept = merged[np.sort(first)]
    kept = kept[:n_attacks]
    return kept[:, :width], kept[:, width : 2 * width], kept[:, 2 * width :]


def _profile_shape(values: np.ndarray, weights: np.ndarray) -> float:
    """Maximum-likelihood shape ``a`` of a negative binomial (Poisson counts with a Gamma(a, b)
    mean) fitted to the histogram ``values`` x ``weights``; for any ``a`` the best ``b`` is
    ``a / mean``, so one dimension is searched."""
    mean = float((values * weights).sum() / weights.sum())

    def nll(log_a: float) -> float:
        a = np.exp(log_a)
        b = a / mean
        ll = (
            special.gammaln(a + values)
            - special.gammaln(a)
            + a * np.log(b / (b + 1))
            - values * np.log(b + 1)
        )
        return -float((weights * ll).sum())

    fit = optimize.minimize_scalar(nll, bounds=(np.log(1e-3), np.log(1e4)), method="bounded")
    return float(np.exp(fit.x))


def _extrapolated_rate(values: np.ndarray, weights: np.ndarray, ratio: float) -> float:
    """Mean of ``E[r lam exp(-r lam) | c]`` over the predicates under the fitted Poisson-Gamma
    model (``lam = M w``, ``r = N / M``): the expected share singling out at size ``N``."""
    mean = float((values * weights).sum() / weights.sum())
    if mean <= 0:
        return 0.0
    a = _profile_shape(values, weights)
    post_a, post_b = a + values, a / mean + 1
    per_count = ratio * post_a / post_b * (post_b / (post_b + ratio)) ** (post_a + 1)
    return float((weights * per_count).sum() / weights.sum())


def control_rate_at(
    counts: np.ndarray, pool: int, size: int, rng: np.random.Generator, boots: int = 100
) -> tuple[float, float, str]:
    """Expected singling-out rate at ``size`` records from the predicates' match ``counts`` among
    ``pool`` control records, the standard deviation of the estimate beyond the attacks'
    binomial noise (0 when exact), and how it was obtained (see the module docstring)."""
    if len(counts) == 0:
        return float("nan"), 0.0, "none"
    if size <= pool:
        rate = stats.hypergeom.pmf(1, pool, counts, size).mean()
        return float(rate), 0.0, "exact"
    values, hist = np.unique(counts, return_counts=True)
    values = values.astype(np.float64)
    ratio = size / pool
    rate = _extrapolated_rate(values, hist, ratio)
    # the fit's own uncertainty: refit on predicates resampled with replacement
    draws = rng.multinomial(hist.sum(), hist / hist.sum(), size=boots)
    again = [_extrapolated_rate(values[d > 0], d[d > 0], ratio) for d in draws]
    return rate, float(np.std(again)), "extrapolated"


def singling_out(
    train: MixedTable,
    control: MixedTable,
    synthetic: MixedTable,
    *,
    n_attacks: int,
    n_cols: int = 3,
    rng: np.random.Generator,
) -> dict:
    """Singling-out risk of the synthetic data against all training records, with the holdout
    as control; also the columns most used by the predicates that succeeded on training records.
    """
    r_train, r_control, r_syn = ranked([train, control, synthetic])
    cols, ops, vals = singling_out_predicates(r_syn, n_attacks, n_cols, rng)
    n_pred = len(cols)
    if n_pred == 0:
        out = attack_risk(0, 0, 0, 0)
        out.update(columns_most_used=[], control_size_correction="none", n_cols=0)
        return out
    main = match_counts(r_train, cols, ops, vals) == 1
    counts = match_counts(r_control, cols, ops, vals)
    rate, rate_sd, how = control_rate_at(counts, len(control), len(train), rng)
    bcols, bops, bvals = _predicates(r_syn, n_pred, cols.shape[1], rng, same_row=False)
    base = match_counts(r_train, bcols, bops, bvals) == 1
    out = attack_risk(
        main.sum(), rate * n_pred, n_pred, n_pred, base.sum(), n_pred, control_sd=rate_sd
    )
    hits = np.bincount(cols[main].ravel(), minlength=len(train.columns))
    out["columns_most_used"] = [train.columns[i] for i in np.argsort(-hits)[:2] if hits[i] > 0]
    out["control_size_correction"] = how
    out["n_cols"] = int(cols.shape[1])
    return out
