"""TabDDPM: the diffusion processes, conditioning on a class column, training bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from deep_helpers import one_thread_module  # noqa: F401

from clinsynth import Metadata, TabDDPMSynthesizer, load
from clinsynth.errors import ParameterError
from clinsynth.synthesizers.nn._diffusion import (
    Denoiser,
    TabularDiffusion,
    cosine_alpha_bars,
    strided_timesteps,
)

#: Small settings: a tiny network trains a few epochs in well under a second.
FAST = {
    "epochs": 3,
    "batch_size": 64,
    "hidden_dims": (32, 32),
    "embedding_dim": 16,
    "num_timesteps": 100,
    "sampling_steps": 10,
    "random_state": 0,
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_thread_module):  # noqa: F811
    """Small tensors on shared, busy cores: a second intra-op thread only adds waiting."""


@pytest.fixture(scope="module")
def mixed():
    from conftest import make_mixed_metadata, make_mixed_table

    return make_mixed_table(150, seed=1), make_mixed_metadata()


# --------------------------------------------------------------------------- diffusion maths
def test_multinomial_forward_marginal_matches_schedule():
    """q(x_t | x_0) keeps the level with probability a_t + (1 - a_t) / K."""
    diff = TabularDiffusion(0, [(0, 1, 4)], 50, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    n = 40_000
    x0 = torch.zeros(n, 4)
    x0[:, 2] = 1.0
    t = torch.full((n,), 20, dtype=torch.long)
    _, _, gumbel = diff.draw_training_noise(n, g)
    xt = diff.q_sample(x0, t, torch.zeros(n, 0), gumbel)
    a = float(cosine_alpha_bars(50)[20])
    expected = a + (1 - a) / 4
    assert abs(float(xt[:, 2].mean()) - expected) < 0.01
    assert torch.all(xt.sum(dim=1) == 1)


def test_perfect_prediction_has_zero_loss_and_uniform_does_not():
    diff = TabularDiffusion(1, [(1, 2, 3)], 100, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    n = 256
    levels = torch.randint(3, (n, 2), generator=g)
    x0 = torch.cat(
        [
            torch.randn(n, 1, generator=g),
            torch.nn.functional.one_hot(levels, 3).float().reshape(n, 6),
        ],
        dim=1,
    )
    t, noise, gumbel = diff.draw_training_noise(n, g)
    xt = diff.q_sample(x0, t, noise, gumbel)
    perfect = torch.cat([noise, 50.0 * x0[:, 1:]], dim=1)
    num, cat = diff.loss_terms(perfect, x0, xt, t, noise)
    assert float(num.max()) == 0.0 and float(cat.max()) < 1e-4
    num, cat = diff.loss_terms(torch.zeros(n, 7), x0, xt, t, noise)
    assert float(num.mean()) > 0.5 and float(cat.mean()) > 0.01


def test_strided_sampling_visits_first_and_last_step():
    steps = strided_timesteps(1000, 50)
    assert steps[0] == 0 and steps[-1] == 999 and len(steps) == 50
    assert strided_timesteps(10, 100).tolist() == list(range(10))


def test_sample_is_one_hot_and_finite():
    diff = TabularDiffusion(2, [(2, 1, 2), (4, 1, 3)], 40, torch.device("cpu"))
    net = Denoiser(7, (16,), 8, n_classes=2)
    g = torch.Generator().manual_seed(0)
    for eta in (0.0, 1.0):
        x = diff.sample(net, 30, torch.zeros(30, dtype=torch.long), g, sampling_steps=7, eta=eta)
        assert torch.isfinite(x).all() and x[:, :2].abs().max() <= 5.0
        assert torch.all(x[:, 2:4].sum(1) == 1) and torch.all(x[:, 4:].sum(1) == 1)


# --------------------------------------------------------------------------- the synthesizer
def test_loss_history_progress_and_validation(mixed):
    df, md = mixed
    calls = []
    model = TabDDPMSynthesizer(
        md,
        **{**FAST, "epochs": 4},
        validation_split=0.2,
        progress=lambda total, done, msg: calls.append((total, done)),
    )
    model.fit(df)
    losses = model.get_loss_values()
    assert list(losses["epoch"]) == [1, 2, 3, 4]
    assert {"loss", "gaussian_loss", "multinomial_loss", "val_loss"} <= set(losses.columns)
    assert np.allclose(
        losses["loss"], losses["gaussian_loss"] + losses["multinomial_loss"], rtol=1e-5
    )
    assert (4, 4) in calls
    assert model.get_loss_values(per_batch=True)["batch"].max() == 1  # 120 rows / 64


def test_condition_column_is_met_natively_and_keeps_frequencies(mixed):
    df, md = mixed
    model = TabDDPMSynthesizer(md, **FAST, condition_column="stage").fit(df)
    rows = model.sample(60, conditions={"stage": "IV", "sex": "F"})
    assert len(rows) == 60 and (rows["stage"] == "IV").all() and (rows["sex"] == "F").all()
    # Natively conditioned: every row of one batch has the level (no rejection needed).
    rows = model.sample(150, conditions={"stage": "III"})
    assert (rows["stage"] == "III").all()
    assert model.conditioning_stats_["method"] == "native conditioning"
    assert model.conditioning_stats_["draws"] == 150
    # Unconditional rows draw the class label from the training frequencies.
    stage = model.sample(3000)["stage"].value_counts(normalize=True)
    real = df["stage"].value_counts(normalize=True)
    assert (stage.reindex(real.index) - real).abs().max() < 0.05


def test_condition_column_must_be_categorical(mixed):
    df, md = mixed
    with pytest.raises(ParameterError, match="'condition_column' parameter .* categorical"):
        TabDDPMSynthesizer(md, **FAST, condition_column="age").fit(df)
    with pytest.raises(ParameterError, match="not a column"):
        TabDDPMSynthesizer(md, **FAST, condition_column="nope").fit(df)


def test_bad_parameters_use_the_standard_message(mixed):
    df, md = mixed
    for name, value in (
        ("num_timesteps", 1),
        ("sampling_steps", 0),
        ("eta", 2.0),
        ("lr", 0.0),
        ("ema_decay", 1.0),
        ("condition_split", 1.0),
    ):
        with pytest.raises(ParameterError, match=f"'{name}' parameter of TabDDPMSynthesizer"):
            TabDDPMSynthesizer(md, **{**FAST, name: value}).fit(df)


def test_save_load_with_condition_column_and_all_steps(mixed, tmp_path):
    df, md = mixed
    model = TabDDPMSynthesizer(
        md, **{**FAST, "sampling_steps": None, "num_timesteps": 30}, condition_column="sex"
    ).fit(df)
    loaded = load(model.save(tmp_path / "m"))
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(20), model.sample(20))
    pd.testing.assert_frame_equal(
        loaded.sample(10, conditions={"sex": "M"}), model.sample(10, conditions={"sex": "M"})
    )


def test_resumed_fit_equals_uninterrupted_fit(mixed, tmp_path):
    df, md = mixed
    params = {**FAST, "epochs": 4, "checkpoint_dir": tmp_path, "checkpoint_every": 2}

    def stop_at_three(total, done, message):
        if message.startswith("epoch 3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TabDDPMSynthesizer(md, **params, progress=stop_at_three).fit(df)
    resumed = TabDDPMSynthesizer(md, **params).fit(df, resume=True)
    fresh = TabDDPMSynthesizer(md, **{**FAST, "epochs": 4}).fit(df)
    pd.testing.assert_frame_equal(resumed.sample(25), fresh.sample(25))
    pd.testing.assert_frame_equal(resumed.get_loss_values(), fresh.get_loss_values())


def test_differential_privacy_spends_the_budget_and_releases_no_loss(mixed, tmp_path):
    df, md = mixed
    model = TabDDPMSynthesizer(md, **FAST, epsilon=5.0, condition_column="sex").fit(df)
    budget = model.get_privacy_budget()
    assert budget["differential_privacy"] and 4.5 < budget["epsilon_spent"] <= 5.0
    assert budget["noise_multiplier"] > 0 and budget["steps"] == 3 * math.ceil(150 / 64)
    losses = model.get_loss_values()
    assert "loss" not in losses and "gaussian_loss" not in losses  # real-row losses stay out
    assert model.sample(20, conditions={"sex": "F"})["sex"].eq("F").all()
    loaded = load(model.save(tmp_path / "dp"))
    assert loaded.get_privacy_report()["epsilon_spent"] == budget["epsilon_spent"]
    with pytest.raises(ParameterError, match="validation_split"):
        TabDDPMSynthesizer(md, **FAST, epsilon=1.0, validation_split=0.2).fit(df)


# --------------------------------------------------------------------------- it learns
def _correlated_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n)
    y = 2 * x + rng.normal(0, 6, n)  # r ~ 0.96
    group = np.where(rng.random(n) < 0.05, "rare", np.where(x > 50, "high", "low"))
    lab = np.where(rng.random(n) < 0.1, np.nan, np.round(100 - x + rng.normal(0, 3, n), 1))
    return pd.DataFrame({"x": np.round(x, 2), "y": np.round(y, 2), "group": group, "lab": lab})


def _fidelity(df: pd.DataFrame, syn: pd.DataFrame) -> dict[str, float]:
    both = syn.dropna(subset=["x", "y"])
    return {
        "corr_error": abs(
            np.corrcoef(both["x"], both["y"])[0, 1] - np.corrcoef(df["x"], df["y"])[0, 1]
        ),
        "rare_share": float((syn["group"] == "rare").mean()),
        "high_agreement": float(
            ((syn["x"] > 50) == (syn["group"] == "high"))[syn["group"] != "rare"].mean()
        ),
        "null_rate": float(syn["lab"].isna().mean()),
        "x_mean_error": abs(float(syn["x"].mean() - df["x"].mean())),
    }


@pytest.mark.slow
def test_tabddpm_learns_correlations_a_rare_category_and_nulls():
    df = _correlated_table(1200, seed=0)
    md = Metadata.detect_from_dataframe(df)
    params = {
        "batch_size": 256,
        "hidden_dims": (128, 128),
        "embedding_dim": 64,
        "sampling_steps": 50,
        "random_state": 0,
    }
    trained = TabDDPMSynthesizer(md, epochs=250, **params).fit(df)
    untrained = TabDDPMSynthesizer(md, epochs=1, **params).fit(df)
    good = _fidelity(df, trained.sample(2000))
    bad = _fidelity(df, untrained.sample(2000))
    assert good["corr_error"] < 0.08, good
    assert 0.025 <= good["rare_share"] <= 0.08, good
    assert good["high_agreement"] > 0.85, good
    assert abs(good["null_rate"] - 0.1) < 0.04, good
    assert good["x_mean_error"] < 2.0, good
    failed = (
        bad["corr_error"] >= 0.08,
        not 0.025 <= bad["rare_share"] <= 0.08,
        bad["high_agreement"] <= 0.85,
        abs(bad["null_rate"] - 0.1) >= 0.04,
    )
    assert sum(failed) >= 2, bad
    assert math.isfinite(trained.get_loss_values()["loss"].iloc[-1])
