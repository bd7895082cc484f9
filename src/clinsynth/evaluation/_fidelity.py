"""Column Shapes and Column Pair Trends, defined as SDMetrics (0.32) defines them.

Own vectorized implementation of SDMetrics' definitions, so that the figures are comparable:

* **Column Shapes** — one score per statistical column, averaged. Numerical and datetime columns:
  ``KSComplement = 1 - D`` with ``D`` the two-sample Kolmogorov-Smirnov statistic on the non-null
  values (datetimes as nanoseconds, values rounded to 14 decimals). Categorical, ordinal and
  boolean columns: ``TVComplement = 1 - TV`` with ``TV`` half the L1 distance between the category
  frequencies of the non-null values. Id and PII columns are ignored.
* **Column Pair Trends** — one score per pair of statistical columns. Two continuous columns:
  ``CorrelationSimilarity = 1 - |r_real - r_synth| / 2`` with Pearson's ``r`` on the rows where
  both are present; pairs where a column is constant are left out. Any other pair:
  ``ContingencySimilarity = 1 - TV`` of the joint frequencies (missing values are a category of
  their own); a continuous column in such a pair is cut into 10 equal-width bins, **each table on
  its own bin edges** (an SDMetrics quirk kept for comparability; the largest value and missing
  values share the last bin). As in SDMetrics' ``QualityReport``, only pairs that are associated
  in the real data count toward the average: ``|r_real| > 0.5`` for correlations and Cramér's
  V > 0.3 for contingency tables (set both thresholds to 0 for the plain average over all pairs,
  as in SDMetrics' property class). Contingency tables use at most 50,000 rows of each table, as
  SDMetrics does.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from clinsynth.errors import ParameterError
from clinsynth.evaluation._common import CONTINUOUS, DISCRETE, STATISTICAL, statistical_columns
from clinsynth.metadata import TableMetadata

_KS_DECIMALS = 14  # SDMetrics rounds to sys.float_info.dig - 1 decimals before the KS test.
NUM_DISCRETE_BINS = 10
#: The columns of Column Pair Trends' details.
PAIR_COLUMNS = [
    "Column 1",
    "Column 2",
    "Metric",
    "Score",
    "Real Correlation",
    "Synthetic Correlation",
    "Real Association",
    "Meets Threshold?",
]


# ---------------------------------------------------------------------------- column shapes
def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``1 - D`` of the two-sample Kolmogorov-Smirnov test on the non-null values.

    >>> ks_complement(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]))
    1.0
    """
    a = np.sort(np.round(real[~np.isnan(real)], _KS_DECIMALS))
    b = np.sort(np.round(synthetic[~np.isnan(synthetic)], _KS_DECIMALS))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return float(1.0 - np.max(np.abs(cdf_a - cdf_b)))


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """``1 - TV`` between the category frequencies of the non-null values.

    >>> tv_complement(pd.Series(list("aab")), pd.Series(list("abb")))
    0.6666666666666667
    """
    p = real.dropna().value_counts(normalize=True, sort=False)
    q = synthetic.dropna().value_counts(normalize=True, sort=False)
    if len(p) == 0 or len(q) == 0:
        return float("nan")
    p, q = p.align(q, fill_value=0.0)
    return float(1.0 - 0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


def column_shapes(
    real: pd.DataFrame, synthetic: pd.DataFrame, table: TableMetadata, numeric: dict
) -> pd.DataFrame:
    """Details of Column Shapes: ``Column``, ``Metric``, ``Score``.

    ``numeric`` maps each continuous column to its ``(real, synthetic)`` float arrays.
    """
    rows = []
    for col in statistical_columns(table):
        if table.sdtype(col) in CONTINUOUS:
            rows.append((col, "KSComplement", ks_complement(*numeric[col])))
        else:
            rows.append((col, "TVComplement", tv_complement(real[col], synthetic[col])))
    return pd.DataFrame(rows, columns=["Column", "Metric", "Score"])


# ---------------------------------------------------------------------------- pair trends
def _pairwise_pearson(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column pair on the rows where both are present."""
    present = ~np.isnan(x)
    m = present.astype(np.float64)
    filled = np.where(present, x, 0.0)
    mean = filled.sum(axis=0) / np.maximum(m.sum(axis=0), 1.0)
    centred = np.where(present, x - mean, 0.0)
    # sx[i, j]: sum of column i over rows where j is present (and i is)
    return pearson_from_sums(m.T @ m, centred.T @ m, (centred**2).T @ m, centred.T @ centred)


def pearson_from_sums(
    n: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray
) -> np.ndarray:
    """Pairwise-complete Pearson r from the sums of centred values over the rows where both
    columns are present (sums that add up over chunks of rows: the Dask evaluation's)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sx.T / n
        var_i = sxx - sx**2 / n
        r = cov / np.sqrt(var_i * var_i.T)
    r[n < 2] = np.nan
    # a column constant on the shared rows has no correlation (SciPy returns NaN)
    r[
        (var_i <= 1e-12 * np.maximum(sxx, 1e-300)) | (var_i.T <= 1e-12 * np.maximum(sxx.T, 1e-300))
    ] = np.nan
    return np.clip(r, -1.0, 1.0)


def _bin_codes(values: np.ndarray) -> np.ndarray:
    """SDMetrics' discretization: 10 equal-width bins on this table's own range, digitized so that
    the maximum and missing values fall in the last code."""
    finite = values[~np.isnan(values)]
    if len(finite) == 0 or finite.min() == finite.max():
        # One value (or none): a single bin; missing values get a code of their own.
        return np.where(np.isnan(values), NUM_DISCRETE_BINS + 1, 1)
    edges = np.histogram_bin_edges(finite, bins=NUM_DISCRETE_BINS)
    return np.digitize(values, edges)


def cramers_v(counts: np.ndarray) -> float:
    """Cramér's V of a contingency table (no continuity correction, unseen rows/columns dropped)."""
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    n = counts.sum()
    if n == 0 or min(counts.shape) < 2:
        return float("nan")
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / n / (min(counts.shape) - 1)))


def column_pair_trends(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    numeric: dict,
    *,
    contingency_rows: tuple[np.ndarray, np.ndarray] | None = None,
    real_correlation_threshold: float = 0.5,
    real_association_threshold: float = 0.3,
) -> pd.DataFrame:
    """Details of Column Pair Trends, one row per pair of statistical columns.

    ``contingency_rows`` are the row positions of ``real`` and ``synthetic`` used for contingency
    tables (a subsample of large tables); all rows when None.
    """
    columns = statistical_columns(table, STATISTICAL)
    kinds = {c: table.sdtype(c) in CONTINUOUS for c in columns}
    cont = [c for c in columns if kinds[c]]
    corr_r = _pairwise_pearson(np.column_stack([numeric[c][0] for c in cont])) if cont else None
    corr_s = _pairwise_pearson(np.column_stack([numeric[c][1] for c in cont])) if cont else None
    nunique_ok = {
        c: pd.Series(numeric[c][0]).nunique() != 1 and pd.Series(numeric[c][1]).nunique() != 1
        for c in cont
    }
    pos = {c: i for i, c in enumerate(cont)}

    if contingency_rows is None:
        contingency_rows = (np.arange(len(real)), np.arange(len(synthetic)))
    ir, is_ = contingency_rows
    codes: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for c in columns:
        if kinds[c]:
            cr, cs = _bin_codes(numeric[c][0][ir]), _bin_codes(numeric[c][1][is_])
            codes[c] = (cr, cs, NUM_DISCRETE_BINS + 2)
        else:
            both = pd.concat([real[c].iloc[ir], synthetic[c].iloc[is_]], ignore_index=True)
            joint, uniques = pd.factorize(both, use_na_sentinel=False)
            codes[c] = (joint[: len(ir)], joint[len(ir) :], max(len(uniques), 1))

    rows = []
    for c1, c2 in itertools.combinations(columns, 2):
        if kinds[c1] and kinds[c2]:
            i, j = pos[c1], pos[c2]
            r_real, r_syn = float(corr_r[i, j]), float(corr_s[i, j])
            if not (nunique_ok[c1] and nunique_ok[c2]):
                r_real = r_syn = float("nan")
            score = 1 - abs(r_real - r_syn) / 2
            meets = (not np.isnan(r_real)) and abs(r_real) > real_correlation_threshold
            if real_correlation_threshold <= 0:
                meets = True
            rows.append((c1, c2, "CorrelationSimilarity", score, r_real, r_syn, np.nan, meets))
            continue
        a_r, a_s, ka = codes[c1]
        b_r, b_s, kb = codes[c2]
        counts_r = np.bincount(a_r * kb + b_r, minlength=ka * kb)
        counts_s = np.bincount(a_s * kb + b_s, minlength=ka * kb)
        tv = 0.5 * np.abs(counts_r / max(len(a_r), 1) - counts_s / max(len(a_s), 1)).sum()
        assoc = float("nan")
        meets = True
        if real_association_threshold > 0:
            assoc = cramers_v(counts_r.reshape(ka, kb))
            meets = (not np.isnan(assoc)) and assoc > real_association_threshold
        rows.append((c1, c2, "ContingencySimilarity", 1 - tv, np.nan, np.nan, assoc, meets))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def pair_trends_score(details: pd.DataFrame) -> float | None:
    """The property score: the mean over the pairs that meet the real-association threshold."""
    if details.empty:
        return None
    kept = details.loc[details["Meets Threshold?"].astype(bool), "Score"].dropna()
    return float(kept.mean()) if len(kept) else None


def shapes_score(details: pd.DataFrame) -> float | None:
    kept = details["Score"].dropna()
    return float(kept.mean()) if len(kept) else None


__all__ = [
    "DISCRETE",
    "column_pair_trends",
    "column_shapes",
    "ks_complement",
    "pair_trends_score",
    "shapes_score",
    "tv_complement",
]


def check_thresholds(function: str, **thresholds: object) -> None:
    """Raise a ParameterError for a pair-trends threshold that is not a number in [0, 1]."""
    for name, value in thresholds.items():
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ParameterError(
                f"The '{name}' parameter of {function} must be a number in [0, 1]. Got {value!r}."
            )


def score_metrics(properties: dict, pairs: pd.DataFrame) -> dict:
    """The headline metrics of the two properties and of the pairs behind them."""
    return {
        "column_shapes": properties["Column Shapes"],
        "column_pair_trends": properties["Column Pair Trends"],
        "column_pair_trends_all_pairs": float(pairs["Score"].mean()) if len(pairs) else None,
        "pairs_meeting_threshold": int(pairs["Meets Threshold?"].sum()) if len(pairs) else 0,
        "pairs_total": len(pairs),
    }
