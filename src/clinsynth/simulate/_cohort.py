"""A labelled cohort: 20 clinical features and a condition (healthy, diabetes, hypertension,
heart disease).

Given the condition, the continuous features are multivariate normal in a transformed space
(log for skewed labs, logit for the HDL share of total cholesterol): each is a condition mean,
plus age and sex terms, plus loadings on three shared factors (metabolic, lifestyle, lipid) and
its own noise. The rules in :data:`COHORT_ORDER_RULES` and :data:`COHORT_RANGES` hold on every
row by construction (reparametrization and clipping, no rejection loop):

- diastolic = systolic - pulse pressure, with the pulse pressure >= 15 mmHg;
- HDL = total cholesterol x a share in [0.08, 0.6]; LDL by the Friedewald equation
  (total - HDL - triglycerides/5), the VLDL term capped so LDL keeps >= 40 % of non-HDL;
- HbA1c follows fasting glucose (ADAG-like line plus small noise);
- eGFR is computed from creatinine, age and sex by CKD-EPI 2021, so it falls with both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

from clinsynth._utils import make_rng
from clinsynth.errors import ParameterError
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.simulate._common import check_count, egfr_ckd_epi_2021, pick, truncated_normal

#: The condition labels, in the order of the default proportions.
COHORT_CONDITIONS: tuple[str, ...] = ("healthy", "diabetes", "hypertension", "heart_disease")
_DEFAULT_PROPORTIONS = (0.40, 0.20, 0.25, 0.15)

#: ``(low_column, high_column)``: ``low < high`` on every row.
COHORT_ORDER_RULES: list[tuple[str, str]] = [
    ("diastolic_bp", "systolic_bp"),
    ("ldl_cholesterol", "total_cholesterol"),
    ("hdl_cholesterol", "total_cholesterol"),
]

#: ``{column: (min, max)}``: every value lies in its closed range.
COHORT_RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 90),
    "bmi": (15.0, 60.0),
    "waist_cm": (55.0, 180.0),
    "systolic_bp": (80, 240),
    "diastolic_bp": (40, 225),
    "heart_rate": (40, 150),
    "total_cholesterol": (100, 400),
    "hdl_cholesterol": (15, 240),
    "ldl_cholesterol": (10, 370),
    "triglycerides": (30, 1500),
    "fasting_glucose": (55, 450),
    "hba1c": (4.0, 15.0),
    "creatinine": (0.3, 15.0),
    "egfr": (5, 150),
    "crp": (0.1, 200.0),
}

_SMOKING = ("never", "former", "current")
_ALCOHOL = ("none", "moderate", "heavy")
_ACTIVITY = ("low", "moderate", "high")

# Per condition (healthy, diabetes, hypertension, heart_disease).
_AGE = {"mean": (45, 58, 60, 66), "sd": (15, 12, 12, 11)}
_MALE = (0.45, 0.53, 0.50, 0.62)
_FAMILY = (0.25, 0.45, 0.40, 0.50)
_SMOKING_P = ((0.60, 0.22, 0.18), (0.50, 0.30, 0.20), (0.50, 0.32, 0.18), (0.35, 0.40, 0.25))
_ALCOHOL_P = ((0.30, 0.60, 0.10), (0.40, 0.48, 0.12), (0.28, 0.55, 0.17), (0.35, 0.52, 0.13))
# Latent "inactivity": high values mean low activity.
_ACTIVITY_P = ((0.30, 0.45, 0.25), (0.50, 0.35, 0.15), (0.40, 0.40, 0.20), (0.50, 0.38, 0.12))

# Latent continuous variables: condition means, sd, age slope (per decade above 50), male
# shift and loadings on the factors (metabolic, lifestyle, lipid). Loadings are correlations
# with the factor (their squares sum to < 1), so ``sd`` is the within-condition sd.
_LATENT: dict[str, dict] = {
    "log_bmi": dict(
        mean=np.log([25.0, 31.0, 29.0, 28.5]), sd=0.14, age=0.01, male=0.01, load=(0.7, 0.3, 0.0)
    ),
    "sbp": dict(mean=(118, 132, 150, 138), sd=12, age=3.0, male=3.0, load=(0.35, 0.1, 0.0)),
    "log_pp": dict(
        mean=np.log([45, 52, 60, 52]), sd=0.15, age=0.05, male=0.0, load=(0.1, 0.0, 0.0)
    ),
    "heart_rate": dict(mean=(70, 76, 74, 68), sd=10, age=-0.5, male=-2.0, load=(0.2, 0.2, 0.0)),
    "log_tc": dict(
        mean=np.log([195, 200, 205, 180]), sd=0.15, age=0.02, male=-0.02, load=(0.1, 0.0, 0.7)
    ),
    "logit_hdl": dict(
        mean=(-0.94, -1.27, -1.13, -1.19), sd=0.30, age=0.0, male=-0.25, load=(-0.5, -0.2, -0.2)
    ),
    "log_tg": dict(
        mean=np.log([110, 180, 150, 160]), sd=0.40, age=0.02, male=0.1, load=(0.6, 0.2, 0.3)
    ),
    "log_glucose": dict(
        mean=np.log([90, 150, 100, 102]),
        sd=(0.08, 0.25, 0.10, 0.10),
        age=0.01,
        male=0.02,
        load=(0.5, 0.0, 0.0),
    ),
    "log_creat": dict(
        mean=np.log([0.80, 0.88, 0.88, 0.92]),
        sd=(0.18, 0.30, 0.25, 0.25),
        age=0.04,
        male=0.2,
        load=(0.1, 0.0, 0.0),
    ),
    "log_crp": dict(
        mean=np.log([1.5, 3.0, 2.5, 3.5]), sd=0.8, age=0.05, male=-0.1, load=(0.4, 0.3, 0.0)
    ),
    "smoking": dict(mean=(0, 0, 0, 0), sd=1.0, age=0.0, male=0.0, load=(0.0, 0.6, 0.0)),
    "alcohol": dict(mean=(0, 0, 0, 0), sd=1.0, age=0.0, male=0.0, load=(0.0, 0.5, 0.0)),
    "inactivity": dict(mean=(0, 0, 0, 0), sd=1.0, age=0.0, male=0.0, load=(0.3, 0.5, 0.0)),
    "family": dict(mean=(0, 0, 0, 0), sd=1.0, age=0.0, male=0.0, load=(0.0, 0.0, 0.0)),
}


def simulate_cohort(
    num_rows: int = 1000,
    *,
    seed: int | np.random.Generator | None = None,
    conditions: Sequence[str] | None = None,
    proportions: Mapping[str, float] | Sequence[float] | None = None,
) -> tuple[pd.DataFrame, Metadata]:
    """Simulate a cohort of 20 clinical features with a condition label.

    Parameters
    ----------
    num_rows : int, default 1000
    seed : int, numpy.random.Generator or None
        Same seed, same rows.
    conditions : list of str, optional
        Which of ``healthy``, ``diabetes``, ``hypertension``, ``heart_disease`` to draw
        (default all four).
    proportions : dict or list of float, optional
        Share of each condition (a dict by name, or a list in the order of ``conditions``);
        must sum to 1. Default 0.40/0.20/0.25/0.15, rescaled to the chosen conditions.

    Returns
    -------
    data : pandas.DataFrame
        Columns ``age, sex, bmi, waist_cm, systolic_bp, diastolic_bp, heart_rate,
        total_cholesterol, hdl_cholesterol, ldl_cholesterol, triglycerides, fasting_glucose,
        hba1c, creatinine, egfr, crp, smoking, alcohol, physical_activity, family_history`` and
        ``condition``. :data:`COHORT_ORDER_RULES` and :data:`COHORT_RANGES` hold on every row.
    metadata : Metadata
        One table ``cohort``; ``alcohol`` and ``physical_activity`` are ordinal.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_cohort
    >>> df, md = simulate_cohort(500, seed=0)
    >>> bool((df["diastolic_bp"] < df["systolic_bp"]).all())
    True
    >>> sorted(df["condition"].unique())
    ['diabetes', 'healthy', 'heart_disease', 'hypertension']
    """
    n = check_count("simulate_cohort", "num_rows", num_rows)
    names, probs = _condition_shares(conditions, proportions)
    rng = make_rng(seed)
    cond_idx = np.asarray([COHORT_CONDITIONS.index(c) for c in names])[
        rng.choice(len(names), size=n, p=probs)
    ]
    data = _features(cond_idx, rng)
    data["condition"] = pick(COHORT_CONDITIONS, cond_idx)
    df = pd.DataFrame(data, copy=False)
    return df, _metadata(df)


def _condition_shares(
    conditions: Sequence[str] | None, proportions: Mapping[str, float] | Sequence[float] | None
) -> tuple[list[str], np.ndarray]:
    if isinstance(conditions, str):
        conditions = [conditions]
    names = list(COHORT_CONDITIONS if conditions is None else conditions)
    unknown = [c for c in names if c not in COHORT_CONDITIONS]
    if unknown or not names or len(set(names)) != len(names):
        raise ParameterError(
            "The 'conditions' parameter of simulate_cohort must list distinct conditions from "
            f"{', '.join(COHORT_CONDITIONS)}. Got {names!r}."
        )
    if proportions is None:
        p = np.array([_DEFAULT_PROPORTIONS[COHORT_CONDITIONS.index(c)] for c in names])
        return names, p / p.sum()
    if isinstance(proportions, Mapping):
        extra = [k for k in proportions if k not in names]
        if extra:
            raise ParameterError(
                f"The 'proportions' parameter of simulate_cohort names {extra}, which are not "
                f"among the conditions {names}. Give one share per condition."
            )
        p = np.array([proportions.get(c, 0.0) for c in names], dtype=float)
    else:
        p = np.asarray(list(proportions), dtype=float)
        if p.shape != (len(names),):
            raise ParameterError(
                f"The 'proportions' parameter of simulate_cohort must give {len(names)} shares "
                f"(one per condition {names}). Got {list(proportions)!r}."
            )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1) > 1e-6:
        raise ParameterError(
            "The 'proportions' parameter of simulate_cohort must be shares >= 0 that sum to 1. "
            f"Got {p.tolist()} (sum {p.sum():.6g})."
        )
    return names, p / p.sum()


def _latent(
    name: str,
    c: np.ndarray,
    decade: np.ndarray,
    male: np.ndarray,
    factors: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    spec = _LATENT[name]
    load = np.asarray(spec["load"], dtype=float)
    own = np.sqrt(1.0 - float(load @ load))
    z = factors @ load + own * rng.standard_normal(c.shape[0])
    sd = np.asarray(spec["sd"], dtype=float)
    sd = sd[c] if sd.ndim else sd
    return (
        np.asarray(spec["mean"], dtype=float)[c]
        + spec["age"] * decade
        + spec["male"] * male
        + sd * z
    )


def _categories(z: np.ndarray, c: np.ndarray, table: tuple) -> np.ndarray:
    """Ordered categories of a standard-normal latent, with per-condition shares."""
    cum = np.cumsum(np.asarray(table, dtype=float), axis=1)[:, :-1]
    cuts = ndtri(cum)[c]  # (rows, k - 1)
    return (z[:, None] > cuts).sum(axis=1)


def _features(c: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = c.shape[0]
    lo, hi = COHORT_RANGES["age"]
    age = np.floor(
        truncated_normal(
            rng, np.asarray(_AGE["mean"])[c], np.asarray(_AGE["sd"])[c], lo, hi + 0.999, n
        )
    ).astype(np.int64)
    male = rng.random(n) < np.asarray(_MALE)[c]
    decade = (age - 50) / 10.0
    factors = rng.standard_normal((n, 3))
    z = {k: _latent(k, c, decade, male, factors, rng) for k in _LATENT}
    r = COHORT_RANGES

    bmi = np.round(np.clip(np.exp(z["log_bmi"]), *r["bmi"]), 1)
    waist = np.round(
        np.clip(2.2 * bmi + 28 + 8 * male + 5 * rng.standard_normal(n), *r["waist_cm"]), 1
    )
    sbp = np.round(np.clip(z["sbp"], *r["systolic_bp"]))
    pulse = np.round(np.clip(np.exp(z["log_pp"]), 15, 110))
    dbp = np.clip(sbp - pulse, r["diastolic_bp"][0], sbp - 15)
    heart_rate = np.round(np.clip(z["heart_rate"], *r["heart_rate"]))
    tc = np.round(np.clip(np.exp(z["log_tc"]), *r["total_cholesterol"]))
    hdl = np.round(np.clip(tc * np.clip(expit(z["logit_hdl"]), 0.08, 0.6), *r["hdl_cholesterol"]))
    tg = np.round(np.clip(np.exp(z["log_tg"]), *r["triglycerides"]))
    non_hdl = tc - hdl
    ldl = np.round(non_hdl - np.minimum(tg / 5.0, 0.6 * non_hdl))
    glucose = np.round(np.clip(np.exp(z["log_glucose"]), *r["fasting_glucose"]))
    hba1c = np.round(np.clip(1.9 + 0.038 * glucose + 0.3 * rng.standard_normal(n), *r["hba1c"]), 1)
    creat = np.round(np.clip(np.exp(z["log_creat"]), *r["creatinine"]), 2)
    egfr = np.round(np.clip(egfr_ckd_epi_2021(creat, age, ~male), *r["egfr"]))
    crp = np.round(np.clip(np.exp(z["log_crp"]), *r["crp"]), 1)
    family = z["family"] < ndtri(np.asarray(_FAMILY)[c])

    as_int = {"dtype": np.int64}
    return {
        "age": age,
        "sex": pick(("female", "male"), male.astype(np.int8)),
        "bmi": bmi,
        "waist_cm": waist,
        "systolic_bp": sbp.astype(**as_int),
        "diastolic_bp": dbp.astype(**as_int),
        "heart_rate": heart_rate.astype(**as_int),
        "total_cholesterol": tc.astype(**as_int),
        "hdl_cholesterol": hdl.astype(**as_int),
        "ldl_cholesterol": ldl.astype(**as_int),
        "triglycerides": tg.astype(**as_int),
        "fasting_glucose": glucose.astype(**as_int),
        "hba1c": hba1c,
        "creatinine": creat,
        "egfr": egfr.astype(**as_int),
        "crp": crp,
        "smoking": pick(_SMOKING, _categories(z["smoking"], c, _SMOKING_P)),
        "alcohol": pick(_ALCOHOL, _categories(z["alcohol"], c, _ALCOHOL_P)),
        # Ascending inactivity runs from "high" to "low" activity.
        "physical_activity": pick(
            _ACTIVITY, 2 - _categories(z["inactivity"], c, tuple(p[::-1] for p in _ACTIVITY_P))
        ),
        "family_history": family,
    }


def _metadata(df: pd.DataFrame) -> Metadata:
    columns: dict[str, dict] = {}
    for col in df.columns:
        if col in ("sex", "smoking", "condition"):
            columns[col] = {"sdtype": "categorical"}
        elif col == "alcohol":
            columns[col] = {"sdtype": "ordinal", "order": list(_ALCOHOL)}
        elif col == "physical_activity":
            columns[col] = {"sdtype": "ordinal", "order": list(_ACTIVITY)}
        elif col == "family_history":
            columns[col] = {"sdtype": "boolean"}
        else:
            rep = "Int64" if df[col].dtype.kind == "i" else "Float"
            columns[col] = {"sdtype": "numerical", "computer_representation": rep}
    return Metadata({"cohort": TableMetadata(columns)})
