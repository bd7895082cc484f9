"""Empirical privacy audit: does a membership attack do better than epsilon allows?

A canary record is put in the training data or left out; the model is fitted ``runs`` times each
way (different seeds, otherwise the same data), and an attack scores every fitted model's
synthetic data (here: how close its nearest synthetic row comes to the canary). For an
(epsilon, delta)-DP training, every test that says "the canary was in" satisfies (Kairouz et al.
2015)

``TPR <= e^eps FPR + delta`` and ``1 - FPR <= e^eps (1 - TPR) + delta``,

so each threshold on the scores gives a lower bound on epsilon,
``max(log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR)))``, computed with
Clopper-Pearson bounds (TPR from below, FPR from above, each one-sided at ``(1 - confidence) / 2``)
so that it holds with the stated confidence for a fixed threshold; the largest over the
thresholds is reported (Jagielski et al. 2020). The attack's ROC AUC is also bounded: it is at
most the area under ``min(1, e^eps x + delta, 1 - e^-eps (1 - delta - x))``
(:func:`auc_upper_bound`).

An audit cannot prove privacy (it tests one attack on one canary); it catches accounting and
implementation bugs that let a model do visibly better than its epsilon allows. With ``R`` runs
each way it can certify at most ``log(b / (1 - b))`` with ``b = ((1 - confidence) / 2)^(1 / R)``
(0.81 for 10 runs at 95%): an audit that claims to test epsilon needs enough runs to exceed it
(:func:`max_certifiable_epsilon`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clinsynth.errors import ParameterError


def _check(owner: str, name: str, ok: bool, expected: str, value: object) -> None:
    if not ok:
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be {expected}. Got {value!r}."
        )


def _check_budget(owner: str, epsilon: float, delta: float) -> None:
    _check(
        owner,
        "epsilon",
        isinstance(epsilon, int | float) and not isinstance(epsilon, bool) and epsilon >= 0,
        "a number >= 0 (math.inf for no guarantee)",
        epsilon,
    )
    _check(
        owner,
        "delta",
        isinstance(delta, int | float) and not isinstance(delta, bool) and 0 <= delta < 1,
        "a number in [0, 1)",
        delta,
    )


def auc_upper_bound(epsilon: float, delta: float) -> float:
    """The largest ROC AUC any membership test can reach against an (epsilon, delta)-DP model.

    >>> round(auc_upper_bound(1.0, 0.0), 3)
    0.731
    """
    _check_budget("auc_upper_bound", epsilon, delta)
    if epsilon > 700:  # infinite, or exp overflows: the bound is 1 to within e^-700
        return 1.0
    x = np.linspace(0, 1, 100_001)
    tpr = np.minimum.reduce(
        [np.ones_like(x), math.exp(epsilon) * x + delta, 1 - math.exp(-epsilon) * (1 - delta - x)]
    )
    return float(np.trapezoid(np.clip(tpr, 0, 1), x))


def max_certifiable_epsilon(runs: int, confidence: float = 0.95) -> float:
    """The largest epsilon ``runs`` fits each way can certify (perfect separation).

    >>> round(max_certifiable_epsilon(10), 2)
    0.81
    """
    _check(
        "max_certifiable_epsilon",
        "runs",
        isinstance(runs, int | np.integer) and not isinstance(runs, bool) and runs >= 1,
        "an int >= 1",
        runs,
    )
    _check_confidence("max_certifiable_epsilon", confidence)
    b = ((1 - confidence) / 2) ** (1 / runs)
    return float(math.log(b / (1 - b)))


def _check_confidence(owner: str, confidence: float) -> None:
    _check(
        owner,
        "confidence",
        isinstance(confidence, float) and 0 < confidence < 1,
        "a float in (0, 1)",
        confidence,
    )


def epsilon_lower_bound(
    scores_in: np.ndarray,
    scores_out: np.ndarray,
    delta: float,
    confidence: float = 0.95,
) -> float:
    """The largest epsilon that the attack scores certify (higher score = "canary was in").

    Parameters
    ----------
    scores_in, scores_out : array of float
        The attack's score of each model fitted with the canary, and of each fitted without.
    delta : float
        The delta of the guarantee under audit.
    confidence : float
        Confidence of the Clopper-Pearson bounds (two one-sided bounds of half the rest each).

    Returns
    -------
    float
        0 when the scores certify nothing.

    Examples
    --------
    >>> round(epsilon_lower_bound(np.ones(10), np.zeros(10), delta=0.0), 2)
    0.81
    """
    _check_budget("epsilon_lower_bound", 0.0, delta)
    _check_confidence("epsilon_lower_bound", confidence)
    s_in = np.asarray(scores_in, dtype=np.float64)
    s_out = np.asarray(scores_out, dtype=np.float64)
    for name, s in (("scores_in", s_in), ("scores_out", s_out)):
        _check(
            "epsilon_lower_bound",
            name,
            s.ndim == 1 and len(s) > 0 and bool(np.isfinite(s).all()),
            "a non-empty 1-d array of finite numbers",
            f"shape {s.shape}" if s.ndim != 1 or not len(s) else "non-finite values",
        )
    alpha = (1 - confidence) / 2
    n_in, n_out = len(s_in), len(s_out)
    thresholds = np.unique(np.r_[s_in, s_out])
    k_in = n_in - np.searchsorted(np.sort(s_in), thresholds, side="left")  # scores >= t
    k_out = n_out - np.searchsorted(np.sort(s_out), thresholds, side="left")
    # Clopper-Pearson: TPR from below, FPR from above (and 1 - TPR from above, 1 - FPR from below)
    tpr_low = np.where(k_in > 0, stats.beta.ppf(alpha, k_in, n_in - k_in + 1), 0.0)
    fpr_high = np.where(k_out < n_out, stats.beta.ppf(1 - alpha, k_out + 1, n_out - k_out), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log((tpr_low - delta) / fpr_high)
        second = np.log((1 - fpr_high - delta) / (1 - tpr_low))
    bounds = np.r_[first, second]
    bounds = bounds[np.isfinite(bounds)]
    return float(max(0.0, bounds.max(initial=0.0)))


def canary_audit(
    fit_sample: Callable[[Any, int], Any],
    data: pd.DataFrame | dict[str, pd.DataFrame],
    canary: pd.DataFrame | dict[str, pd.DataFrame],
    score: Callable[[Any], float],
    *,
    runs: int,
    epsilon: float,
    delta: float,
    confidence: float = 0.95,
) -> dict:
    """Fit ``runs`` models with the canary and ``runs`` without, and bound epsilon from below.

    Parameters
    ----------
    fit_sample : callable
        ``fit_sample(training_rows, seed) -> synthetic rows``: fits a fresh model with that seed.
    data : DataFrame or dict of str to DataFrame
        The other training rows (the same for every run); for a schema (patient-level DP), the
        tables.
    canary : DataFrame or dict of str to DataFrame
        One row, appended to ``data`` in the runs "with"; for a schema, one patient: their rows
        in some of the tables (``{"patients": one row, "visits": their visits}``), appended to
        those tables.
    score : callable
        ``score(synthetic) -> float``: the attack; higher means "the canary was in".
    runs : int
        Fits each way.
    epsilon, delta : float
        The guarantee under audit (``math.inf`` for a model without one).
    confidence : float

    Returns
    -------
    dict
        ``epsilon_lower_bound`` (what the runs certify), ``epsilon_claimed``, ``passed`` (the
        bound stays at or below the claim), ``attack_auc``, ``auc_upper_bound``,
        ``max_certifiable_epsilon`` (what ``runs`` could certify at best) and the scores.
    """
    owner = "canary_audit"
    _check(owner, "runs", isinstance(runs, int) and runs >= 1, "an int >= 1", runs)
    _check_budget(owner, epsilon, delta)
    _check_confidence(owner, confidence)
    if isinstance(data, dict):  # a schema: the canary is a patient with rows in its tables
        with_canary, without = _schema_worlds(owner, data, canary)
    else:
        _check(
            owner,
            "canary",
            isinstance(canary, pd.DataFrame) and len(canary) == 1,
            "a DataFrame of one row",
            type(canary).__name__
            if not isinstance(canary, pd.DataFrame)
            else f"{len(canary)} rows",
        )
        _check(
            owner,
            "data",
            isinstance(data, pd.DataFrame) and list(data.columns) == list(canary.columns),
            "a DataFrame with the canary's columns",
            type(data).__name__,
        )
        with_canary = pd.concat([data, canary], ignore_index=True)
        without = data.reset_index(drop=True)
    s_in = np.array([score(fit_sample(with_canary, seed)) for seed in range(runs)])
    s_out = np.array([score(fit_sample(without, seed)) for seed in range(runs)])
    certified = epsilon_lower_bound(s_in, s_out, delta, confidence)
    auc = float(
        (s_in[:, None] > s_out[None, :]).mean() + 0.5 * (s_in[:, None] == s_out[None, :]).mean()
    )
    return {
        "epsilon_claimed": float(epsilon),
        "delta": float(delta),
        "epsilon_lower_bound": certified,
        "passed": bool(certified <= epsilon),
        "attack_auc": auc,
        "auc_upper_bound": auc_upper_bound(epsilon, delta),
        "max_certifiable_epsilon": max_certifiable_epsilon(runs, confidence),
        "runs_each": int(runs),
        "scores_in": s_in.tolist(),
        "scores_out": s_out.tolist(),
    }


def _schema_worlds(
    owner: str, data: dict[str, pd.DataFrame], canary: Any
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The tables with and without a canary patient (their rows appended to each table)."""
    _check(
        owner,
        "canary",
        isinstance(canary, dict)
        and bool(canary)
        and all(
            t in data
            and isinstance(rows, pd.DataFrame)
            and list(rows.columns) == list(data[t].columns)
            for t, rows in canary.items()
        ),
        "a dict of table name to the canary patient's rows, with the tables' columns",
        type(canary).__name__,
    )
    without = {t: df.reset_index(drop=True) for t, df in data.items()}
    with_canary = {
        t: pd.concat([df, canary[t]], ignore_index=True) if t in canary else df
        for t, df in without.items()
    }
    return with_canary, without
