"""TVAE: parameters, latent space, and (slow) evidence that it learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from deep_helpers import (  # noqa: F401
    LEARNING_TVAE,
    assert_learned,
    learning_metadata,
    learning_table,
    one_thread,
)

from clinsynth import Metadata, TVAESynthesizer
from clinsynth.errors import ParameterError

SMALL = {"embedding_dim": 8, "compress_dims": (32,), "decompress_dims": (32,), "batch_size": 100}


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("epochs", 0, "an int >= 1"),
        ("batch_size", 2.5, "an int >= 1"),
        ("embedding_dim", -1, "an int >= 1"),
        ("compress_dims", (128, 0), "a tuple of ints >= 1"),
        ("l2scale", -1e-5, "a float >= 0"),
        ("loss_factor", 0, "a float > 0"),
        ("validation_split", 1.0, "a float in [0, 1)"),
    ],
)
def test_bad_parameter_uses_the_standard_message(param, value, expected):
    df = learning_table(50)
    model = TVAESynthesizer(learning_metadata(), **{param: value})
    message = f"The '{param}' parameter of TVAESynthesizer must be {expected}. Got {value!r}."
    with pytest.raises(ParameterError) as info:
        model.fit(df)
    assert str(info.value) == message


def test_sdv_parameter_names_and_defaults():
    params = TVAESynthesizer(learning_metadata()).get_params()
    assert {
        k: params[k]
        for k in (
            "embedding_dim",
            "compress_dims",
            "decompress_dims",
            "l2scale",
            "batch_size",
            "epochs",
            "loss_factor",
        )
    } == {
        "embedding_dim": 128,
        "compress_dims": (128, 128),
        "decompress_dims": (128, 128),
        "l2scale": 1e-5,
        "batch_size": 500,
        "epochs": 300,
        "loss_factor": 2,
    }
    assert params["device"] == "cpu" and params["verbose"] is False


def test_encode_is_the_deterministic_posterior_mean(one_thread):  # noqa: F811
    df = learning_table(200)
    model = TVAESynthesizer(learning_metadata(), epochs=2, random_state=0, **SMALL).fit(df)
    z = model.encode(df)
    assert z.shape == (200, 8) and z.dtype == np.float32
    np.testing.assert_array_equal(z, model.encode(df))
    # Rows that differ in the data land on different points.
    assert np.unique(z.round(5), axis=0).shape[0] > 150


def test_sampling_does_not_depend_on_batch_size(one_thread):  # noqa: F811
    """Rows come from the same stream whether sampled in one batch or in several."""
    df = learning_table(150)
    model = TVAESynthesizer(learning_metadata(), epochs=1, random_state=1, **SMALL).fit(df)
    one = model.sample(50)
    assert one["group"].isin(["common", "medium", "rare"]).all()
    assert one["x"].between(df["x"].min(), df["x"].max()).all()


@pytest.mark.slow
def test_tvae_learns_correlation_and_rare_category(one_thread):  # noqa: F811
    df = learning_table()
    model = TVAESynthesizer(learning_metadata(), random_state=0, **LEARNING_TVAE).fit(df)
    synthetic = model.sample(3000)
    assert_learned(df, synthetic)
    losses = model.get_loss_values()["loss"]
    assert losses.iloc[-10:].mean() < losses.iloc[:3].mean()


def test_untrained_model_fails_the_learning_check(one_thread):  # noqa: F811
    """The learning check is meaningful: one epoch of a tiny model does not pass it."""
    df = learning_table()
    model = TVAESynthesizer(learning_metadata(), epochs=1, random_state=0, **SMALL).fit(df)
    with pytest.raises(AssertionError):
        assert_learned(df, model.sample(3000))


def test_metadata_detected_from_dataframe_works(one_thread):  # noqa: F811
    df = pd.DataFrame({"a": np.arange(60) % 7, "b": ["u", "v", "w"] * 20})
    model = TVAESynthesizer(
        Metadata.detect_from_dataframe(df), epochs=1, random_state=0, **SMALL
    ).fit(df)
    assert model.sample(10).shape == (10, 2)
