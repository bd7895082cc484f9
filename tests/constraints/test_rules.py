import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.constraints import (
    Custom,
    DateOrder,
    FixedCombinations,
    Formula,
    Inequality,
    NonNegative,
    OneHot,
    Positive,
    Range,
    constraint_from_dict,
    suggest_constraints,
)
from clinsynth.errors import DataError, MetadataError


def clinic(n=600, seed=0):
    rng = np.random.default_rng(seed)
    sbp = rng.normal(130, 15, n).round()
    height = rng.normal(170, 10, n).round(1)
    weight = rng.normal(75, 12, n).round(1)
    admit = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
    stay = rng.gamma(2.0, 2.5, n).round()
    sex = rng.choice(["female", "male"], n)
    pregnant = np.where((sex == "female") & (rng.random(n) < 0.2), "yes", "no")
    group = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "systolic_bp": sbp.astype(int),
            "diastolic_bp": (sbp * 0.6 + rng.normal(0, 6, n)).round().astype(int),
            "height": height,
            "weight": weight,
            "bmi": (weight / (height / 100) ** 2).round(1),
            "admission_date": admit.strftime("%Y-%m-%d"),
            "discharge_date": (admit + pd.to_timedelta(stay, unit="D")).strftime("%Y-%m-%d"),
            "sex": sex,
            "pregnant": pregnant,
            "lactate": rng.lognormal(0.3, 0.5, n).round(2),
            "ward_a": (group == 0).astype(int),
            "ward_b": (group == 1).astype(int),
            "ward_c": (group == 2).astype(int),
        }
    )


RULES = [
    Inequality(low="diastolic_bp", high="systolic_bp", strict=True),
    DateOrder(["admission_date", "discharge_date"]),
    Formula("bmi", "weight / (height / 100) ** 2", tolerance=0.05),
    FixedCombinations(["sex", "pregnant"]),
    Positive("lactate"),
    Range("systolic_bp", low=60, high=260),
    OneHot(["ward_a", "ward_b", "ward_c"]),
]


@pytest.fixture(scope="module")
def data():
    df = clinic()
    return df, Metadata.detect_from_dataframe(df)


def test_real_data_satisfy_the_rules(data):
    df, md = data
    for rule in RULES:
        if isinstance(rule, FixedCombinations):
            continue  # needs fitting
        assert rule.is_valid(df, md.get_table()).all(), rule


def test_every_rule_holds_on_every_row(data):
    df, md = data
    model = GaussianCopulaSynthesizer(md, constraints=RULES, random_state=0).fit(df)
    syn = model.sample(3000)
    assert len(syn) == 3000
    table = md.get_table()
    assert (syn["diastolic_bp"] < syn["systolic_bp"]).all()
    adm = pd.to_datetime(syn["admission_date"], format="%Y-%m-%d")
    dis = pd.to_datetime(syn["discharge_date"], format="%Y-%m-%d")
    assert (dis >= adm).all()
    np.testing.assert_allclose(syn["bmi"], syn["weight"] / (syn["height"] / 100) ** 2, atol=0.06)
    assert not ((syn["sex"] == "male") & (syn["pregnant"] == "yes")).any()
    assert (syn["lactate"] > 0).all()
    assert syn["systolic_bp"].between(60, 260).all()
    assert (syn[["ward_a", "ward_b", "ward_c"]].sum(axis=1) == 1).all()
    for rule in model._rules_:
        assert rule.is_valid(syn, table).all()
    # dtypes survive the reparametrization
    for col in ("systolic_bp", "ward_a", "sex", "admission_date"):
        assert syn[col].dtype == df[col].dtype, col
    # the relations are still learned
    assert syn["systolic_bp"].corr(syn["diastolic_bp"]) > 0.5
    assert abs((syn["pregnant"] == "yes").mean() - (df["pregnant"] == "yes").mean()) < 0.04


def test_rules_in_metadata_json_and_saved_model(tmp_path, data):
    df, md = data
    md = md.copy()
    md.get_table().constraints = [r.to_dict() for r in RULES[:4]]
    md.save_to_json(tmp_path / "md.json")
    md2 = Metadata.load_from_json(tmp_path / "md.json")
    model = GaussianCopulaSynthesizer(md2, random_state=1).fit(df)
    path = model.save(tmp_path / "model")
    loaded = clinsynth.load(path)
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(200), model.sample(200))
    syn = loaded.sample(500)
    assert (syn["diastolic_bp"] < syn["systolic_bp"]).all()


def test_rules_and_conditions_together(data):
    df, md = data
    model = GaussianCopulaSynthesizer(md, constraints=RULES, random_state=0).fit(df)
    rows = model.sample(300, conditions={"sex": "female", "systolic_bp": (150, None)})
    assert len(rows) == 300
    assert (rows["sex"] == "female").all() and (rows["systolic_bp"] >= 150).all()
    assert (rows["diastolic_bp"] < rows["systolic_bp"]).all()
    assert rows["pid"].is_unique if "pid" in rows else True


