"""``training_precision="bfloat16"``: bfloat16 matrix products in training."""

from __future__ import annotations

import pytest
import torch
from deep_helpers import (  # noqa: F401
    LEARNING_CTGAN,
    LEARNING_TVAE,
    assert_learned,
    assert_learned_conditions,
    autocast_dtypes,
    condition_metadata,
    condition_table,
    learning_metadata,
    learning_table,
    one_thread,
)

from clinsynth import CTGANSynthesizer, TVAESynthesizer, get_synthesizer
from clinsynth.errors import ParameterError
from clinsynth.synthesizers.nn import FusedVAEStep


def test_tvae_bfloat16_step_is_close_to_float32() -> None:
    """The bfloat16 products change TVAE's gradients by about bfloat16's rounding, not more."""
    df = learning_table(300)
    model = TVAESynthesizer(learning_metadata(), epochs=1, batch_size=100, random_state=0)
    model.fit(df)
    import numpy as np

    encoded = model._transformer_.transform(df, random_state=0)[:, model._layout_.order]
    x = torch.as_tensor(np.ascontiguousarray(encoded), dtype=torch.float32)[:200]
    eps = torch.randn(len(x), model.embedding_dim, generator=torch.Generator().manual_seed(1))
    params = [*model.encoder_.parameters(), *model.decoder_.parameters()]
    grads = []
    for dtype in (torch.float32, torch.bfloat16):
        step = FusedVAEStep(
            model.encoder_, model.decoder_.net, model.decoder_.sigma, model._layout_, 2.0, dtype
        )
        loss = step(x, eps)
        grads.append((float(loss), [p.grad.clone() for p in params]))
    (loss32, g32), (loss16, g16) = grads
    assert loss16 == pytest.approx(loss32, rel=0.02)
    for a, b in zip(g32, g16, strict=True):
        # Same direction (cosine > 0.99), norms within 15%: far below the batch-to-batch
        # noise of the gradient.
        cos = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
        assert cos > 0.99 or float(a.norm()) < 1e-6, cos
        assert float((a - b).norm()) <= 0.15 * float(a.norm()) + 1e-6


def test_tvae_learns_in_bfloat16(one_thread) -> None:  # noqa: F811
    df = learning_table()
    model = TVAESynthesizer(
        learning_metadata(), training_precision="bfloat16", random_state=0, **LEARNING_TVAE
    ).fit(df)
    assert model._fused_ is None  # released after training
    assert_learned(df, model.sample(3000))


@pytest.mark.slow
def test_ctgan_learns_in_bfloat16(one_thread) -> None:  # noqa: F811
    model = CTGANSynthesizer(
        condition_metadata(), training_precision="bfloat16", random_state=0, **LEARNING_CTGAN
    ).fit(condition_table())
    assert_learned_conditions(model)


def test_training_precision_errors() -> None:
    df = learning_table(100)
    with pytest.raises(ParameterError, match="training_precision"):
        get_synthesizer("tvae")(learning_metadata(), training_precision="fp16").fit(df)
    with pytest.raises(ParameterError, match="float32"):
        get_synthesizer("hvaegan")(learning_metadata(), training_precision="bfloat16").fit(df)
    with pytest.raises(ParameterError, match="differential privacy"):
        get_synthesizer("ctgan")(
            learning_metadata(), training_precision="bfloat16", epsilon=5.0
        ).fit(df)


def test_bfloat16_trained_model_saves_and_loads(tmp_path) -> None:
    import clinsynth

    df = learning_table(200)
    model = get_synthesizer("ctgan")(
        learning_metadata(), epochs=2, batch_size=50, training_precision="bfloat16", random_state=0
    ).fit(df)
    model.save(tmp_path / "m")
    loaded = clinsynth.load(tmp_path / "m")
    assert loaded.training_precision == "bfloat16"
    assert loaded.sample(20).shape == (20, 3)


def _close_in_bfloat16(a: torch.Tensor, b: torch.Tensor) -> None:
    """Same direction, norm within 15%: bfloat16 rounding, far below batch-to-batch noise.
    (A bias before batch normalization has a zero gradient: both are rounding noise.)"""
    if float(a.norm()) < 1e-4:
        assert float(b.norm()) < 1e-3
        return
    cos = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
    assert cos > 0.99, cos
    assert float((a - b).norm()) <= 0.15 * float(a.norm())


