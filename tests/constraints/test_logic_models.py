"""Every registered model keeps every discovered rule, with conditions, DP and in multi-table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from logic_data import EXPECTED, logic_table

import clinsynth
from clinsynth import GaussianCopulaSynthesizer, Metadata, list_synthesizers
from clinsynth.constraints import constraint_from_dict
from clinsynth.errors import SamplingError
from clinsynth.multitable import HMASynthesizer
from test_contract import FAST_PARAMS

MODELS = sorted(list_synthesizers())
#: The fixture's own settings where the contract's name columns of another table.
PARAMS = {
    **FAST_PARAMS,
    "dp_marginal": {"epsilon": 20.0},
    # The class label is a derived column: it stays in the model, the dependency is kept by
    # rejection (the one rule not kept by construction).
    "cwgan": {**FAST_PARAMS["cwgan"], "condition_column": "dx_class"},
    "hvaegan": {k: v for k, v in FAST_PARAMS["hvaegan"].items() if k != "column_groups"},
}


@pytest.fixture(scope="module")
def real():
    df = logic_table(300, seed=0)
    return df, Metadata.detect_from_dataframe(df)


def fitted_rules(md: Metadata, df: pd.DataFrame) -> list:
    table = md.get_table()
    rules = [constraint_from_dict(c) for c in table.constraints]
    for rule in rules:
        rule.learn(df, table)
    return rules


def assert_obeyed(rows: pd.DataFrame, md: Metadata, df: pd.DataFrame) -> None:
    table = md.get_table()
    for rule in fitted_rules(md, df):
        broken = int((~rule.is_valid(rows, table)).sum())
        assert broken == 0, f"{rule.describe()}: {broken} of {len(rows)} rows"


def test_the_fixture_holds_one_rule_of_every_kind(real):
    _, md = real
    found = {(c["type"], constraint_from_dict(c).describe()) for c in md.get_table().constraints}
    assert set(EXPECTED) <= found


@pytest.mark.parametrize("name", MODELS)
def test_every_model_keeps_every_rule_by_construction(name, real):
    df, md = real
    model = list_synthesizers()[name](md, random_state=0, **PARAMS.get(name, {})).fit(df)
    rows = model.sample(200)
    assert len(rows) == 200
    assert_obeyed(rows, md, df)
    not_built = [r.describe() for r in model._rules_ if not r.reparametrized]
    assert not_built == (["dx determines dx_class"] if name == "cwgan" else [])
    # The derived and gated columns look like the real ones.
    assert set(rows["dx_class"]) <= set(df["dx_class"])
    assert rows["cd4_late"].notna().sum() > 0 and (rows["cost"] == 0).any()
    assert rows["bmi"].dtype == df["bmi"].dtype and rows["followed"].dtype == df["followed"].dtype


@pytest.mark.parametrize("name", MODELS)
def test_conditions_on_derived_and_gated_columns(name, real):
    df, md = real
    model = list_synthesizers()[name](md, random_state=1, **PARAMS.get(name, {})).fit(df)
    lung = model.sample(20, conditions={"dx_class": "lung"})
    assert (lung["dx_class"] == "lung").all() and lung["dx"].isin(["copd", "asthma"]).all()
    assert_obeyed(lung, md, df)
    if name != "auto":  # auto conditions through the model it chose, tested on its own
        late = model.sample(20, conditions={"cd4_late": (300, None)})
        assert (late["cd4_late"] >= 300).all() and (late["followed"] == 1).all()
        assert_obeyed(late, md, df)
    with pytest.raises(SamplingError, match="derived by a rule|never seen"):
        model.sample(5, conditions={"dx_class": "brain"})


def test_dp_lists_every_discovered_rule_as_not_covered(real):
    df, md = real
    model = list_synthesizers()["dp_marginal"](md, epsilon=5.0, random_state=0).fit(df)
    report = model.get_privacy_report()
    described = {constraint_from_dict(c).describe() for c in md.get_table().constraints}
    assert described <= set(report["not_covered"])
    assert "except the values that the rules in 'not_covered'" in report["guarantee"]
    assert_obeyed(model.sample(300), md, df)


def test_the_lookup_stores_no_rare_value_and_survives_a_bundle(tmp_path):
    df = logic_table(300, seed=3)
    df.loc[:2, "dx"] = "rare_dx"  # three patients: merged into "other", never stored
    df.loc[:2, "dx_class"] = "rare_class"
    md = Metadata.detect_from_dataframe(df)
    assert "dx determines dx_class" in {
        constraint_from_dict(c).describe() for c in md.get_table().constraints
    }
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    fd = next(r for r in model._rules_ if r.type == "functional_dependency")
    assert "rare_dx" not in fd.lookup() and "rare_class" not in fd.lookup().values()
    path = model.save(tmp_path / "model.zip")
    assert b"rare_dx" not in path.read_bytes() and b"rare_class" not in path.read_bytes()
    loaded = clinsynth.load(path)
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(100), model.sample(100))
    rows = loaded.sample(500)
    assert not rows["dx_class"].isin(["rare_class"]).any()


def test_multitable_tables_keep_their_rules():
    rng = np.random.default_rng(1)
    visits = logic_table(400, seed=2)
    visits.insert(0, "visit_id", np.arange(400))
    visits.insert(1, "patient_id", rng.integers(0, 100, 400))
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(100),
            "age": rng.integers(20, 90, 100),
            "sex": rng.choice(["F", "M"], 100),
        }
    )
    tables = {"patients": patients, "visits": visits}
    md = Metadata.detect_from_dataframes(tables)
    assert md.relationships and md.get_table("visits").constraints
    out = HMASynthesizer(md, random_state=0).fit(tables).sample()
    table = md.get_table("visits")
    for item in table.constraints:
        rule = constraint_from_dict(item)
        rule.learn(visits, table)
        assert rule.is_valid(out["visits"], table).all(), rule.describe()
