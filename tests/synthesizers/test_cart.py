"""Sequential trees (cart): interactions, native conditions, leaves of >= 5 rows, safe bundles."""

import numpy as np
import pandas as pd
import pytest
import torch

import clinsynth
from clinsynth import CARTSynthesizer, GaussianCopulaSynthesizer, Metadata
from clinsynth.errors import BundleError, ParameterError


@pytest.fixture(scope="module")
def xor_df():
    """``flag`` is "yes" exactly when a and b have the same sign (no linear trace at all),
    ``dose`` follows the flag, ``lab`` is missing for one group."""
    rng = np.random.default_rng(0)
    n = 1200
    a, b = rng.normal(size=n), rng.normal(size=n)
    flag = np.where((a > 0) == (b > 0), "yes", "no")
    group = rng.choice(["x", "y", "z"], n)
    lab = np.where(group == "z", np.nan, rng.normal(5, 1, n).round(1))
    return pd.DataFrame(
        {
            "a": a.round(3),
            "b": b.round(3),
            "flag": flag,
            "dose": np.where(flag == "yes", 10.0, 20.0) + rng.normal(0, 1, n).round(2),
            "group": group,
            "lab": lab,
        }
    )


@pytest.fixture(scope="module")
def fitted(xor_df):
    md = Metadata.detect_from_dataframe(xor_df)
    return md, CARTSynthesizer(md, random_state=0).fit(xor_df)


@pytest.fixture(scope="module")
def fine(xor_df):
    """Leaves of 5 rows: the mechanism at its finest (auto may choose larger leaves)."""
    md = Metadata.detect_from_dataframe(xor_df)
    return md, CARTSynthesizer(md, min_leaf=5, random_state=0).fit(xor_df)


def _xor_kept(df: pd.DataFrame) -> float:
    return float(((df["a"] > 0) == (df["b"] > 0)).eq(df["flag"] == "yes").mean())


def test_keeps_an_interaction_the_copula_cannot(fine, xor_df):
    md, model = fine
    synthetic = model.sample(3000)
    copula = GaussianCopulaSynthesizer(md, random_state=0).fit(xor_df).sample(3000)
    assert _xor_kept(xor_df) == 1.0
    assert _xor_kept(synthetic) > 0.9
    assert _xor_kept(copula) < 0.8  # its strata by flag catch a little of it; chance is 0.5
    # the dose follows the flag, and the missing labs stay with their group
    means = synthetic.groupby("flag")["dose"].mean()
    assert means["yes"] < 12 and means["no"] > 18
    assert synthetic.loc[synthetic["group"] == "z", "lab"].isna().mean() > 0.95
    assert synthetic.loc[synthetic["group"] != "z", "lab"].isna().mean() < 0.05


def test_same_seed_same_rows_and_save_load(tmp_path, fitted):
    md, model = fitted
    model.reset_sampling(3)
    first = model.sample(200)
    path = model.save(tmp_path / "cart.zip")
    loaded = clinsynth.load(path)
    loaded.reset_sampling(3)
    pd.testing.assert_frame_equal(first, loaded.sample(200))


def test_every_leaf_holds_at_least_five_rows(xor_df):
    md = Metadata.detect_from_dataframe(xor_df)
    for setting, expected in (("auto", 5), (2, 5), (40, 40)):
        model = CARTSynthesizer(md, min_leaf=setting, random_state=0)
        assert model._leaf_rows(len(xor_df)) == expected
    assert CARTSynthesizer(md)._leaf_rows(400_000) == 100  # large tables: fewer leaves
    model = CARTSynthesizer(md, min_leaf=40, random_state=0).fit(xor_df)
    # every leaf of the regression tree of `dose` was fitted on >= 40 rows: re-count them
    variables = model._variables()
    j = next(i for i, (s, _) in enumerate(variables) if s.column == "dose")
    assert len(model._trees_[j].mean) <= len(xor_df) // 40


def test_conditions_are_met_natively_and_keep_the_relations(fine):
    _, model = fine
    rows = model.sample_from_conditions(pd.DataFrame({"flag": ["yes"] * 300}))
    assert (rows["flag"] == "yes").all()
    assert _xor_kept(rows) > 0.9
    assert rows["dose"].mean() < 12
    ranged = model.sample(200, conditions={"dose": (18.0, 30.0)})
    assert ranged["dose"].between(18.0, 30.0).all()
    assert (ranged["flag"] == "no").mean() > 0.9


def test_bad_parameters_are_refused(xor_df):
    md = Metadata.detect_from_dataframe(xor_df)
    with pytest.raises(ParameterError, match="min_leaf"):
        CARTSynthesizer(md, min_leaf=0).fit(xor_df)


def _tamper(path, key, change):
    weights = torch.load(path / "weights.pt", weights_only=True)
    weights[key] = change(weights[key])
    torch.save(weights, path / "weights.pt")


