"""The training engine shared by the deep models, through their public API: losses, progress,
validation and early stopping, checkpoints and resume, devices, randomness, latent plots."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from deep_helpers import learning_metadata, learning_table, one_thread  # noqa: F401

import clinsynth
from clinsynth import (
    CTGANSynthesizer,
    CWGANGPSynthesizer,
    HVAEGANSynthesizer,
    TVAESynthesizer,
    get_synthesizer,
    visualize_latent_space,
)
from clinsynth.errors import ClinsynthError, ParameterError

TINY = {
    "tvae": {
        "embedding_dim": 8,
        "compress_dims": (16,),
        "decompress_dims": (16,),
        "batch_size": 50,
    },
    "ctgan": {
        "embedding_dim": 8,
        "generator_dim": (16,),
        "discriminator_dim": (16,),
        "batch_size": 50,
        "pac": 5,
    },
    "cwgan": {
        "condition_column": "group",
        "embedding_dim": 8,
        "generator_dim": (16,),
        "discriminator_dim": (16,),
        "batch_size": 50,
        "discriminator_steps": 2,
    },
    "hvaegan": {
        "column_groups": {"a": ["x"], "b": ["y"]},
        "group_embedding_dim": 4,
        "embedding_dim": 4,
        "compress_dims": (16,),
        "decompress_dims": (16,),
        "discriminator_dim": (16,),
        "batch_size": 50,
    },
}
DEEP = sorted(TINY)


def make(name, **params):
    return get_synthesizer(name)(learning_metadata(), **{"random_state": 0, **TINY[name], **params})


@pytest.fixture(scope="module")
def df():
    return learning_table(160)


# --------------------------------------------------------------------------- losses, progress
@pytest.mark.parametrize("name", DEEP)
def test_loss_tables_and_plot(name, df, one_thread):  # noqa: F811
    model = make(name, epochs=3).fit(df)
    epochs = model.get_loss_values()
    expected = (
        ["loss"]
        if name in ("tvae",)
        else (
            ["loss", "adversarial_loss", "discriminator_loss"]
            if name == "hvaegan"
            else ["generator_loss", "discriminator_loss"]
        )
    )
    assert list(epochs.columns) == ["epoch", *expected]
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(epochs[expected].to_numpy()).all()
    batches = model.get_loss_values(per_batch=True)
    assert list(batches.columns) == ["epoch", "batch", *expected]
    assert batches["epoch"].max() == 3 and len(batches) >= 3
    # The epoch loss is the mean of its batches.
    means = batches.groupby("epoch")[expected[0]].mean().to_numpy()
    np.testing.assert_allclose(means, epochs[expected[0]].to_numpy(), rtol=1e-6)
    fig = model.plot_loss()
    assert len(fig.data) == len(expected)
    assert len(model.plot_loss(show_batch_loss=True).data) == 2 * len(expected)


def test_progress_reports_every_epoch_with_loss_and_eta(df, one_thread):  # noqa: F811
    calls = []
    make("tvae", epochs=4, progress=lambda *a: calls.append(a)).fit(df)
    epochs = [c for c in calls if c[2].startswith("epoch")]
    assert [(t, d) for t, d, _ in epochs] == [(4, 1), (4, 2), (4, 3), (4, 4)]
    assert all("loss" in m and "ETA" in m for _, _, m in epochs)


def test_cli_style_construction_for_every_deep_model(df, one_thread):  # noqa: F811
    """The CLI builds models as get_synthesizer(name)(md, epochs=, batch_size=, device=, ...)."""
    for name in DEEP:
        extra = {k: v for k, v in TINY[name].items() if k != "batch_size"}
        model = get_synthesizer(name)(
            learning_metadata(),
            epochs=1,
            batch_size=50,
            device="cpu",
            progress=None,
            random_state=0,
            verbose=True,
            **extra,
        )
        assert model.fit(df).sample(5).shape == (5, 3)


# --------------------------------------------------------------------------- validation
def test_validation_split_and_early_stopping_keep_the_best_epoch(df, one_thread):  # noqa: F811
    model = make(
        "tvae", epochs=200, validation_split=0.25, early_stopping_patience=2, learning_rate=0.05
    ).fit(df)
    losses = model.get_loss_values()
    assert "val_loss" in losses and model.stopped_early_
    assert len(losses) < 200
    assert model.best_epoch_ == int(losses.loc[losses["val_loss"].idxmin(), "epoch"])


def test_validation_loss_is_recorded_for_gans(df, one_thread):  # noqa: F811
    model = make("ctgan", epochs=2, validation_split=0.25).fit(df)
    assert model.get_loss_values()["val_loss"].notna().all()


def test_early_stopping_needs_a_validation_split(df):
    with pytest.raises(ParameterError, match="validation_split > 0"):
        make("tvae", epochs=2, early_stopping_patience=3).fit(df)


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", ["tvae", "ctgan"])
def test_resumed_fit_equals_an_uninterrupted_fit(name, df, tmp_path, one_thread):  # noqa: F811
    straight = make(name, epochs=4).fit(df)
    # An "interrupted" run: 2 epochs with a checkpoint every epoch ...
    first = make(name, epochs=2, checkpoint_dir=tmp_path, checkpoint_every=1).fit(df)
    ckpt = tmp_path / f"{name}.checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic writes
    # ... continued to 4 epochs from the checkpoint.
    resumed = make(name, epochs=4, checkpoint_dir=tmp_path).fit(df, resume=True)
    pd.testing.assert_frame_equal(resumed.get_loss_values(), straight.get_loss_values())
    pd.testing.assert_frame_equal(resumed.sample(50), straight.sample(50))
    assert first.get_loss_values()["epoch"].tolist() == [1, 2]


def test_resume_checks_parameters_and_data(df, tmp_path, one_thread):  # noqa: F811
    make("tvae", epochs=1, checkpoint_dir=tmp_path).fit(df)
    with pytest.raises(ParameterError, match="other parameters"):
        make("tvae", epochs=2, checkpoint_dir=tmp_path, l2scale=0.1).fit(df, resume=True)
    with pytest.raises(ParameterError, match="other data"):
        make("tvae", epochs=2, checkpoint_dir=tmp_path).fit(df.iloc[:100], resume=True)
    with pytest.raises(ParameterError, match="checkpoint_dir"):
        make("tvae", epochs=2).fit(df, resume=True)
    # No checkpoint yet: resume starts from scratch.
    fresh = make("tvae", epochs=1, checkpoint_dir=tmp_path / "new").fit(df, resume=True)
    assert fresh.get_loss_values()["epoch"].tolist() == [1]


def test_checkpoint_folder_is_not_saved_in_the_bundle(df, tmp_path, one_thread):  # noqa: F811
    model = make("tvae", epochs=1, checkpoint_dir=tmp_path / "ckpt").fit(df)
    path = model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert "checkpoint_dir" not in manifest["params"]
    assert clinsynth.load(path).checkpoint_dir is None


# --------------------------------------------------------------------------- randomness, devices
@pytest.mark.parametrize("name", DEEP)
def test_global_random_state_is_untouched(name, df, one_thread):  # noqa: F811
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    make(name, epochs=1).fit(df).sample(20)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    np.testing.assert_array_equal(numpy_state, np.random.get_state()[1])  # noqa: NPY002


def test_different_seeds_give_different_models(df, one_thread):  # noqa: F811
    a = make("tvae", epochs=1, random_state=1).fit(df).sample(30)
    b = make("tvae", epochs=1, random_state=2).fit(df).sample(30)
    assert not a.equals(b)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_gpu_is_a_clear_error(df):
    with pytest.raises(ParameterError, match="no CUDA GPU"):
        make("tvae", epochs=1, device="cuda").fit(df)
    assert make("tvae", epochs=1, device="auto").fit(df).sample(3).shape == (3, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", DEEP)
def test_fit_on_cuda_load_on_cpu(name, df, tmp_path):
    model = make(name, epochs=2, device="cuda").fit(df)
    again = make(name, epochs=2, device="cuda").fit(df)
    pd.testing.assert_frame_equal(model.sample(40), again.sample(40))
    path = model.save(tmp_path / "gpu.zip")
    loaded = clinsynth.load(path, device="cpu")
    assert loaded.sample(40).shape == (40, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_device_and_resume_on_cuda(df, tmp_path):
    model = make("ctgan", epochs=1, device="auto").fit(df)
    assert next(model.generator_.parameters()).is_cuda
    straight = make("ctgan", epochs=2, device="cuda").fit(df)
    make("ctgan", epochs=1, device="cuda", checkpoint_dir=tmp_path).fit(df)
    resumed = make("ctgan", epochs=2, device="cuda", checkpoint_dir=tmp_path).fit(df, resume=True)
    pd.testing.assert_frame_equal(resumed.get_loss_values(), straight.get_loss_values())


# --------------------------------------------------------------------------- latent space
@pytest.mark.parametrize("cls", [TVAESynthesizer, HVAEGANSynthesizer])
def test_latent_space_plot_with_pca(cls, df, one_thread):  # noqa: F811
    name = cls._model_name
    model = make(name, epochs=1).fit(df)
    fig = visualize_latent_space(model, df, color_by="group", method="pca")
    assert len(fig.data) == df["group"].nunique()
    assert sum(len(trace.x) for trace in fig.data) == len(df)
    numeric = visualize_latent_space(model, df, color_by="x", method="pca")
    assert len(numeric.data) == 1 and numeric.data[0].marker.colorscale is not None
    few = visualize_latent_space(model, df, method="pca", max_points=50)
    assert len(few.data[0].x) == 50


def test_hvaegan_shared_latent_level(df, one_thread):  # noqa: F811
    model = make("hvaegan", epochs=1).fit(df)
    assert model.encode(df, level="shared").shape == (len(df), 4)
    assert model.encode(df).shape == (len(df), 12)  # groups a, b and "other" (group)
    fig = visualize_latent_space(model, df, method="pca", level="shared")
    assert len(fig.data[0].x) == len(df)
    with pytest.raises(ParameterError, match="level"):
        model.encode(df, level="top")


def test_latent_space_errors(df, one_thread):  # noqa: F811
    tvae = make("tvae", epochs=1).fit(df)
    with pytest.raises(ParameterError, match="no latent space"):
        visualize_latent_space(make("ctgan", epochs=1).fit(df), df, method="pca")
    with pytest.raises(ParameterError, match="not a column"):
        visualize_latent_space(tvae, df, color_by="nope", method="pca")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ClinsynthError, match=r"pip install clinsynth\[umap\]") as info:
            visualize_latent_space(tvae, df, method="umap")
        assert isinstance(info.value, ImportError)


def test_models_are_exported_and_registered():
    names = clinsynth.list_synthesizers()
    for name, cls in [
        ("tvae", TVAESynthesizer),
        ("ctgan", CTGANSynthesizer),
        ("cwgan", CWGANGPSynthesizer),
        ("hvaegan", HVAEGANSynthesizer),
    ]:
        assert names[name] is cls and getattr(clinsynth, cls.__name__) is cls
