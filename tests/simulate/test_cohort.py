"""simulate_cohort: schema, rules on every row, plausible correlations, options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth.errors import ParameterError
from clinsynth.simulate import (
    COHORT_CONDITIONS,
    COHORT_ORDER_RULES,
    COHORT_RANGES,
    egfr_ckd_epi_2021,
    simulate_cohort,
)


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(20_000, seed=4)


def test_schema_and_metadata(cohort):
    df, md = cohort
    md.validate()
    md.validate_data(df)
    assert list(df.columns) == list(md.columns)
    assert len(df.columns) == 21 and df.columns[-1] == "condition"
    assert set(df["condition"]) == set(COHORT_CONDITIONS) == {
        "healthy", "diabetes", "hypertension", "heart_disease"
    }  # fmt: skip
    assert md.columns["physical_activity"] == {
        "sdtype": "ordinal", "order": ["low", "moderate", "high"]
    }  # fmt: skip
    assert set(df["alcohol"]) <= set(md.columns["alcohol"]["order"])
    assert set(df["smoking"]) == {"never", "former", "current"}
    assert df["family_history"].dtype == bool
    for col, spec in md.columns.items():
        if spec.get("computer_representation") == "Int64":
            assert df[col].dtype.kind == "i", col
    assert df.notna().all().all()


def test_rules_hold_on_every_row(cohort):
    df, _ = cohort
    for low, high in COHORT_ORDER_RULES:
        assert (df[low] < df[high]).all(), (low, high)
    for col, (lo, hi) in COHORT_RANGES.items():
        assert df[col].between(lo, hi).all(), col
    # eGFR is CKD-EPI 2021 of creatinine, age and sex: it falls with both.
    expected = np.clip(
        egfr_ckd_epi_2021(df["creatinine"], df["age"], df["sex"] == "female"), 5, 150
    )
    assert np.abs(expected - df["egfr"]).max() <= 0.5 + 1e-9


def test_plausible_correlations(cohort):
    df, _ = cohort
    corr = df.corr(numeric_only=True, method="spearman")
    assert corr.loc["hba1c", "fasting_glucose"] > 0.8
    for _, part in df.groupby("condition"):
        assert np.corrcoef(part["hba1c"], part["fasting_glucose"])[0, 1] > 0.6
    assert corr.loc["egfr", "creatinine"] < -0.6
    assert corr.loc["egfr", "age"] < -0.4
    assert corr.loc["bmi", "waist_cm"] > 0.7
    assert corr.loc["bmi", "triglycerides"] > 0.3
    assert corr.loc["hdl_cholesterol", "triglycerides"] < -0.1


def test_conditions_differ_as_expected(cohort):
    df, _ = cohort
    med = df.groupby("condition").median(numeric_only=True)
    assert med.loc["diabetes", "fasting_glucose"] > med.loc["healthy", "fasting_glucose"] + 40
    assert med.loc["diabetes", "hba1c"] >= 6.5 > med.loc["healthy", "hba1c"]
    assert med.loc["hypertension", "systolic_bp"] > med.loc["healthy", "systolic_bp"] + 20
    assert med.loc["heart_disease", "age"] > med.loc["healthy", "age"] + 10
    current = pd.crosstab(df["condition"], df["smoking"], normalize="index")["current"]
    assert current["heart_disease"] > current["healthy"]
    shares = df["condition"].value_counts(normalize=True)
    assert abs(shares["healthy"] - 0.40) < 0.02 and abs(shares["heart_disease"] - 0.15) < 0.02


def test_same_seed_same_rows():
    a, _ = simulate_cohort(300, seed=1)
    b, _ = simulate_cohort(300, seed=1)
    c, _ = simulate_cohort(300, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_choose_conditions_and_proportions():
    df, md = simulate_cohort(10_000, seed=0, conditions=["healthy", "diabetes"],
                             proportions={"healthy": 0.3, "diabetes": 0.7})  # fmt: skip
    shares = df["condition"].value_counts(normalize=True)
    assert set(shares.index) == {"healthy", "diabetes"}
    assert abs(shares["diabetes"] - 0.7) < 0.02
    md.validate_data(df)
    df2, _ = simulate_cohort(2000, seed=0, conditions=["heart_disease"])
    assert set(df2["condition"]) == {"heart_disease"}
    df3, _ = simulate_cohort(5000, seed=0, proportions=[0.1, 0.1, 0.1, 0.7])
    assert abs((df3["condition"] == "heart_disease").mean() - 0.7) < 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conditions": ["healthy", "cancer"]}, "conditions.*cancer"),
        ({"conditions": []}, "conditions"),
        ({"proportions": [0.5, 0.5]}, "4 shares"),
        ({"proportions": [0.5, 0.5, 0.5, 0.5]}, "sum to 1"),
        ({"proportions": {"healthy": 1.2, "diabetes": -0.2}}, ">= 0"),
        ({"conditions": ["healthy"], "proportions": {"diabetes": 1.0}}, "diabetes"),
        ({"num_rows": 0}, "num_rows.*int >= 1"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        simulate_cohort(**{"num_rows": 10, **kwargs})
