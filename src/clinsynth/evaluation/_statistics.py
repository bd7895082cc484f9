"""Per-column statistical tests, moments and Wasserstein distances (supplementary fidelity details).

With tens of thousands of rows, tests detect differences too small to matter: read the p-values
together with the effect sizes (KS statistic, Cramér's V, standardized Wasserstein distance).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from clinsynth.evaluation._common import CONTINUOUS, statistical_columns
from clinsynth.metadata import TableMetadata

_NS_PER_DAY = 86_400e9


def _days_if_datetime(values: np.ndarray, sdtype: str) -> np.ndarray:
    # Moments and distances of dates are read in days, not nanoseconds.
    return values / _NS_PER_DAY if sdtype == "datetime" else values


def _quiet(func, *args, **kwargs):
    """Call a SciPy routine that may warn on degenerate input (constant data, tiny samples)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _moments(x: np.ndarray) -> tuple[float, float, float, float]:
    if len(x) == 0:
        return (np.nan,) * 4
    if len(x) < 2 or np.ptp(x) == 0:
        return float(np.mean(x)), 0.0, np.nan, np.nan
    return (
        float(np.mean(x)),
        float(np.var(x, ddof=1)),
        float(_quiet(stats.skew, x)),
        float(_quiet(stats.kurtosis, x)),
    )


def numeric_statistics(table: TableMetadata, numeric: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """KS and Welch tests, moments and Wasserstein distances of every continuous column.

    Returns ``(tests, moments)`` DataFrames, one row per column.
    """
    tests, moments = [], []
    for col in statistical_columns(table, CONTINUOUS):
        sdtype = table.sdtype(col)
        r, s = (_days_if_datetime(v[~np.isnan(v)], sdtype) for v in numeric[col])
        if len(r) == 0 or len(s) == 0:
            tests.append((col, "numerical", np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan))
            moments.append((col, *([np.nan] * 8)))
            continue
        ks = _quiet(stats.ks_2samp, r, s)
        if np.ptp(r) == 0 and np.ptp(s) == 0:
            t_p = 1.0 if r[0] == s[0] else 0.0
            t_stat = 0.0 if r[0] == s[0] else np.inf
        else:
            t = _quiet(stats.ttest_ind, r, s, equal_var=False)
            t_stat, t_p = float(t.statistic), float(t.pvalue)
        wd = float(stats.wasserstein_distance(r, s))
        sd = float(np.std(r))
        wd_std = wd / sd if sd > 0 else (0.0 if wd == 0 else np.inf)
        tests.append(
            (col, sdtype, float(ks.statistic), float(ks.pvalue), t_stat, t_p, np.nan, wd, wd_std)
        )
        moments.append((col, *_moments(r), *_moments(s)))
    tests_df = pd.DataFrame(
        tests,
        columns=[
            "Column",
            "Kind",
            "KS Statistic",
            "KS p-value",
            "Welch t",
            "Welch p-value",
            "Chi-square p-value",
            "Wasserstein",
            "Wasserstein (standardized)",
        ],
    )
    moments_df = pd.DataFrame(
        moments,
        columns=[
            "Column",
            "Real Mean",
            "Real Variance",
            "Real Skewness",
            "Real Kurtosis",
            "Synthetic Mean",
            "Synthetic Variance",
            "Synthetic Skewness",
            "Synthetic Kurtosis",
        ],
    )
    return tests_df, moments_df


def categorical_statistics(
    real: pd.DataFrame, synthetic: pd.DataFrame, table: TableMetadata
) -> pd.DataFrame:
    """Chi-square test of homogeneity (real vs synthetic category counts) and Cramér's V of the
    2 x k table, per discrete column; missing values count as a category."""
    rows = []
    for col in statistical_columns(table, ("categorical", "ordinal", "boolean")):
        sdtype = table.sdtype(col)
        # Missing values as one level of their own: NaN keys do not align across the two
        # counts (pandas 3 drops their counts).
        counts = pd.concat(
            [
                _levels(real[col]).value_counts(sort=False).rename("real"),
                _levels(synthetic[col]).value_counts(sort=False).rename("synthetic"),
            ],
            axis=1,
        ).fillna(0)
        observed = counts.to_numpy(dtype=float).T
        if observed.shape[1] < 2:
            rows.append((col, sdtype, 0.0, 1.0, 0.0))
            continue
        chi2, p, _, _ = _quiet(stats.chi2_contingency, observed, correction=False)
        v = float(np.sqrt(chi2 / observed.sum()))  # min(2, k) - 1 == 1
        rows.append((col, sdtype, float(chi2), float(p), v))
    return pd.DataFrame(
        rows, columns=["Column", "Kind", "Chi-square", "Chi-square p-value", "Cramer's V"]
    )


def _levels(series: pd.Series) -> pd.Series:
    """The column as levels, missing values as the level "<missing>"."""
    values = series.astype(object)
    return values.where(series.notna(), "<missing>")
