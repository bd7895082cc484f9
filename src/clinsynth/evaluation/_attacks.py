"""Linkability and inference risk, and the risk statistics, as Giomi et al. define them.

"A Unified Framework for Quantifying Privacy Risk in Synthetic Data" (Giomi, Boenisch, Wehmeyer,
Tasnádi; PoPETs 2023), the method of the anonymeter package. This is our own implementation of
the published method, not the package's code (the package pins numpy < 1.27 and pyarrow < 22, and
its code is marked patent-pending): ``benchmarks/bench_anonymeter.py`` runs both on the same files
and docs/PRIVACY.md records how far they agree. Singling out is in
:mod:`clinsynth.evaluation._singling_out`.

Every attack is run three times with the synthetic data as the attacker's only knowledge:

* **main** — against records of the training set (the model saw them);
* **control** — against records of the holdout (it did not): what the synthetic data's general
  patterns give away about anyone from the same population;
* **baseline** — a naive attacker who ignores the synthetic data; an attack that does no better
  measures nothing (``weak_attack``).

A success rate of ``k`` successes in ``n`` attacks is the centre of its Wilson score interval,
``r = (k + z²/2) / (n + z²)``, with error ``e = z / (n + z²) * sqrt(k (n - k) / n + z²/4)``
(z = 1.96 at 95%). The risk is the main attack's success beyond the control's, out of what the
control leaves to win, ``R = (r_main - r_control) / (1 - r_control)``; its error propagates both
errors, ``e_R² = (e_main / (1 - r_control))² + (e_control (r_main - 1) / (1 - r_control)²)²``.
The reported risk is ``R`` clipped to [0, 1] and its 95% interval ``R ± e_R``, clipped likewise.

Distances between records are Gower's: per column ``|a - b| / range`` for numbers and datetimes
(range over the three tables), 0 or 1 for categories; a missing value is at distance 0 from a
missing value and 1 from anything else; averaged over the columns.

* **Linkability** — the columns are split in two sets that the attacker holds separately (two
  databases). A target is linked when its ``n_neighbors`` nearest synthetic records on the first set
  and on the second set share one.
* **Inference** — the attacker knows every column but the secret, takes the nearest synthetic
  record and reads its secret. Success: the same category (missing counts as a value), or for a
  number a relative error ``|guess - truth| <= 0.05 |truth|``. The baseline guesses the secret of a
  random synthetic record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from clinsynth.evaluation._common import CONTINUOUS, to_numeric
from clinsynth.metadata import TableMetadata

Z95 = 1.959964
#: Relative error within which a guessed number counts as inferred.
NUMERIC_TOLERANCE = 0.05
#: Elements of one block of a distance computation (bounds the memory to ~32 MiB).
_BLOCK = 4_000_000


def success_rate(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson-score estimate of a success rate and its error (half-width of the interval).

    >>> [round(v, 4) for v in success_rate(30, 100)]
    [0.3074, 0.0884]
    """
    if n <= 0:
        return float("nan"), float("nan")
    k = float(successes)
    denom = n + z**2
    rate = (k + z**2 / 2) / denom
    error = z / denom * np.sqrt(max(k * (n - k) / n, 0.0) + z**2 / 4)
    return float(rate), float(error)


def attack_risk(
    main: float,
    control: float,
    n_main: int,
    n_control: int,
    baseline: float | None = None,
    n_baseline: int | None = None,
    control_sd: float = 0.0,
) -> dict:
    """The risk of an attack from its success counts on members, controls and the baseline.

    ``main``, ``control`` and ``baseline`` are numbers of successes (control may be fractional
    when it is an expected count; ``control_sd`` is the standard deviation of such an estimate,
    added to the control rate's error); returns the risk, its 95% interval and the three rates.

    >>> r = attack_risk(30, 20, 100, 100, baseline=5, n_baseline=100)
    >>> round(r["risk"], 4), round(r["ci_low"], 4), round(r["ci_high"], 4)
    (0.1221, 0.0, 0.2637)
    """
    r_m, e_m = success_rate(main, n_main)
    r_c, e_c = success_rate(control, n_control)
    e_c = float(np.hypot(e_c, z_sd(control_sd)))
    if np.isnan(r_m) or np.isnan(r_c):
        value = error = float("nan")
    else:
        value = (r_m - r_c) / (1 - r_c)
        error = float(np.hypot(e_m / (1 - r_c), e_c * (r_m - 1) / (1 - r_c) ** 2))
    out = {
        "risk": _clip(value),
        "ci_low": _clip(value - error),
        "ci_high": _clip(value + error),
        "risk_unclipped": float(value),
        "risk_error": float(error),
        "attack_rate": r_m,
        "attack_rate_error": e_m,
        "control_rate": r_c,
        "control_rate_error": e_c,
        "n_attacks": int(n_main),
        "n_control": int(n_control),
    }
    if baseline is not None and n_baseline:
        r_b, e_b = success_rate(baseline, n_baseline)
        out["baseline_rate"] = r_b
        out["baseline_rate_error"] = e_b
        # the paper's sanity check: an attack no better than guessing measures nothing
        out["weak_attack"] = bool(r_m - e_m <= r_b + e_b)
    return out


