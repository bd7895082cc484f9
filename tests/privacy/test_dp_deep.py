"""DP-SGD in the deep synthesizers: budget, calibration, what is kept, errors, the outlier."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinsynth import TVAESynthesizer, list_synthesizers, load
from clinsynth.errors import ParameterError

DEEP = ["tvae", "ctgan", "cwgan", "hvaegan"]


def _setup(name: str) -> tuple[pd.DataFrame, object, dict]:
    from conftest import make_mixed_metadata, make_mixed_table
    from test_contract import FAST_PARAMS

    params = dict(FAST_PARAMS[name])
    params["batch_size"] = 40
    params.update(
        epsilon=1.0, public_bounds=FAST_PARAMS["dp_marginal"]["public_bounds"], random_state=0
    )
    return make_mixed_table(200, seed=4), make_mixed_metadata(), params


@pytest.mark.parametrize("name", DEEP)
def test_dp_sgd_spends_the_budget_and_reports_it(name, tmp_path):
    df, md, params = _setup(name)
    model = list_synthesizers()[name](md, **params).fit(df)
    report = model.get_privacy_report()
    assert report["differential_privacy"] and 0.99 <= report["epsilon_spent"] <= 1.0
    assert report["delta"] == pytest.approx(1 / 2000)
    assert report["sample_rate"] == pytest.approx(40 / 200)
    critic_steps = params.get("discriminator_steps", 1) if name in ("ctgan", "cwgan") else 1
    per_epoch = 200 // 40 if name == "ctgan" else 5
    assert report["steps"] == params["epochs"] * per_epoch * critic_steps
    assert report["noise_multiplier"] > 0.5 and report["max_grad_norm"] == 1.0
    assert set(report["consumers"]) == {"statistics", "training"}
    # Losses computed on real rows are not kept; a generator's loss reads no real row.
    losses = model.get_loss_values()
    real_losses = [c for c in losses.columns if c in ("loss", "discriminator_loss")]
    assert real_losses and losses[real_losses].isna().all().all()
    path = model.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["privacy"]["noise_multiplier"] == report["noise_multiplier"]
    loaded = load(path)
    assert loaded.get_privacy_report()["epsilon_spent"] == report["epsilon_spent"]
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(25), model.sample(25))


def test_dp_training_is_reproducible():
    df, md, params = _setup("tvae")
    first = TVAESynthesizer(md, **params).fit(df).sample(30)
    pd.testing.assert_frame_equal(first, TVAESynthesizer(md, **params).fit(df).sample(30))


def test_dp_parameter_errors():
    df, md, params = _setup("tvae")
    with pytest.raises(
        ParameterError, match="'validation_split' parameter .* must be 0 with epsilon"
    ):
        TVAESynthesizer(md, **params, validation_split=0.2).fit(df)
    with pytest.raises(ParameterError, match="early_stopping_patience"):
        TVAESynthesizer(md, **{**params, "early_stopping_patience": 2}).fit(df)
    with pytest.raises(ParameterError, match="'epsilon' parameter of TVAESynthesizer"):
        TVAESynthesizer(md, **{**params, "epsilon": 0}).fit(df)
    with pytest.raises(ParameterError, match="'max_grad_norm' parameter"):
        TVAESynthesizer(md, **{**params, "max_grad_norm": -1.0}).fit(df)
    with pytest.raises(ParameterError, match="'delta' parameter"):
        TVAESynthesizer(md, **{**params, "delta": 2.0}).fit(df)


def test_tiny_epsilon_does_not_reproduce_a_planted_outlier():
    from test_audit import PUBLIC, _data, _metadata, _near

    model = TVAESynthesizer(
        _metadata(),
        epsilon=0.5,
        public_bounds=PUBLIC,
        epochs=10,
        batch_size=50,
        embedding_dim=16,
        compress_dims=(32, 32),
        decompress_dims=(32, 32),
        random_state=0,
    )
    syn = model.fit(_data(200, 0, planted=True)).sample(5000)
    assert _near(syn) == 0