def test_gan_critic_step_in_bfloat16_is_close_to_float32() -> None:
    """FusedCriticStep with bfloat16 products (CTGAN's and CWGAN-GP's training_precision)."""
    import copy

    from clinsynth.synthesizers.nn import Critic, FusedCriticStep, build_module

    critic = build_module(
        lambda: Critic(40, (64, 32), pac=5, dropout=0.5),
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    ).train()
    other = copy.deepcopy(critic)
    data = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 40, generator=data), torch.rand(100, 40, generator=data)
    results = []
    for net, dtype in ((critic, torch.float32), (other, torch.bfloat16)):
        step = FusedCriticStep(net, matmul_dtype=dtype)
        loss, penalty = step.critic_step(real, fake, torch.Generator().manual_seed(2))
        _, grad = step.generator_grad(fake, torch.Generator().manual_seed(3))
        assert all(p.grad.dtype == torch.float32 for p in net.parameters())
        results.append((loss, penalty, [p.grad.clone() for p in net.parameters()], grad))
    (l32, p32, g32, x32), (l16, p16, g16, x16) = results
    assert float(l16) == pytest.approx(float(l32), rel=0.05, abs=1e-3)
    assert float(p16) == pytest.approx(float(p32), rel=0.05, abs=1e-3)
    for a, b in zip([*g32, x32], [*g16, x16], strict=True):
        _close_in_bfloat16(a, b)


def test_residual_generator_in_bfloat16_is_close_to_float32() -> None:
    import copy

    from clinsynth.synthesizers.nn import ResidualGenerator, build_module

    net = build_module(
        lambda: ResidualGenerator(30, (64, 64), 20),
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )
    low = copy.deepcopy(net)
    low.matmul_dtype = torch.bfloat16
    x = torch.randn(200, 30, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(200, 20, generator=torch.Generator().manual_seed(2))
    outs = []
    for model in (net, low):
        out = model(x)
        assert out.dtype == torch.float32
        (out * weight).sum().backward()
        outs.append(out.detach())
    _close_in_bfloat16(outs[0], outs[1])
    for a, b in zip(net.parameters(), low.parameters(), strict=True):
        _close_in_bfloat16(a.grad, b.grad)


def test_ctgan_bfloat16_runs_the_hand_written_passes(autocast_dtypes) -> None:  # noqa: F811
    """No autocast for CTGAN in bfloat16: its hand-written passes take the dtype."""
    df = learning_table(200)
    model = get_synthesizer("ctgan")(
        learning_metadata(), epochs=1, batch_size=50, training_precision="bfloat16", random_state=0
    ).fit(df)
    assert autocast_dtypes == []
    assert model.generator_.matmul_dtype == torch.float32  # reset after training


@pytest.mark.parametrize("fast", [True, False])
def test_auto_precision_follows_the_hardware(monkeypatch, tmp_path, fast: bool) -> None:
    import clinsynth
    from clinsynth.synthesizers import _deep

    monkeypatch.setattr(_deep, "fast_bfloat16", lambda device: fast)
    df = learning_table(200)
    expected = "bfloat16" if fast else "float32"
    model = get_synthesizer("ctgan")(
        learning_metadata(), epochs=1, batch_size=50, training_precision="auto", random_state=0
    ).fit(df)
    assert model.trained_precision_ == expected
    model.save(tmp_path / "m")
    loaded = clinsynth.load(tmp_path / "m")
    assert (loaded.training_precision, loaded.trained_precision_) == ("auto", expected)
    # Models without bfloat16 training, and differential privacy, stay in float32.
    hvaegan = get_synthesizer("hvaegan")(learning_metadata(), training_precision="auto")
    assert hvaegan._training_precision() == "float32"
    private = get_synthesizer("ctgan")(
        learning_metadata(), training_precision="auto", epsilon=5.0, epochs=1
    )
    assert private._training_precision() == "float32"
    # Explicit choices are kept whatever the hardware.
    for choice in ("float32", "bfloat16"):
        assert (
            get_synthesizer("tvae")(
                learning_metadata(), training_precision=choice
            )._training_precision()
            == choice
        )


def test_defaults_auto_for_ctgan_float32_elsewhere() -> None:
    """CTGAN's default is measured equal in fidelity (docs/BENCHMARKS.md); the others keep
    float32 until measured."""
    assert get_synthesizer("ctgan")(learning_metadata()).training_precision == "auto"
    for name in ("tvae", "cwgan", "hvaegan"):
        kwargs = {"condition_column": "group"} if name == "cwgan" else {}
        model = get_synthesizer(name)(learning_metadata(), **kwargs)
        assert model.training_precision == "float32", name


def test_fast_bfloat16_answers_for_every_device() -> None:
    from clinsynth.synthesizers._deep import fast_bfloat16

    assert isinstance(fast_bfloat16(torch.device("cpu")), bool)
    assert fast_bfloat16(torch.device("meta")) is False