def z_sd(sd: float) -> float:
    """A standard deviation as a 95% half-width."""
    return Z95 * sd


def _clip(value: float) -> float:
    return float("nan") if np.isnan(value) else float(min(1.0, max(0.0, value)))


@dataclass
class MixedTable:
    """Columns as float values: numbers (datetimes in ns) and category codes; NaN = missing."""

    values: np.ndarray
    is_numeric: np.ndarray
    ranges: np.ndarray
    columns: list[str]

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, index: np.ndarray) -> MixedTable:
        return MixedTable(self.values[index], self.is_numeric, self.ranges, self.columns)

    def select(self, positions: list[int]) -> MixedTable:
        """The columns at ``positions`` only."""
        cols = np.asarray(positions, dtype=np.int64)
        names = [self.columns[i] for i in cols]
        return MixedTable(self.values[:, cols], self.is_numeric[cols], self.ranges[cols], names)


def mixed_tables(
    frames: list[pd.DataFrame], table: TableMetadata, columns: list[str]
) -> list[MixedTable]:
    """Encode ``columns`` of every frame alike: category codes shared across the frames, numeric
    ranges over all of them (for Gower distances)."""
    values = [np.empty((len(f), len(columns))) for f in frames]
    is_numeric = np.zeros(len(columns), dtype=bool)
    ranges = np.ones(len(columns))
    for j, col in enumerate(columns):
        spec = table.columns[col]
        if spec["sdtype"] in CONTINUOUS:
            is_numeric[j] = True
            parts = [to_numeric(f[col], spec) for f in frames]
            both = np.concatenate(parts)
            if np.isfinite(both).any():
                span = float(np.nanmax(both) - np.nanmin(both))
                ranges[j] = span if span > 0 else 1.0
        else:
            codes, _ = pd.factorize(
                pd.concat([f[col] for f in frames], ignore_index=True).astype("object"),
                use_na_sentinel=True,
            )
            both = np.where(codes < 0, np.nan, codes.astype(np.float64))
            parts = np.split(both, np.cumsum([len(f) for f in frames])[:-1])
        for out, part in zip(values, parts, strict=True):
            out[:, j] = part
    return [MixedTable(v, is_numeric, ranges, list(columns)) for v in values]


def gower(queries: MixedTable, reference: MixedTable, cols: np.ndarray) -> np.ndarray:
    """Gower distances (queries x reference) over the column positions ``cols``."""
    q, r = queries.values[:, cols], reference.values[:, cols]
    numeric, ranges = queries.is_numeric[cols], queries.ranges[cols]
    out = np.zeros((len(q), len(r)))
    nan_q, nan_r = np.isnan(q), np.isnan(r)
    gappy = nan_q.any(axis=0) | nan_r.any(axis=0)
    # numbers without missing values: one L1 distance over all of them
    plain = numeric & ~gappy
    if plain.any():
        out += cdist(q[:, plain] / ranges[plain], r[:, plain] / ranges[plain], "cityblock")
    # categories: mismatches = columns - matches, the matches a product of one-hot matrices
    # (a missing value is a category of its own)
    cat = ~numeric
    if cat.any():
        hot_q, hot_r = _one_hot(q[:, cat], r[:, cat])
        out += cat.sum() - hot_q @ hot_r.T
    for j in np.flatnonzero(numeric & gappy):  # numbers with missing values, column by column
        a, b = q[:, j][:, None], r[:, j][None, :]
        with np.errstate(invalid="ignore"):
            d = np.abs(a - b) / ranges[j]
        d = np.where(np.isnan(a) | np.isnan(b), 1.0, d)
        out += np.where(np.isnan(a) & np.isnan(b), 0.0, d)
    return out / max(len(cols), 1)