@pytest.mark.parametrize(
    "suffix, change, message",
    [
        ("left", lambda t: torch.zeros_like(t), "not a tree"),  # a node its own child: a loop
        ("left", lambda t: t.float(), "whole numbers"),
        ("feature", lambda t: torch.where(t >= 0, t + 1000, t), "not a tree"),
    ],
)
def test_tampered_trees_are_refused(tmp_path, fitted, suffix, change, message):
    _, model = fitted
    path = model.save(tmp_path / "m")
    names = torch.load(path / "weights.pt", weights_only=True)
    key = next(k for k in names if k.endswith(f"_{suffix}") and len(names[k]) > 1)
    _tamper(path, key, change)
    with pytest.raises(BundleError, match=message):
        clinsynth.load(path)


def test_tampered_leaf_statistics_are_refused(tmp_path, fitted):
    _, model = fitted
    path = model.save(tmp_path / "m")
    names = torch.load(path / "weights.pt", weights_only=True)
    key = next(k for k in names if k.endswith("_sd"))
    _tamper(path, key, lambda t: -t)
    with pytest.raises(BundleError, match="spread"):
        clinsynth.load(path)


def test_auto_leaf_size_is_the_first_that_does_not_copy(tmp_path, fitted):
    _, model = fitted
    search = model.leaf_search_
    assert search and search[0]["min_leaf"] == 5
    passing = [r for r in search if r["dcr_share"] + r["dcr_share_se"] <= 0.55]
    # the search stops at the first size that passes (or tries them all and keeps the largest)
    expected = passing[0]["min_leaf"] if passing else search[-1]["min_leaf"]
    assert model.min_leaf_ == expected
    assert len(passing) <= 1 and (not passing or passing[0] is search[-1])
    loaded = clinsynth.load(model.save(tmp_path / "m.zip"))
    assert loaded.min_leaf_ == model.min_leaf_ and loaded.leaf_search_ == search


def test_a_copying_leaf_size_is_refused_on_a_small_wide_table():
    """300 patients, 12 noisy columns: leaves of 5 rows reproduce their rows' combinations;
    auto measures it and grows larger leaves."""
    rng = np.random.default_rng(1)
    n = 300
    base = rng.normal(size=(n, 3))
    df = pd.DataFrame(
        {f"x{i}": (base[:, i % 3] + rng.normal(0, 0.3, n)).round(2) for i in range(8)}
        | {f"c{i}": np.where(base[:, i % 3] > rng.normal(0, 0.5, n), "a", "b") for i in range(4)}
    )
    md = Metadata.detect_from_dataframe(df)
    auto = CARTSynthesizer(md, random_state=0).fit(df)
    assert auto.leaf_search_[0]["dcr_share"] > 0.55  # leaves of 5 rows copy, measurably
    assert auto.min_leaf_ > 5


def test_compiled_and_numpy_walks_agree(fine):
    """scikit-learn's compiled walk (rebuilt from the saved arrays) and the numpy fallback
    land every row in the same leaf."""
    _, model = fine
    rng = np.random.default_rng(0)
    k = len(model._variables())
    values = rng.normal(size=(5000, k)).astype(np.float32)
    values[:, :2] = rng.integers(0, 3, size=(5000, 2))
    for tree in model._trees_.values():
        assert tree._compiled(k) is not None
        np.testing.assert_array_equal(tree.leaf_of(values), tree._walk(values))


def test_condition_column_comes_first_and_every_tree_may_use_it(xor_df, tmp_path):
    md = Metadata.detect_from_dataframe(xor_df)
    model = CARTSynthesizer(md, min_leaf=5, condition_column="flag", random_state=0).fit(xor_df)
    variables = model._variables()
    assert variables[model._order_[0]][0].column == "flag"
    # `a` now comes after the flag, so its tree may split on it: the xor is still kept
    rows = model.sample(2000)
    assert _xor_kept(rows) > 0.9
    conditioned = model.sample_from_conditions(pd.DataFrame({"flag": ["no"] * 200}))
    assert (conditioned["flag"] == "no").all() and conditioned["dose"].mean() > 18
    loaded = clinsynth.load(model.save(tmp_path / "first.zip"))
    assert loaded._order_ == model._order_
    # a number with missing values: its missing-value indicator is drawn before its value
    lab_first = CARTSynthesizer(md, min_leaf=5, condition_column="lab", random_state=0)
    lab_first.fit(xor_df)
    roles = [lab_first._variables()[j][0] for j in lab_first._order_[:2]]
    assert [s.column for s in roles] == ["lab", "lab"] and roles[0].role == "null"
    labs = lab_first.sample(2000)
    assert labs.loc[labs["group"] == "z", "lab"].isna().mean() > 0.9


@pytest.mark.parametrize("column", ["nope", 3])
def test_a_bad_condition_column_is_refused(xor_df, column):
    md = Metadata.detect_from_dataframe(xor_df)
    with pytest.raises(ParameterError, match="condition_column"):
        CARTSynthesizer(md, condition_column=column).fit(xor_df)
