"""Rare conditions on TabDDPM: the class label fixes the condition column's level, the rest of
the condition (an age range) is met by splitting the reverse diffusion, exactly (every row meets
it), from few draws, and following the model's own conditional distribution."""

import numpy as np
import pandas as pd
import pytest
import torch
from deep_helpers import one_thread_module  # noqa: F401

from clinsynth import TabDDPMSynthesizer
from clinsynth.errors import SamplingError
from clinsynth.simulate import simulate_cohort
from clinsynth.synthesizers.nn._diffusion import Denoiser, TabularDiffusion

SPLIT = "class label, then splitting the reverse diffusion"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_thread_module):  # noqa: F811
    """Small tensors on shared, busy cores: a second intra-op thread only adds waiting."""


@pytest.fixture(scope="module")
def fitted():
    df, md = simulate_cohort(3000, seed=2)
    model = TabDDPMSynthesizer(
        md,
        epochs=15,
        batch_size=256,
        hidden_dims=(64, 64),
        embedding_dim=32,
        num_timesteps=100,
        sampling_steps=20,
        condition_column="condition",
        random_state=0,
    ).fit(df)
    # A condition that about 1% of the model's own rows meet: heart disease and the top of age
    # within it.
    plain = model.sample(60_000)
    ages = plain.loc[plain["condition"] == "heart_disease", "age"]
    low = float(ages.quantile(1 - 0.01 * len(plain) / len(ages)))
    conditions = {"condition": "heart_disease", "age": (low, None)}
    hits = plain[(plain["condition"] == "heart_disease") & (plain["age"] >= low)]
    return df, model, conditions, hits, len(hits) / len(plain)


def test_range_condition_exact_rows_by_splitting_from_few_draws(fitted):
    _, model, conditions, _, rate = fitted
    low = conditions["age"][0]
    rows = model.sample(2000, conditions=conditions)
    assert len(rows) == 2000
    assert (rows["condition"] == "heart_disease").all() and (rows["age"] >= low).all()
    stats = model.conditioning_stats_
    assert stats["method"] == SPLIT, stats  # not a fall-back to rejection
    assert stats["branch_rows"] > 0.5 * 2000 and stats["branch_states"] >= 20
    # Whole chains: rejection needs about 2000 / rate; the pilot a fraction of that. A branch
    # runs only the steps after the split step, a small part of a chain.
    assert stats["pilot_draws"] < 0.4 * 2000 / rate, (stats, rate)
    assert stats["split_step"] < 0.5 * model.num_timesteps
    assert not rows.duplicated().any()


def test_splitting_keeps_the_models_conditional_distribution(fitted):
    df, model, conditions, hits, _ = fitted
    rows = model.sample(3 * len(hits), conditions=conditions)
    # Other numbers and categories, against plain rejection from the same model: eGFR and
    # blood pressure depend on age, so rows that ignored the range would differ.
    for column in ("egfr", "systolic_bp", "bmi", "hba1c"):
        spread = df[column].std()
        assert abs(rows[column].mean() - hits[column].mean()) < 0.15 * spread, column
        assert 0.7 < rows[column].std() / hits[column].std() < 1.4, column
    for column in ("smoking", "sex", "physical_activity"):
        ours = rows[column].value_counts(normalize=True)
        theirs = hits[column].value_counts(normalize=True)
        gap = ours.sub(theirs, fill_value=0).abs().max()
        assert gap < 0.1, (column, ours.to_dict(), theirs.to_dict())
    # The range moves eGFR (which falls with age) below the model's heart-disease rows as a
    # whole, in the direction of the data's oldest heart-disease patients.
    real = df[df["condition"] == "heart_disease"]
    old = real[real["age"] >= real["age"].quantile(0.9)]
    assert old["egfr"].mean() < real["egfr"].mean() - 0.3 * df["egfr"].std()
    plain = model.sample(5000, conditions={"condition": "heart_disease"})
    assert rows["egfr"].mean() < plain["egfr"].mean() - 0.3 * df["egfr"].std()


def test_conditional_sampling_is_reproducible(fitted):
    _, model, conditions, _, _ = fitted
    model.reset_sampling(seed=5)
    a = model.sample(300, conditions=conditions)
    model.reset_sampling(seed=5)
    b = model.sample(300, conditions=conditions)
    pd.testing.assert_frame_equal(a, b)


def test_impossible_ranges_say_why(fitted):
    _, model, conditions, _, _ = fitted
    with pytest.raises(SamplingError, match="contradictory"):
        model.sample(10, conditions={"condition": "heart_disease", "age": (80, 30)})
    with pytest.raises(SamplingError, match="outside the values seen"):
        model.sample(10, conditions={"condition": "heart_disease", "age": (500, None)})
    with pytest.raises(SamplingError, match="Could make only"):
        model.sample(5000, conditions=conditions, max_tries_per_batch=1)


def test_common_condition_is_plain_rejection(fitted):
    _, model, _, _, _ = fitted
    rows = model.sample(200, conditions={"condition": "healthy", "age": (None, 1e9)})
    assert len(rows) == 200 and (rows["condition"] == "healthy").all()
    stats = model.conditioning_stats_
    assert stats["rounds"] == 1 and stats["branch_draws"] == 0, stats


def test_an_earlier_split_is_a_noisier_step(fitted):
    _, model, conditions, _, _ = fitted
    steps = {}
    try:
        for split in (0.9, 0.5):
            model.set_params(condition_split=split)
            rows = model.sample(300, conditions=conditions)
            assert (rows["age"] >= conditions["age"][0]).all()
            steps[split] = model.conditioning_stats_["split_step"]
    finally:
        model.set_params(condition_split=0.8)
    assert steps[0.5] > steps[0.9]
    assert model._diffusion_.alpha_bar_np[steps[0.5]] >= 0.5


def test_a_chain_split_and_continued_is_the_same_chain():
    # Gaussian variables only and eta=0: the chain is a function of x_T, so the rows continued
    # from the recorded states at the split step equal the rows of the whole chain.
    diffusion = TabularDiffusion(3, [], 100, torch.device("cpu"))
    net = Denoiser(3, (16,), 8)
    step = diffusion.split_step(20, 0.9)
    states: list[torch.Tensor] = []
    whole = diffusion.sample(
        net, 64, None, torch.Generator().manual_seed(0), sampling_steps=20, record=(states, step)
    )
    (state,) = states
    rest = diffusion.sample(
        net, 64, None, torch.Generator().manual_seed(1), sampling_steps=20, start=(state, step)
    )
    torch.testing.assert_close(rest, whole)
    assert 0 < step < 99 and diffusion.alpha_bar_np[step] >= 0.9
    assert np.isfinite(rest.numpy()).all()
