"""The DP marginal synthesizer and the transformer's DP statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinsynth import DPMarginalSynthesizer, Metadata, load
from clinsynth.errors import ParameterError
from clinsynth.privacy import DPStatistics, rho_for_epsilon
from clinsynth.transform import TableTransformer


def _cohort(n: int, seed: int = 0) -> tuple[pd.DataFrame, Metadata]:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 95, n)
    frail = np.where(age + rng.normal(0, 8, n) > 70, "frail", "robust")
    sbp = np.round(100 + 0.6 * age + rng.normal(0, 8, n), 1)
    sbp[rng.random(n) < 0.1] = np.nan
    df = pd.DataFrame(
        {
            "age": age,
            "sex": rng.choice(["F", "M"], n, p=[0.6, 0.4]),
            "frail": frail,
            "sbp": sbp,
            "ward": rng.choice(["A", "B", "C", "D"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    md = Metadata.from_dict(
        {
            "columns": {
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "sex": {"sdtype": "categorical"},
                "frail": {"sdtype": "categorical"},
                "sbp": {"sdtype": "numerical"},
                "ward": {"sdtype": "categorical"},
            }
        }
    )
    return df, md


PUBLIC = {
    "age": (0, 110),
    "sbp": (60.0, 220.0),
    "sex": ["F", "M"],
    "frail": ["frail", "robust"],
    "ward": ["A", "B", "C", "D"],
}


@pytest.fixture(scope="module")
def fitted():
    df, md = _cohort(3000)
    model = DPMarginalSynthesizer(md, epsilon=10.0, public_bounds=PUBLIC, random_state=0)
    return df, model.fit(df)


def test_budget_is_spent_exactly_and_reported(fitted, tmp_path):
    _, model = fitted
    report = model.get_privacy_report()
    assert report["differential_privacy"] and report["epsilon"] == 10.0
    assert 0.95 * 10.0 <= report["epsilon_spent"] <= 10.0
    assert report["delta"] == pytest.approx(1 / 30000)
    assert set(report["consumers"]) == {"statistics", "selection", "measurement"}
    assert len(report["edges"]) == 4  # a spanning tree over 5 columns
    manifest_privacy = load(model.save(tmp_path / "m")).get_privacy_report()
    assert manifest_privacy["epsilon_spent"] == report["epsilon_spent"]
    saved = json.loads((tmp_path / "m" / "manifest.json").read_text())["privacy"]
    assert saved["epsilon"] == 10.0 and saved["consumers"]["measurement"]["mechanisms"] == 1


def test_learns_marginals_and_the_strongest_dependence(fitted):
    df, model = fitted
    syn = model.sample(6000)
    for col in ("sex", "frail", "ward"):
        tvd = 0.5 * (
            df[col]
            .value_counts(normalize=True)
            .sub(syn[col].value_counts(normalize=True), fill_value=0)
            .abs()
            .sum()
        )
        assert tvd < 0.05, col
    assert abs(df["age"].mean() - syn["age"].mean()) < 3
    assert syn["sbp"].isna().mean() == pytest.approx(0.1, abs=0.03)
    assert syn["age"].between(0, 110).all() and (syn["age"] == syn["age"].round()).all()
    assert (syn["sbp"].dropna() == syn["sbp"].dropna().round(1)).all()
    assert ["age", "frail"] in model.get_privacy_report()["edges"] or [
        "frail",
        "age",
    ] in model.get_privacy_report()["edges"]
    frail_old = syn.loc[syn["age"] > 80, "frail"].eq("frail").mean()
    frail_young = syn.loc[syn["age"] < 40, "frail"].eq("frail").mean()
    assert frail_old - frail_young > 0.5


def test_small_epsilon_names_no_category_held_by_few_rows():
    df, md = _cohort(300)
    df.loc[:4, "ward"] = "isolation"  # five patients
    model = DPMarginalSynthesizer(
        md, epsilon=1.0, public_bounds={"age": (0, 110)}, random_state=0
    ).fit(df)
    levels = model._transformer_.get_transformer("ward").levels_
    assert "isolation" not in levels
    report = model.get_privacy_report()
    assert report["epsilon_spent"] <= 1.0
    assert any(m["kind"] == "delta" for m in report["ledger"])  # naming levels costs delta


def test_dp_transformer_reads_only_public_bounds_and_noisy_counts():
    df, md = _cohort(2000)
    # rho for delta 0.9e-6, plus 1e-7 for naming levels: (2, 1e-6)-DP in total.
    dp = DPStatistics(
        rho=rho_for_epsilon(2.0, 0.9e-6),
        delta=1e-7,
        public_bounds={"age": (0, 110), "sex": ["F", "M", "X"]},
        random_state=1,
    )
    tt = TableTransformer(md, numerical="quantile", privacy=dp).fit(df)
    age = tt.get_transformer("age")
    assert (age.min_, age.max_) == (0.0, 110.0)  # the public bounds, not the data's 20-94
    assert "X" in tt.get_transformer("sex").levels_  # a public level is kept even if unseen
    assert dp.accountant.get_epsilon(1e-6) <= 2.0
    sbp = tt.get_transformer("sbp")  # no public bounds: a DP range around the data
    assert 60 < sbp.min_ < 130 and 130 < sbp.max_ < 220
    assert sbp.decimals_ == 1 and sbp.has_nulls_


def test_parameter_errors():
    df, md = _cohort(50)
    with pytest.raises(ParameterError, match="give it a budget, e.g. epsilon=1.0"):
        DPMarginalSynthesizer(md).fit(df)
    with pytest.raises(ParameterError, match="'epsilon' parameter .* must be"):
        DPMarginalSynthesizer(md, epsilon=-1.0).fit(df)
    with pytest.raises(ParameterError, match="'delta' parameter"):
        DPMarginalSynthesizer(md, epsilon=1.0, delta=1.5).fit(df)
    with pytest.raises(ParameterError, match="'budget_split' parameter"):
        DPMarginalSynthesizer(md, epsilon=1.0, budget_split=(1, 0)).fit(df)
    with pytest.raises(ParameterError, match="'public_bounds' parameter"):
        DPMarginalSynthesizer(md, epsilon=1.0, public_bounds={"age": 5}).fit(df)


def test_rules_that_read_the_data_are_named_outside_the_guarantee(tmp_path):
    from clinsynth.constraints import FixedCombinations, Positive

    df, md = _cohort(400)
    rules = [Positive("sbp"), FixedCombinations(["sex", "frail"])]
    model = DPMarginalSynthesizer(
        md, epsilon=5.0, public_bounds=PUBLIC, constraints=rules, random_state=0
    ).fit(df)
    report = model.get_privacy_report()
    assert report["not_covered"] == ["Positive(sbp)", "FixedCombinations(sex, frail)"]
    assert report["guarantee"].endswith("the rules in 'not_covered' read from the data")
    assert load(model.save(tmp_path / "m")).get_privacy_report() == report
    clean = DPMarginalSynthesizer(md, epsilon=5.0, public_bounds=PUBLIC, random_state=0)
    assert clean.fit(df).get_privacy_report()["not_covered"] == []