def test_a_declared_rule_the_real_data_break_is_an_error_listing_the_rows(data):
    df, md = data
    bad = df.copy()
    bad.loc[:4, "diastolic_bp"] = bad.loc[:4, "systolic_bp"] + 5
    with pytest.raises(DataError, match="broken by 5 of 600 rows") as err:
        GaussianCopulaSynthesizer(md, constraints=[RULES[0]], random_state=0).fit(bad)
    first = bad.loc[0]
    assert (
        f"row 1: diastolic_bp={first['diastolic_bp']}, systolic_bp={first['systolic_bp']}"
        in str(err.value)
    )
    assert "remove the rule" in str(err.value)


def test_a_discovered_rule_that_other_data_break_is_dropped_with_a_warning(data, caplog):
    df, md = data
    rule = Inequality(low="diastolic_bp", high="systolic_bp", strict=True)
    rule.discovered = True
    bad = df.copy()
    bad.loc[:4, "diastolic_bp"] = bad.loc[:4, "systolic_bp"] + 5
    with caplog.at_level("WARNING"):
        model = GaussianCopulaSynthesizer(md, constraints=[rule], random_state=0).fit(bad)
    assert "does not hold on 5 of 600 rows" in caplog.text
    assert rule not in model._rules_ and model.num_training_rows_ == 600


def test_custom_rule_by_rejection_and_its_persistence(tmp_path, data):
    df, md = data

    def short_stay(frame):
        days = pd.to_datetime(frame["discharge_date"]) - pd.to_datetime(frame["admission_date"])
        return days.dt.days <= 10

    rule = Custom(short_stay, columns=["admission_date", "discharge_date"])
    with pytest.raises(DataError, match="custom rule 'short_stay' .* broken by"):
        GaussianCopulaSynthesizer(md, constraints=[rule], random_state=0).fit(df)
    df = df[short_stay(df)].reset_index(drop=True)
    model = GaussianCopulaSynthesizer(md, constraints=[rule], random_state=0).fit(df)
    syn = model.sample(400)
    assert short_stay(syn).all()
    path = model.save(tmp_path / "m")
    with pytest.raises(MetadataError, match="custom_constraints"):
        clinsynth.load(path).sample(10)
    assert short_stay(
        clinsynth.load(path, custom_constraints={"short_stay": short_stay}).sample(50)
    ).all()


def test_bad_rules_are_reported(data):
    df, md = data
    with pytest.raises(MetadataError, match="not in the table"):
        GaussianCopulaSynthesizer(md, constraints=[Inequality("nope", "systolic_bp")]).fit(df)
    with pytest.raises(MetadataError, match="needs numbers or dates"):
        GaussianCopulaSynthesizer(md, constraints=[Inequality("sex", "systolic_bp")]).fit(df)
    with pytest.raises(MetadataError, match="Unknown rule"):
        constraint_from_dict({"type": "teleport"})
    with pytest.raises(MetadataError, match="low"):
        Range("x", low=5, high=1)
    assert constraint_from_dict(NonNegative("lactate").to_dict()) == NonNegative("lactate")


def test_suggestions_are_offered_not_applied(data):
    df, md = data
    before = md.get_table().to_dict()
    suggested = suggest_constraints(md.get_table(), df)
    kinds = {type(r).__name__ for r in suggested}
    assert {"Inequality", "DateOrder", "Formula", "Range"} <= kinds
    assert Inequality(low="diastolic_bp", high="systolic_bp", strict=True) in suggested
    assert md.get_table().to_dict() == before  # nothing added
    # a range the data would break is not suggested (weights in grams, say)
    grams = df.assign(weight=df["weight"] * 1000)
    assert not any(
        isinstance(r, Range) and r.column == "weight"
        for r in suggest_constraints(md.get_table(), grams)
    )


def test_a_formula_without_tolerance_allows_the_columns_rounding(data):
    df, md = data
    rule = Formula("bmi", "weight / (height / 100) ** 2")  # bmi is rounded to 1 decimal
    model = GaussianCopulaSynthesizer(md, constraints=[rule], random_state=0).fit(df)
    syn = model.sample(300)
    np.testing.assert_allclose(syn["bmi"], syn["weight"] / (syn["height"] / 100) ** 2, atol=0.05)


def test_fitted_state_ends_in_underscore_and_keeps_its_bundle_key():
    from clinsynth.synthesizers._rules import from_json, to_json

    df = pd.DataFrame({"low": [1.0, 2.0, 3.0, 4.0], "high": [3.0, 2.5, 7.0, 4.0]})
    table = Metadata.detect_from_dataframe(df, discover_rules=False).get_table()
    rule = Inequality("low", "high")
    rule.fit(df, table, set())
    assert rule.reparametrized and rule.state_ == {"min_positive": 0.5}
    assert not hasattr(rule, "state")
    saved = to_json([rule])
    assert saved[0]["state"] == {"min_positive": 0.5}  # the bundle's key is unchanged
    assert from_json(saved)[0].state_ == rule.state_
    # DP models list the declared rules whose fitted state read the data (by its new name).
    from clinsynth.synthesizers._dp import _rules_outside_budget

    assert _rules_outside_budget([rule, Inequality("a", "b")]) == [rule.describe()]