def _one_hot(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot matrices of two code matrices (NaN = its own code), with the same columns."""
    a, b = np.nan_to_num(a, nan=-1.0) + 1, np.nan_to_num(b, nan=-1.0) + 1
    width = np.maximum(a.max(axis=0, initial=0), b.max(axis=0, initial=0)).astype(np.int64) + 1
    offsets = np.r_[0, np.cumsum(width)[:-1]]
    out = []
    for codes in (a, b):
        hot = np.zeros((len(codes), int(width.sum())))
        rows = np.repeat(np.arange(len(codes)), codes.shape[1])
        hot[rows, (codes.astype(np.int64) + offsets).ravel()] = 1.0
        out.append(hot)
    return out[0], out[1]


def nearest(queries: MixedTable, reference: MixedTable, cols: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the ``k`` nearest reference records of every query (Gower), (n_queries, k)."""
    k = min(k, len(reference))
    step = max(1, _BLOCK // max(len(reference) * max(len(cols), 1), 1))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), step):  # blocks of queries bound the memory
        d = gower(queries.rows(np.arange(start, min(start + step, len(queries)))), reference, cols)
        if k == 1:
            out[start : start + len(d), 0] = d.argmin(axis=1)
        else:
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            order = np.take_along_axis(d, part, axis=1).argsort(axis=1, kind="stable")
            out[start : start + len(d)] = np.take_along_axis(part, order, axis=1)
    return out


def _positions(table: MixedTable, names: list[str]) -> np.ndarray:
    where = {c: i for i, c in enumerate(table.columns)}
    return np.array([where[c] for c in names], dtype=np.int64)


def linkability(
    targets: MixedTable,
    controls: MixedTable,
    synthetic: MixedTable,
    aux_columns: tuple[list[str], list[str]],
    *,
    n_neighbors: int = 1,
    rng: np.random.Generator,
) -> dict:
    """Linkability risk of ``targets`` (training records) against ``controls`` (holdout)."""
    cols_a = _positions(synthetic, aux_columns[0])
    cols_b = _positions(synthetic, aux_columns[1])

    def links(recs: MixedTable) -> np.ndarray:
        ia = nearest(recs, synthetic, cols_a, n_neighbors)
        ib = nearest(recs, synthetic, cols_b, n_neighbors)
        return (ia[:, :, None] == ib[:, None, :]).any(axis=(1, 2))

    k = min(n_neighbors, len(synthetic))
    ra = rng.integers(0, len(synthetic), (len(targets), k))
    rb = rng.integers(0, len(synthetic), (len(targets), k))
    base = (ra[:, :, None] == rb[:, None, :]).any(axis=(1, 2))
    main, ctrl = links(targets), links(controls)
    out = attack_risk(main.sum(), ctrl.sum(), len(main), len(ctrl), base.sum(), len(base))
    out["aux_columns"] = [list(aux_columns[0]), list(aux_columns[1])]
    out["n_neighbors"] = int(n_neighbors)
    return out


def inference(
    targets: MixedTable,
    controls: MixedTable,
    synthetic: MixedTable,
    secret: str,
    aux: list[str],
    *,
    rng: np.random.Generator,
) -> dict:
    """Inference risk of ``secret`` from ``aux`` through the nearest synthetic record."""
    s = _positions(synthetic, [secret])[0]
    cols = _positions(synthetic, aux)
    numeric = bool(synthetic.is_numeric[s])
    syn_secret = synthetic.values[:, s]

    def correct(guess: np.ndarray, truth: np.ndarray) -> np.ndarray:
        both_missing = np.isnan(guess) & np.isnan(truth)
        if numeric:
            with np.errstate(invalid="ignore"):
                ok = np.abs(guess - truth) <= NUMERIC_TOLERANCE * np.abs(truth)
        else:
            ok = guess == truth
        return ok | both_missing

    def attack(recs: MixedTable) -> np.ndarray:
        guess = syn_secret[nearest(recs, synthetic, cols, 1)[:, 0]]
        return correct(guess, recs.values[:, s])

    main, ctrl = attack(targets), attack(controls)
    naive = syn_secret[rng.integers(0, len(synthetic), len(targets))]
    base = correct(naive, targets.values[:, s])
    out = attack_risk(main.sum(), ctrl.sum(), len(main), len(ctrl), base.sum(), len(base))
    out["aux_columns"] = list(aux)
    out["secret_kind"] = "numeric" if numeric else "categorical"
    return out
