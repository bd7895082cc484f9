"""CTGAN: parameters, training by sampling, native conditioning, and (slow) learning."""

from __future__ import annotations

import pytest
from deep_helpers import (  # noqa: F401
    LEARNING_CTGAN,
    assert_learned_conditions,
    condition_metadata,
    condition_table,
    learning_metadata,
    learning_table,
    one_thread,
)

from clinsynth import CTGANSynthesizer
from clinsynth.errors import ParameterError, SamplingError

SMALL = {"embedding_dim": 8, "generator_dim": (32,), "discriminator_dim": (32,), "batch_size": 100}


def test_sdv_parameter_names_and_defaults():
    params = CTGANSynthesizer(learning_metadata()).get_params()
    expected = {
        "embedding_dim": 128,
        "generator_dim": (256, 256),
        "discriminator_dim": (256, 256),
        "generator_lr": 2e-4,
        "generator_decay": 1e-6,
        "discriminator_lr": 2e-4,
        "discriminator_decay": 1e-6,
        "batch_size": 500,
        "discriminator_steps": 1,
        "log_frequency": True,
        "pac": 10,
        "epochs": 300,
    }
    assert {k: params[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("pac", 0, "an int >= 1"),
        ("generator_lr", 0.0, "a float > 0"),
        ("discriminator_steps", 0, "an int >= 1"),
        ("log_frequency", "yes", "a bool"),
        ("generator_dim", [256, "x"], "a tuple of ints >= 1"),
    ],
)
def test_bad_parameter_uses_the_standard_message(param, value, expected):
    model = CTGANSynthesizer(learning_metadata(), **{param: value})
    message = f"The '{param}' parameter of CTGANSynthesizer must be {expected}. Got {value!r}."
    with pytest.raises(ParameterError) as info:
        model.fit(learning_table(50))
    assert str(info.value) == message


def test_batch_size_must_be_a_multiple_of_pac():
    model = CTGANSynthesizer(learning_metadata(), batch_size=64, pac=10)
    with pytest.raises(ParameterError, match=r"'batch_size' .* multiple of pac \(10\)\. Got 64"):
        model.fit(learning_table(50))


def test_native_conditioning_on_a_rare_level(one_thread):  # noqa: F811
    df = learning_table(400)
    model = CTGANSynthesizer(learning_metadata(), epochs=30, random_state=0, **SMALL).fit(df)
    rows = model.sample(100, conditions={"group": "rare"})
    assert len(rows) == 100 and (rows["group"] == "rare").all()
    # The conditional vector does the work: after a short training, far more generated rows
    # carry the level than the 5% of unconditional draws, so the first batch (1,000 draws,
    # where rejection would need about 2,000) is enough.
    stats = model.conditioning_stats_
    assert stats["method"] == "importance resampling in the noise space"
    assert stats["rounds"] == 1 and stats["draws"] <= 1000
    # A range has no conditional vector: importance resampling in the noise meets it.
    ranged = model.sample(10, conditions={"x": (40, 60)})
    assert len(ranged) == 10 and ranged["x"].between(40, 60).all()


def test_unknown_condition_value_is_a_sampling_error(one_thread):  # noqa: F811
    model = CTGANSynthesizer(learning_metadata(), epochs=1, random_state=0, **SMALL)
    model.fit(learning_table(200))
    with pytest.raises(SamplingError, match="never seen"):
        model.sample(5, conditions={"group": "unheard-of"})


def test_without_categorical_columns(one_thread):  # noqa: F811
    df = learning_table(200)[["x", "y"]]
    from clinsynth import Metadata

    md = Metadata.from_dict(
        {"columns": {"x": {"sdtype": "numerical"}, "y": {"sdtype": "numerical"}}}
    )
    model = CTGANSynthesizer(md, epochs=2, random_state=0, **SMALL).fit(df)
    assert model.sample(20).shape == (20, 2)


@pytest.mark.slow
def test_ctgan_learns_conditional_structure_and_rare_category(one_thread):  # noqa: F811
    """CTGAN's training by sampling: each diagnosis' lab values, their correlation, and the 5%
    diagnosis. (Unimodal numbers get ten narrow mixture components from the transformer, which
    makes a plain two-number correlation slow to learn for the GANs: see the TVAE test.)"""
    df = condition_table()
    model = CTGANSynthesizer(condition_metadata(), random_state=0, **LEARNING_CTGAN).fit(df)
    assert_learned_conditions(model)
