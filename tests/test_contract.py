"""One contract, every registered synthesizer: the same checks run on each model.

A new model needs only an entry in FAST_PARAMS when its defaults are too slow for a unit test.
"""

from __future__ import annotations

import pandas as pd
import pytest

import clinsynth
from clinsynth import list_synthesizers
from clinsynth.errors import DataError, NotFittedError, ParameterError

#: Small settings so every model trains in a second or two on the tiny fixture table.
FAST_PARAMS: dict[str, dict] = {}
#: The DP marginal model needs a budget; the fixture's domain is public so no level is dropped.
FAST_PARAMS["dp_marginal"] = {
    "epsilon": 20.0,
    "public_bounds": {
        "age": (18, 89),
        "weight": (40.0, 120.0),
        "sbp": (100, 180),
        "admitted": ("2020-01-01", "2022-12-31"),
        "sex": ["F", "M"],
        "diagnosis": ["copd", "chf", "ards", "sepsis"],
        "code": [0, 1, 2],
    },
}

FAST_PARAMS["tabddpm"] = {
    "epochs": 3,
    "batch_size": 64,
    "hidden_dims": (32, 32),
    "embedding_dim": 16,
    "num_timesteps": 100,
    "sampling_steps": 10,
}
#: Deep models: tiny networks, two epochs (the contract, not the fidelity, is under test).
FAST_PARAMS["tvae"] = {
    "epochs": 2,
    "batch_size": 64,
    "embedding_dim": 16,
    "compress_dims": (32, 32),
    "decompress_dims": (32, 32),
}
FAST_PARAMS["ctgan"] = {
    "epochs": 2,
    "batch_size": 50,
    "pac": 5,
    "embedding_dim": 16,
    "generator_dim": (32, 32),
    "discriminator_dim": (32, 32),
}
FAST_PARAMS["cwgan"] = {
    "condition_column": "sex",
    "epochs": 2,
    "batch_size": 64,
    "discriminator_steps": 2,
    "embedding_dim": 16,
    "generator_dim": (32, 32),
    "discriminator_dim": (32, 32),
}
FAST_PARAMS["hvaegan"] = {
    "column_groups": {"clinical": ["age", "weight", "sbp"], "demographic": ["sex", "smoker"]},
    "epochs": 2,
    "batch_size": 64,
    "group_embedding_dim": 8,
    "embedding_dim": 8,
    "compress_dims": (32,),
    "decompress_dims": (32, 32),
    "discriminator_dim": (32,),
}
#: Two quick candidates: the choice, the refit and the delegation are what is under test.
FAST_PARAMS["auto"] = {
    "candidates": ["gaussian_copula", "tabddpm"],
    "candidate_params": {"tabddpm": FAST_PARAMS["tabddpm"]},
}

MODELS = sorted(list_synthesizers())


def make(name, metadata, **extra):
    params = {"random_state": 0, **FAST_PARAMS.get(name, {}), **extra}
    return list_synthesizers()[name](metadata, **params)


@pytest.fixture(scope="module")
def table():
    from conftest import make_mixed_metadata, make_mixed_table

    return make_mixed_table(120, seed=3), make_mixed_metadata()


@pytest.fixture(scope="module")
def fitted(table):
    df, md = table
    return {name: make(name, md).fit(df) for name in MODELS}


def unmarked_state(model, fresh) -> list[str]:
    """What ``model`` holds beyond a fresh, unfitted instance that does not end in ``_``."""
    return sorted(k for k in vars(model) if k not in vars(fresh) and not k.endswith("_"))


@pytest.mark.parametrize("name", MODELS)
def test_fitted_state_ends_in_underscore(name, fitted, table, tmp_path):
    """scikit-learn's habit (CONVENTIONS): everything ``fit`` (or ``load``) sets ends in ``_``,
    the constructor's arguments do not; the column transformers inside follow it too."""
    df, md = table
    model = fitted[name]
    loaded = clinsynth.load(model.save(tmp_path / f"{name}.zip"))
    for obj in (model, loaded):
        assert unmarked_state(obj, make(name, md)) == []
        for t in obj._transformer_.transformers_.values():
            fresh = type(t)(t.column, **{p: getattr(t, p) for p in t._params})
            assert unmarked_state(t, fresh) == [], (name, t.column)


@pytest.mark.parametrize("name", MODELS)
def test_shapes_dtypes_ranges_categories(name, fitted, table):
    df, _ = table
    syn = fitted[name].sample(150)
    assert list(syn.columns) == list(df.columns)
    assert len(syn) == 150
    for col in ("age", "sbp", "code", "smoker", "sex", "stage"):
        assert syn[col].dtype == df[col].dtype, col
        assert syn[col].notna().all(), col  # never missing in the real data
    assert syn["age"].between(df["age"].min(), df["age"].max()).all()
    assert set(syn["sex"]) <= set(df["sex"])
    assert set(syn["stage"]) <= set(df["stage"])
    assert set(syn["diagnosis"].dropna()) <= set(df["diagnosis"].dropna())
    assert syn["pid"].is_unique and not syn["pid"].isin(df["pid"]).any()
    assert not syn["email"].isin(df["email"]).any()
    dates = pd.to_datetime(syn["admitted"].dropna(), format="%Y-%m-%d")
    assert dates.between(pd.Timestamp("2020-01-01"), pd.Timestamp("2022-12-31")).all()


@pytest.mark.parametrize("name", MODELS)
def test_determinism(name, fitted, table):
    df, md = table
    again = make(name, md).fit(df)
    fitted[name].reset_sampling()
    pd.testing.assert_frame_equal(again.sample(40), fitted[name].sample(40))


@pytest.mark.parametrize("name", MODELS)
def test_save_load(name, fitted, tmp_path):
    model = fitted[name]
    path = model.save(tmp_path / f"{name}.zip")
    loaded = clinsynth.load(path)
    assert type(loaded) is type(model)
    # The privacy figures travel with the model (issue: patient privacy, "the budget travels").
    assert loaded.get_privacy_report() == model.get_privacy_report()
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(30), model.sample(30))


@pytest.mark.parametrize("name", MODELS)
def test_conditional_sampling(name, fitted):
    rows = fitted[name].sample(20, conditions={"sex": "F"})
    assert len(rows) == 20 and (rows["sex"] == "F").all()


@pytest.mark.parametrize("name", MODELS)
def test_bad_input(name, table):
    df, md = table
    with pytest.raises(NotFittedError):
        make(name, md).sample(3)
    with pytest.raises(ParameterError, match="'random_state' parameter of .* must be"):
        make(name, md, random_state=-5).fit(df)
    with pytest.raises(DataError, match="not in the data"):
        make(name, md).fit(df.drop(columns=["sex"]))


@pytest.mark.parametrize("name", MODELS)
def test_rules_hold_on_every_row_with_conditions(name, table):
    from clinsynth.constraints import FixedCombinations, Inequality, Positive

    df, md = table
    rules = [
        Inequality(low="age", high="sbp"),
        Positive("weight"),
        FixedCombinations(["sex", "stage"]),
    ]
    model = make(name, md, constraints=rules).fit(df)
    syn = model.sample(120)
    assert (syn["age"] <= syn["sbp"]).all()
    assert (syn["weight"].dropna() > 0).all()
    seen = set(zip(df["sex"], df["stage"], strict=True))
    assert set(zip(syn["sex"], syn["stage"], strict=True)) <= seen
    both = model.sample(30, conditions={"code": 1})
    assert len(both) == 30 and (both["code"] == 1).all() and (both["age"] <= both["sbp"]).all()
