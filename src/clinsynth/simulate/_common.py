"""Vectorized building blocks shared by the simulators (no per-row Python loops)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from scipy.special import expit, ndtr, ndtri

from clinsynth.errors import check_param

#: Rows used to solve a logistic intercept; the rows are i.i.d., so the first ones are a sample.
_CALIBRATION_ROWS = 200_000


def check_count(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """Check a row/patient count with the project's parameter template; return it as ``int``.

    >>> check_count("simulate_cohort", "num_rows", 10)
    10
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
    check_param(owner, name, value, ok, f"an int >= {minimum}")
    return int(value)  # type: ignore[arg-type]


def truncated_normal(
    rng: np.random.Generator,
    mean: np.ndarray | float,
    sd: np.ndarray | float,
    low: np.ndarray | float,
    high: np.ndarray | float,
    size: int,
) -> np.ndarray:
    """Draw ``size`` values of N(mean, sd) truncated to [low, high] by inverse CDF.

    Intervals in the right tail are mirrored to the left, where ``ndtr`` keeps its precision,
    so even far tails give values inside the interval (no rejection loop).

    >>> x = truncated_normal(np.random.default_rng(0), 0.0, 1.0, 2.0, 3.0, 1000)
    >>> bool(x.min() >= 2.0 and x.max() <= 3.0)
    True
    """
    mean = np.broadcast_to(np.asarray(mean, dtype=float), (size,))
    sd = np.broadcast_to(np.asarray(sd, dtype=float), (size,))
    low = np.broadcast_to(np.asarray(low, dtype=float), (size,))
    high = np.broadcast_to(np.asarray(high, dtype=float), (size,))
    with np.errstate(invalid="ignore"):
        a = (low - mean) / sd
        b = (high - mean) / sd
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    f_lo = ndtr(lo)
    f_hi = ndtr(hi)
    p = f_lo + rng.random(size) * (f_hi - f_lo)
    z = ndtri(np.clip(p, 1e-300, 1.0 - 1e-16))
    z = np.where(flip, -z, z)
    return np.clip(mean + sd * z, low, high)


def calibrated_intercept(offset: np.ndarray, target: float) -> float:
    """The intercept ``b`` with ``mean(expit(b + offset)) == target`` (safeguarded Newton).

    >>> round(calibrated_intercept(np.zeros(10), 0.5), 6)
    0.0
    """
    x = offset[:_CALIBRATION_ROWS]
    lo, hi = -40.0, 40.0
    b = float(np.log(target / (1 - target)) - x.mean())
    for _ in range(100):
        p = expit(b + x)
        gap = float(p.mean()) - target
        if abs(gap) < 1e-10:
            break
        if gap > 0:
            hi = b
        else:
            lo = b
        slope = float((p * (1 - p)).mean())
        step = b - gap / slope if slope > 1e-12 else np.nan
        # Newton when it stays inside the bracket, bisection otherwise.
        b = step if lo < step < hi else 0.5 * (lo + hi)
    return b


def bernoulli_logistic(
    rng: np.random.Generator, offset: np.ndarray, prevalence: float
) -> np.ndarray:
    """Draw booleans from ``expit(b + offset)``, ``b`` chosen so the mean risk is ``prevalence``."""
    b = calibrated_intercept(offset, prevalence)
    return rng.random(offset.shape[0]) < expit(b + offset)


def egfr_ckd_epi_2021(
    creatinine: np.ndarray | float, age: np.ndarray | float, female: np.ndarray | bool
) -> np.ndarray:
    """Estimated GFR (mL/min/1.73 m²) by the race-free CKD-EPI 2021 creatinine equation.

    Inker et al., New England Journal of Medicine 2021:
    ``142 · min(Scr/κ, 1)^α · max(Scr/κ, 1)^-1.200 · 0.9938^age · 1.012 [female]`` with
    κ = 0.7 (female) or 0.9 (male) and α = -0.241 (female) or -0.302 (male).

    Parameters
    ----------
    creatinine : array-like
        Serum creatinine in mg/dL (must be > 0).
    age : array-like
        Age in years.
    female : array-like of bool

    Returns
    -------
    numpy.ndarray
        eGFR, decreasing in creatinine and in age.

    Examples
    --------
    >>> round(float(egfr_ckd_epi_2021(1.0, 50, False)[()]), 1)
    91.7
    """
    scr = np.asarray(creatinine, dtype=float)
    female = np.asarray(female, dtype=bool)
    kappa = np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    ratio = scr / kappa
    value = (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938 ** np.asarray(age, dtype=float)
        * np.where(female, 1.012, 1.0)
    )
    return np.asarray(value)


def choose_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category index per row from a (rows x categories) matrix of non-negative weights."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * cum[:, -1]
    return (u[:, None] >= cum).sum(axis=1).clip(max=weights.shape[1] - 1)


def group_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums that restart at each group start (rows sorted by group).

    >>> group_cumsum(np.array([1, 2, 3, 4, 5]), np.array([0, 2]))
    array([ 1,  3,  3,  7, 12])
    """
    total = np.cumsum(values)
    before = np.concatenate([np.zeros(1, dtype=total.dtype), total[:-1]])
    marker = np.zeros(values.shape[0], dtype=np.int64)
    marker[starts] = starts
    # Each row subtracts the running total just before its group started.
    return total - before[np.maximum.accumulate(marker)]


def pick(labels: Sequence[str], codes: np.ndarray) -> np.ndarray:
    """Object array of string labels for integer codes (fast: one fancy-index)."""
    return np.asarray(list(labels), dtype=object)[codes]
