"""A hospital database: patients, their visits and the lab results of each visit.

- ``patients``: demographics, smoking status and five chronic conditions (correlated through
  logistic models: diabetes and hypertension raise CKD and heart-failure risk).
- ``visits``: 1 + negative-binomial visits per patient (more with more conditions), in date
  order and never overlapping; a department that depends on the conditions; a length of stay
  (0 for same-day visits) with ``discharge_date = admission_date + length_of_stay``.
- ``lab_results``: Poisson results per visit (more for long stays), dated within the visit,
  carrying the visit's patient; a test catalogue with units and normal ranges; values built from
  the test's mean, sex/age terms, the patient's conditions (diabetics have higher glucose and
  HbA1c, CKD higher creatinine and potassium, heart failure higher NT-proBNP), a persistent
  patient effect and visit-to-visit noise.

Everything is drawn for all rows at once; groups are handled with ``np.repeat`` and cumulative
sums, never with a loop over patients or visits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth._utils import make_rng
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.simulate._common import (
    bernoulli_logistic,
    check_count,
    choose_rows,
    group_cumsum,
    pick,
    truncated_normal,
)

_START = np.datetime64("2016-01-01", "D")
_ENROLMENT_DAYS = 6 * 365
#: Last day of the study window (2024-12-31), in days after ``_START``.
_END_DAYS = int((np.datetime64("2024-12-31", "D") - _START).astype(int))
CHRONIC_CONDITIONS = ("diabetes", "hypertension", "chronic_kidney_disease", "copd", "heart_failure")
_SMOKING = ("never", "former", "current")

#: ``(table, earlier_column, later_column)``: within a row, earlier <= later.
HOSPITAL_ORDER_RULES: list[tuple[str, str, str]] = [
    ("visits", "admission_date", "discharge_date"),
]

DEPARTMENTS = (
    "emergency", "internal_medicine", "surgery", "cardiology",
    "nephrology", "pulmonology", "endocrinology", "geriatrics",
)  # fmt: skip
_DEPT_WEIGHT = np.array([0.30, 0.25, 0.15, 0.06, 0.03, 0.05, 0.04, 0.06])
# Condition -> department whose weight it multiplies, and by how much.
_DEPT_BOOST = {
    "diabetes": ("endocrinology", 5.0),
    "hypertension": ("cardiology", 1.5),
    "chronic_kidney_disease": ("nephrology", 6.0),
    "copd": ("pulmonology", 6.0),
    "heart_failure": ("cardiology", 5.0),
}
_SAME_DAY = np.array([0.55, 0.35, 0.20, 0.50, 0.60, 0.50, 0.80, 0.20])
_STAY_MEAN = np.array([2.0, 4.0, 5.0, 4.0, 5.0, 5.0, 3.0, 8.0])
_LABS_BASE = np.array([3.0, 2.5, 2.0, 2.0, 3.0, 1.5, 2.0, 2.5])

# The test catalogue. Values: mean (log-mean for log tests) + male + age per decade above 60
# + condition shifts + patient effect (sd_between) + noise (sd_within).
_TESTS = pd.DataFrame(
    [
        # id, name, unit, normal low, high, log, decimals, mean, male, age, between, within
        (101, "Glucose", "mg/dL", 70.0, 99.0, False, 0, 96.0, 2.0, 1.5, 8.0, 10.0),
        (102, "HbA1c", "%", 4.0, 5.6, False, 1, 5.4, 0.0, 0.05, 0.3, 0.15),
        (103, "Creatinine", "mg/dL", 0.6, 1.2, True, 2, np.log(0.8), 0.22, 0.04, 0.15, 0.08),
        (104, "Potassium", "mmol/L", 3.5, 5.0, False, 1, 4.2, 0.05, 0.02, 0.2, 0.3),
        (105, "Sodium", "mmol/L", 135.0, 145.0, False, 0, 139.5, 0.0, -0.2, 1.5, 2.0),
        (106, "Hemoglobin", "g/dL", 12.0, 16.0, False, 1, 13.2, 1.4, -0.1, 0.9, 0.6),
        (107, "White blood cells", "10^9/L", 4.0, 11.0, True, 1, np.log(7.0), 0.0, 0.0, 0.15, 0.25),
        (108, "LDL cholesterol", "mg/dL", 0.0, 129.0, False, 0, 112.0, -3.0, 2.0, 28.0, 8.0),
        (109, "C-reactive protein", "mg/L", 0.0, 5.0, True, 1, np.log(2.5), 0.0, 0.05, 0.7, 0.8),
        (110, "NT-proBNP", "pg/mL", 0.0, 125.0, True, 0, np.log(60.0), -0.2, 0.25, 0.6, 0.4),
    ],
    columns=[
        "id", "name", "unit", "low", "high", "log", "decimals",
        "mean", "male", "age", "between", "within",
    ],
)  # fmt: skip
# Condition shifts per test (on the log scale for log tests).
_TEST_SHIFTS = {
    "diabetes": {"Glucose": 60.0, "HbA1c": 2.0, "Creatinine": 0.05, "LDL cholesterol": -12.0},
    "hypertension": {"Creatinine": 0.05},
    "chronic_kidney_disease": {
        "Creatinine": 0.8, "Potassium": 0.4, "Hemoglobin": -1.5,
        "C-reactive protein": 0.3, "NT-proBNP": 0.7,
    },
    "copd": {"White blood cells": 0.1, "C-reactive protein": 0.5, "Hemoglobin": 0.3},
    "heart_failure": {
        "Creatinine": 0.15, "Sodium": -2.0, "Hemoglobin": -0.5, "NT-proBNP": 2.5,
        "LDL cholesterol": -10.0, "C-reactive protein": 0.3, "Potassium": 0.1,
    },
}  # fmt: skip
# Which tests each department orders (weights, in catalogue order).
_TEST_MIX = np.array(
    [
        [3, 1, 3, 3, 3, 3, 3, 1, 3, 1],  # emergency
        [3, 2, 3, 3, 3, 3, 3, 1, 2, 1],  # internal_medicine
        [2, 1, 3, 3, 3, 4, 3, 0.5, 2, 0.5],  # surgery
        [2, 1, 3, 3, 2, 2, 1, 4, 1, 4],  # cardiology
        [2, 1, 6, 5, 3, 3, 1, 1, 1, 1],  # nephrology
        [1, 0.5, 2, 2, 2, 3, 3, 0.5, 3, 1],  # pulmonology
        [6, 6, 2, 1, 1, 1, 1, 2, 0.5, 0.5],  # endocrinology
        [2, 1, 3, 3, 3, 3, 2, 1, 2, 2],  # geriatrics
    ]
)


def simulate_hospital(
    num_patients: int = 1000, *, seed: int | np.random.Generator | None = None
) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """Simulate a three-table hospital database: patients, visits and lab results.

    Parameters
    ----------
    num_patients : int, default 1000
        Rows of ``patients``; visits and results follow (about 3 visits per patient and 4
        results per visit on average).
    seed : int, numpy.random.Generator or None
        Same seed, same tables.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        ``patients`` (``patient_id``, sex, birth date, smoking, chronic conditions), ``visits``
        (``visit_id``, ``patient_id``, admission and discharge dates, department, length of
        stay) and ``lab_results`` (``result_id``, ``visit_id``, ``patient_id``, ``VISITDATE``,
        ``TESTTYPEID``, ``test_name``, ``RESULTNUMERIC``, ``units``, ``normal_low``,
        ``normal_high``). Dates are ``datetime64[ns]`` at midnight.
    metadata : Metadata
        Three tables with primary keys and the relationships patients -> visits,
        visits -> lab_results and patients -> lab_results.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_hospital
    >>> tables, md = simulate_hospital(50, seed=0)
    >>> sorted(tables)
    ['lab_results', 'patients', 'visits']
    >>> v = tables["visits"]
    >>> bool((v["discharge_date"] >= v["admission_date"]).all())
    True
    """
    n = check_count("simulate_hospital", "num_patients", num_patients)
    rng = make_rng(seed)
    patients, ctx = _patients(n, rng)
    visits, vctx = _visits(ctx, rng)
    labs = _lab_results(ctx, vctx, rng)
    return {"patients": patients, "visits": visits, "lab_results": labs}, _metadata()


def _patients(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    age = np.floor(truncated_normal(rng, 58.0, 18.0, 18.0, 95.999, n))
    male = rng.random(n) < 0.48
    decade = (age - 60) / 10.0
    smoking = rng.choice(3, size=n, p=[0.50, 0.30, 0.20])
    smoker = (smoking > 0).astype(float) + (smoking == 2)
    cond: dict[str, np.ndarray] = {}
    cond["diabetes"] = bernoulli_logistic(rng, 0.4 * decade + 0.2 * male, 0.20)
    cond["hypertension"] = bernoulli_logistic(rng, 0.6 * decade + 0.8 * cond["diabetes"], 0.40)
    cond["chronic_kidney_disease"] = bernoulli_logistic(
        rng, 0.5 * decade + 1.1 * cond["diabetes"] + 0.7 * cond["hypertension"], 0.12
    )
    cond["copd"] = bernoulli_logistic(rng, 0.4 * decade + 0.2 * male + 0.9 * smoker, 0.10)
    cond["heart_failure"] = bernoulli_logistic(
        rng,
        0.6 * decade
        + 0.8 * cond["hypertension"]
        + 0.6 * cond["diabetes"]
        + 0.5 * cond["chronic_kidney_disease"],
        0.08,
    )
    first = rng.integers(0, _ENROLMENT_DAYS, size=n)
    birth = first - np.floor(age * 365.25 + rng.random(n) * 365).astype(np.int64)
    table = pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1, dtype=np.int64),
            "sex": pick(("female", "male"), male.astype(np.int8)),
            "birth_date": _dates(birth),
            "smoking_status": pick(_SMOKING, smoking),
            **cond,
        },
        copy=False,
    )
    conditions = np.column_stack([cond[c] for c in CHRONIC_CONDITIONS])
    ctx = {"male": male, "decade": decade, "first": first, "conditions": conditions}
    return table, ctx


def _visits(
    ctx: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    conditions = ctx["conditions"]
    n = conditions.shape[0]
    burden = conditions.sum(axis=1)
    mean_extra = 1.5 * np.exp(0.3 * burden + 0.15 * ctx["decade"])
    r = 1.2
    count = 1 + rng.negative_binomial(r, r / (r + mean_extra))
    pid = np.repeat(np.arange(n), count)
    v = pid.shape[0]
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])

    weights = np.broadcast_to(_DEPT_WEIGHT, (n, len(DEPARTMENTS))).copy()
    for j, name in enumerate(CHRONIC_CONDITIONS):
        dept, factor = _DEPT_BOOST[name]
        weights[:, DEPARTMENTS.index(dept)] *= np.where(conditions[:, j], factor, 1.0)
    weights[:, DEPARTMENTS.index("geriatrics")] *= np.where(ctx["decade"] >= 1.5, 3.0, 0.5)
    dept = choose_rows(rng, weights[pid])

    stay_mean = _STAY_MEAN[dept] * (1 + 0.1 * burden[pid])
    stay = np.where(
        rng.random(v) < _SAME_DAY[dept],
        0,
        1 + rng.negative_binomial(2.0, 2.0 / (2.0 + stay_mean)),
    ).astype(np.int64)
    # Days from one discharge to the next admission: >= 1, so visits never overlap; the free
    # days are shrunk for patients whose visits would run past the end of the study window.
    raw_gap = rng.exponential(200.0 / (1 + 0.3 * burden[pid]))
    raw_gap[starts] = 0.0
    room = _END_DAYS - ctx["first"] - np.bincount(pid, weights=stay, minlength=n) - count
    total_gap = np.bincount(pid, weights=raw_gap, minlength=n)
    shrink = np.clip(np.divide(room, total_gap, out=np.ones(n), where=total_gap > 0), 0.0, 1.0)
    gap = 1 + np.floor(raw_gap * shrink[pid]).astype(np.int64)
    previous_stay = np.concatenate([[0], stay[:-1]])
    step = previous_stay + gap
    step[starts] = 0
    admission = ctx["first"][pid] + group_cumsum(step, starts)
    discharge = admission + stay
    table = pd.DataFrame(
        {
            "visit_id": np.arange(1, v + 1, dtype=np.int64),
            "patient_id": pid + 1,
            "admission_date": _dates(admission),
            "discharge_date": _dates(discharge),
            "department": pick(DEPARTMENTS, dept),
            "length_of_stay": stay,
        },
        copy=False,
    )
    return table, {"pid": pid, "dept": dept, "stay": stay, "admission": admission}


def _lab_results(
    ctx: dict[str, np.ndarray], vctx: dict[str, np.ndarray], rng: np.random.Generator
) -> pd.DataFrame:
    dept, stay = vctx["dept"], vctx["stay"]
    count = rng.poisson(_LABS_BASE[dept] + 0.8 * np.minimum(stay, 15))
    vid = np.repeat(np.arange(dept.shape[0]), count)
    pid = vctx["pid"][vid]
    m = vid.shape[0]
    test = _choose_tests(rng, dept[vid])
    day = vctx["admission"][vid] + np.floor(rng.random(m) * (stay[vid] + 1)).astype(np.int64)

    t = _TESTS
    n, k = ctx["conditions"].shape[0], len(t)
    shifts = np.zeros((len(CHRONIC_CONDITIONS), k))
    for i, name in enumerate(CHRONIC_CONDITIONS):
        for test_name, value in _TEST_SHIFTS[name].items():
            shifts[i, t.index[t["name"] == test_name][0]] = value
    patient_effect = rng.standard_normal((n, k)) * t["between"].to_numpy()
    mean = (
        t["mean"].to_numpy()[test]
        + t["male"].to_numpy()[test] * ctx["male"][pid]
        + t["age"].to_numpy()[test] * ctx["decade"][pid]
        + (ctx["conditions"][pid] * shifts[:, test].T).sum(axis=1)
        + patient_effect[pid, test]
    )
    value = mean + t["within"].to_numpy()[test] * rng.standard_normal(m)
    value = np.where(t["log"].to_numpy()[test], np.exp(np.minimum(value, 12.0)), value)
    scale = 10.0 ** t["decimals"].to_numpy()[test]
    value = np.maximum(np.round(value * scale) / scale, 1.0 / scale)
    return pd.DataFrame(
        {
            "result_id": np.arange(1, m + 1, dtype=np.int64),
            "visit_id": vid + 1,
            "patient_id": pid + 1,
            "VISITDATE": _dates(day),
            "TESTTYPEID": t["id"].to_numpy()[test],
            "test_name": t["name"].to_numpy(dtype=object)[test],
            "RESULTNUMERIC": value,
            "units": t["unit"].to_numpy(dtype=object)[test],
            "normal_low": t["low"].to_numpy()[test],
            "normal_high": t["high"].to_numpy()[test],
        },
        copy=False,
    )


def _choose_tests(rng: np.random.Generator, dept: np.ndarray) -> np.ndarray:
    """A test per result from its department's mix (one pass per department, little memory)."""
    cum = np.cumsum(_TEST_MIX, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(dept.shape[0])
    test = np.zeros(dept.shape[0], dtype=np.int64)
    for d in range(len(DEPARTMENTS)):
        rows = dept == d
        test[rows] = np.searchsorted(cum[d], u[rows], side="right")
    return np.minimum(test, _TEST_MIX.shape[1] - 1)


def _dates(days: np.ndarray) -> np.ndarray:
    return (_START + days.astype("timedelta64[D]")).astype("datetime64[ns]")


def _metadata() -> Metadata:
    num = {"sdtype": "numerical", "computer_representation": "Float"}
    patients = TableMetadata(
        {
            "patient_id": {"sdtype": "id"},
            "sex": {"sdtype": "categorical"},
            "birth_date": {"sdtype": "datetime"},
            "smoking_status": {"sdtype": "categorical"},
            **{c: {"sdtype": "boolean"} for c in CHRONIC_CONDITIONS},
        },
        primary_key="patient_id",
    )
    visits = TableMetadata(
        {
            "visit_id": {"sdtype": "id"},
            "patient_id": {"sdtype": "id"},
            "admission_date": {"sdtype": "datetime"},
            "discharge_date": {"sdtype": "datetime"},
            "department": {"sdtype": "categorical"},
            "length_of_stay": {"sdtype": "numerical", "computer_representation": "Int64"},
        },
        primary_key="visit_id",
    )
    labs = TableMetadata(
        {
            "result_id": {"sdtype": "id"},
            "visit_id": {"sdtype": "id"},
            "patient_id": {"sdtype": "id"},
            "VISITDATE": {"sdtype": "datetime"},
            "TESTTYPEID": {"sdtype": "categorical"},
            "test_name": {"sdtype": "categorical"},
            "RESULTNUMERIC": dict(num),
            "units": {"sdtype": "categorical"},
            "normal_low": dict(num),
            "normal_high": dict(num),
        },
        primary_key="result_id",
    )
    md = Metadata({"patients": patients, "visits": visits, "lab_results": labs})
    md.add_relationship("patients", "visits", "patient_id", "patient_id")
    md.add_relationship("visits", "lab_results", "visit_id", "visit_id")
    md.add_relationship("patients", "lab_results", "patient_id", "patient_id")
    return md
