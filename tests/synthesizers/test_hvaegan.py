"""HVAE-GAN: feature groups (parameter, metadata, "other"), group-local encoders, learning."""

from __future__ import annotations

import numpy as np
import pytest
from deep_helpers import assert_learned, learning_metadata, learning_table, one_thread  # noqa: F401

from clinsynth import HVAEGANSynthesizer
from clinsynth.errors import ParameterError

SMALL = {
    "group_embedding_dim": 4,
    "embedding_dim": 4,
    "compress_dims": (16,),
    "decompress_dims": (16,),
    "discriminator_dim": (16,),
    "batch_size": 100,
}


def test_groups_from_the_parameter_with_an_other_group(one_thread):  # noqa: F811
    df = learning_table(150)
    model = HVAEGANSynthesizer(
        learning_metadata(), column_groups={"lab": ["x", "y"]}, epochs=1, random_state=0, **SMALL
    ).fit(df)
    assert model.latent_groups_ == {"lab": slice(0, 4), "other": slice(4, 8)}
    assert model.encode(df).shape == (150, 8)


def test_groups_from_the_metadata_and_the_default_single_group(one_thread):  # noqa: F811
    df = learning_table(150)
    md = learning_metadata()
    model = HVAEGANSynthesizer(md, epochs=1, random_state=0, **SMALL).fit(df)
    assert list(model.latent_groups_) == ["all"]
    md.set_column_groups({"genetic": ["group"], "clinical": ["x", "y"]})
    model = HVAEGANSynthesizer(md, epochs=1, random_state=0, **SMALL).fit(df)
    assert list(model.latent_groups_) == ["genetic", "clinical"]


def test_each_group_latent_depends_only_on_its_columns(one_thread):  # noqa: F811
    df = learning_table(150)
    model = HVAEGANSynthesizer(
        learning_metadata(),
        column_groups={"a": ["x"], "b": ["y"]},
        epochs=2,
        random_state=0,
        **SMALL,
    ).fit(df)
    changed = df.assign(y=df["y"].sample(frac=1, random_state=1).to_numpy())
    before, after = model.encode(df), model.encode(changed)
    groups = model.latent_groups_
    np.testing.assert_array_equal(before[:, groups["a"]], after[:, groups["a"]])
    np.testing.assert_array_equal(before[:, groups["other"]], after[:, groups["other"]])
    assert not np.array_equal(before[:, groups["b"]], after[:, groups["b"]])


@pytest.mark.parametrize(
    ("groups", "problem"),
    [
        ({"a": ["x", "nope"]}, "group 'a' names 'nope', which is not a column"),
        ({"a": ["x"], "b": ["x", "y"]}, "'x' is in groups 'a' and 'b'"),
    ],
)
def test_invalid_groups_are_reported(groups, problem):
    model = HVAEGANSynthesizer(learning_metadata(), column_groups=groups, epochs=1)
    with pytest.raises(ParameterError, match=problem):
        model.fit(learning_table(50))


def test_weights_use_the_standard_message():
    model = HVAEGANSynthesizer(learning_metadata(), kl_weight=-1)
    with pytest.raises(ParameterError) as info:
        model.fit(learning_table(50))
    assert str(info.value) == (
        "The 'kl_weight' parameter of HVAEGANSynthesizer must be a float >= 0. Got -1."
    )


def test_without_adversary_it_is_a_hierarchical_vae(one_thread):  # noqa: F811
    model = HVAEGANSynthesizer(
        learning_metadata(), adversarial_weight=0.0, epochs=2, random_state=0, **SMALL
    ).fit(learning_table(150))
    assert list(model.get_loss_values().columns) == ["epoch", "loss"]


@pytest.mark.slow
def test_hvaegan_learns_dependence_across_groups(one_thread):  # noqa: F811
    """x and y sit in different groups (separate encoders); the shared top latent must carry
    their 0.96 correlation."""
    df = learning_table()
    model = HVAEGANSynthesizer(
        learning_metadata(),
        column_groups={"a": ["x"], "b": ["y"]},
        epochs=300,
        batch_size=100,
        compress_dims=(64,),
        decompress_dims=(64, 64),
        discriminator_dim=(64,),
        random_state=0,
    ).fit(df)
    assert_learned(df, model.sample(3000))


def test_a_rule_joint_column_stays_in_its_group(one_thread):  # noqa: F811
    """FixedCombinations merges columns into one joint column: it joins its members' group and
    encode() still takes the user's rows."""
    from clinsynth.constraints import FixedCombinations
    from conftest import make_mixed_metadata, make_mixed_table

    df = make_mixed_table(120, seed=3)
    groups = {"clinical": ["age", "weight", "sbp"], "demographic": ["sex", "stage", "smoker"]}
    model = HVAEGANSynthesizer(
        make_mixed_metadata(),
        column_groups=groups,
        epochs=1,
        random_state=0,
        constraints=[FixedCombinations(["sex", "stage"])],
        **SMALL,
    ).fit(df)
    assert list(model.latent_groups_) == ["clinical", "demographic", "other"]
    assert any("sex" in c and "stage" in c for c in model._groups_["demographic"])
    assert model.encode(df).shape == (120, 12)
