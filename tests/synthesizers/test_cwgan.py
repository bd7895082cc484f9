"""Conditional WGAN-GP: the condition column, native conditional sampling, (slow) learning."""

from __future__ import annotations

import pytest
from deep_helpers import (  # noqa: F401
    assert_learned_conditions,
    condition_metadata,
    condition_table,
    one_thread,
)

from clinsynth import CWGANGPSynthesizer
from clinsynth.errors import ParameterError

SMALL = {
    "embedding_dim": 8,
    "generator_dim": (32,),
    "discriminator_dim": (32,),
    "batch_size": 100,
    "discriminator_steps": 2,
}


@pytest.mark.parametrize(
    ("value", "found"),
    [(None, None), ("glucose", "a numerical column"), ("nope", "not a column")],
)
def test_condition_column_is_required_and_categorical(value, found):
    model = CWGANGPSynthesizer(condition_metadata(), condition_column=value, epochs=1)
    with pytest.raises(ParameterError) as info:
        model.fit(condition_table(50))
    message = str(info.value)
    assert message.startswith(
        "The 'condition_column' parameter of CWGANGPSynthesizer must be "
        f"the name of a categorical column. Got {value!r}"
    )
    if found:
        assert found in message and "['condition']" in message


def test_conditions_are_exact_even_for_a_rare_level(one_thread):  # noqa: F811
    df = condition_table(300)
    model = CWGANGPSynthesizer(
        condition_metadata(), condition_column="condition", epochs=2, random_state=0, **SMALL
    ).fit(df)
    rows = model.sample(200, conditions={"condition": "diabetes"})
    assert len(rows) == 200 and (rows["condition"] == "diabetes").all()
    # Natively: every generated row carries the condition, with no rejection.
    strategy = model.conditioning()
    encoded = strategy.candidates(50, {"condition": ("eq", "diabetes")}, model._sample_rng_)
    decoded = model._transformer_.inverse_transform(encoded)
    assert (decoded["condition"] == "diabetes").all()
    # Conditions on other columns fall back to rejection.
    assert strategy.candidates(5, {"glucose": ("range", 0, 50)}, model._sample_rng_) is None


def test_unconditional_sampling_draws_conditions_by_frequency(one_thread):  # noqa: F811
    df = condition_table(600)
    model = CWGANGPSynthesizer(
        condition_metadata(), condition_column="condition", epochs=1, random_state=0, **SMALL
    ).fit(df)
    freq = model.sample(4000)["condition"].value_counts(normalize=True)
    assert abs(freq["healthy"] - 0.6) < 0.05 and abs(freq["diabetes"] - 0.05) < 0.02


def test_other_parameters_use_the_standard_message():
    model = CWGANGPSynthesizer(
        condition_metadata(), condition_column="condition", gradient_penalty_weight=-1.0
    )
    with pytest.raises(ParameterError) as info:
        model.fit(condition_table(50))
    assert str(info.value) == (
        "The 'gradient_penalty_weight' parameter of CWGANGPSynthesizer "
        "must be a float >= 0. Got -1.0."
    )


@pytest.mark.slow
def test_cwgan_learns_each_conditions_distribution(one_thread):  # noqa: F811
    df = condition_table()
    model = CWGANGPSynthesizer(
        condition_metadata(),
        condition_column="condition",
        epochs=200,
        batch_size=100,
        embedding_dim=16,
        generator_dim=(64, 64),
        discriminator_dim=(64, 64),
        generator_lr=5e-4,
        discriminator_lr=5e-4,
        random_state=0,
    ).fit(df)
    assert_learned_conditions(model)
