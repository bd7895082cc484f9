"""Refinement by the density ratio (``refine=``): closer rows, same contract, saved and loaded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata, TVAESynthesizer, load
from clinsynth.errors import BundleError, ParameterError
from clinsynth.synthesizers._refine import DensityRatioRefiner


@pytest.fixture(scope="module")
def threshold_table() -> tuple[pd.DataFrame, Metadata]:
    """Insurance jumps at age 65: a step a Gaussian copula smooths into a slope."""
    rng = np.random.default_rng(0)
    n = 800
    age = rng.uniform(20, 90, n).round(1)
    old = age >= 65
    medicare = np.where(old, rng.random(n) < 0.95, rng.random(n) < 0.05)
    df = pd.DataFrame(
        {
            "age": age,
            "insurance": np.where(medicare, "Medicare", "Private"),
            "score": (rng.normal(size=n) + 2.0 * old).round(2),
        }
    )
    return df, Metadata.detect_from_dataframe(df)


def _mismatch(df: pd.DataFrame) -> float:
    """Share of rows whose insurance disagrees with the age step (0.05 in the real data)."""
    return float(((df["age"] >= 65) != (df["insurance"] == "Medicare")).mean())


def test_refinement_moves_rows_toward_the_real_distribution(threshold_table):
    df, md = threshold_table
    plain = TVAESynthesizer(md, epochs=30, random_state=0).fit(df)
    refined = TVAESynthesizer(md, epochs=30, refine=5, random_state=0).fit(df)
    before, after = _mismatch(plain.sample(2000)), _mismatch(refined.sample(2000))
    assert after < before - 0.05, (before, after)
    assert refined._refiner_.oversample == 5


def test_refined_model_keeps_the_contract_and_round_trips(threshold_table, tmp_path):
    df, md = threshold_table
    model = GaussianCopulaSynthesizer(md, refine=True, random_state=0).fit(df)
    first = model.sample(300)
    assert list(first.columns) == list(df.columns) and len(first) == 300
    model.reset_sampling()
    pd.testing.assert_frame_equal(model.sample(300), first)
    loaded = load(model.save(tmp_path / "refined"))
    assert loaded.refine is True and loaded._refiner_ is not None
    pd.testing.assert_frame_equal(loaded.sample(300), first)
    state = json.loads((tmp_path / "refined" / "refiner.json").read_text())
    # Statistics only: the classifier's features are standardized numbers and kept levels.
    assert set(state) == {
        "params",
        "transformer",
        "mean",
        "scale",
        "median_logit",
        "held_out_loss",
    }


def test_refine_is_refused_with_differential_privacy(threshold_table):
    df, md = threshold_table
    with pytest.raises(ParameterError, match="refine"):
        TVAESynthesizer(md, epochs=1, epsilon=5.0, refine=True, random_state=0).fit(df)


@pytest.mark.parametrize("bad", [1, -3, 2.5, "yes"])
def test_refine_parameter_is_checked(threshold_table, bad):
    df, md = threshold_table
    with pytest.raises(ParameterError, match="'refine' parameter"):
        GaussianCopulaSynthesizer(md, refine=bad).fit(df)


def test_a_tampered_refiner_is_a_bundle_error(threshold_table, tmp_path):
    df, md = threshold_table
    path = GaussianCopulaSynthesizer(md, refine=True, random_state=0).fit(df).save(tmp_path / "m")
    document = path / "refiner.json"
    state = json.loads(document.read_text())
    state["mean"] = state["mean"][:-1]
    document.write_text(json.dumps(state))
    with pytest.raises(BundleError, match="refiner.json: the feature statistics"):
        load(path)
    state["mean"] = [0.0] * len(state["scale"])
    state["params"]["hidden"] = [10**9]
    document.write_text(json.dumps(state))
    with pytest.raises(BundleError, match="refiner.json"):
        load(path)


def test_a_refined_deep_model_round_trips(threshold_table, tmp_path):
    df, md = threshold_table
    model = TVAESynthesizer(md, epochs=2, refine=True, random_state=0).fit(df)
    first = model.sample(50)
    loaded = load(model.save(tmp_path / "tvae"))
    pd.testing.assert_frame_equal(loaded.sample(50), first)


def test_selection_follows_the_odds():
    """Rows the classifier finds real-like are kept more often; all rows when asked for all."""
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(0.0, 1.0, 600)})
    model_rows = pd.DataFrame({"x": rng.normal(1.0, 1.0, 600)})
    table = Metadata.detect_from_dataframe(real).get_table()
    refiner = DensityRatioRefiner(seed=0).fit(real, model_rows, table)
    pool = pd.DataFrame({"x": rng.normal(1.0, 1.0, 6000)})
    kept = pool.iloc[refiner.select(pool, 2000, np.random.default_rng(1))]
    assert kept["x"].mean() < 0.6
    assert len(refiner.select(pool, len(pool) + 5, np.random.default_rng(1))) == len(pool)
