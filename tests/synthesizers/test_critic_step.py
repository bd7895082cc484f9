"""The hand-written GAN pieces against autograd: the critic update and generator gradient
(FusedCriticStep), the residual generator's training pass and the direct Adam step."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from clinsynth import Metadata
from clinsynth.synthesizers import CTGANSynthesizer
from clinsynth.synthesizers.nn import (
    Critic,
    FusedCriticStep,
    ResidualGenerator,
    build_module,
    critic_losses,
)
from clinsynth.synthesizers.nn._optim import _FusedAdam, adam

CPU = torch.device("cpu")


def _critic(hidden: tuple[int, ...], pac: int, dropout: float) -> Critic:
    critic = build_module(
        lambda: Critic(9, hidden, pac=pac, dropout=dropout), torch.Generator().manual_seed(0), CPU
    )
    return critic.train()


def _rows(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 9, generator=g), torch.randn(n, 9, generator=g)


@pytest.mark.parametrize(
    ("hidden", "pac", "dropout"),
    [((16, 8), 2, 0.5), ((32,), 1, 0.0), ((16, 12, 8), 3, 0.25)],
)
def test_critic_step_matches_autograd(hidden: tuple[int, ...], pac: int, dropout: float) -> None:
    ref = _critic(hidden, pac, dropout)
    ours = copy.deepcopy(ref)
    real, fake = _rows(12 * pac)
    loss, penalty = critic_losses(ref, real, fake, torch.Generator().manual_seed(2))
    (loss + penalty).backward()
    fused = FusedCriticStep(ours)
    got_loss, got_penalty = fused.critic_step(real, fake, torch.Generator().manual_seed(2))
    assert float(penalty.detach()) > 0
    torch.testing.assert_close(got_loss, loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_penalty, penalty.detach(), rtol=1e-5, atol=1e-6)
    for (name, want), got in zip(ref.named_parameters(), ours.parameters(), strict=True):
        expected = torch.zeros_like(want) if want.grad is None else want.grad
        torch.testing.assert_close(got.grad, expected, rtol=1e-4, atol=1e-6, msg=name)
    # A second step reuses the buffers and overwrites (does not accumulate) the gradients.
    ref.zero_grad(set_to_none=True)
    loss, penalty = critic_losses(ref, real, fake, torch.Generator().manual_seed(3))
    (loss + penalty).backward()
    fused.critic_step(real, fake, torch.Generator().manual_seed(3))
    for want, got in zip(ref.parameters(), ours.parameters(), strict=True):
        expected = torch.zeros_like(want) if want.grad is None else want.grad
        torch.testing.assert_close(got.grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_generator_gradient_matches_autograd(dropout: float) -> None:
    critic = _critic((16, 8), 2, dropout)
    _, fake = _rows(24)
    fake = fake.requires_grad_(True)
    critic.requires_grad_(False)
    loss = -critic(fake, torch.Generator().manual_seed(4)).mean()
    loss.backward()
    got_loss, grad = FusedCriticStep(critic).generator_grad(fake, torch.Generator().manual_seed(4))
    torch.testing.assert_close(got_loss, loss.detach())
    torch.testing.assert_close(grad, fake.grad, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in critic.parameters())


def test_fused_critic_needs_hidden_layers() -> None:
    assert not FusedCriticStep.supports(_critic((), 1, 0.0))
    with pytest.raises(ValueError, match="hidden"):
        FusedCriticStep(_critic((), 1, 0.0))


@pytest.mark.parametrize("hidden", [(16, 16), (8,), (12, 8, 4)])
def test_residual_generator_training_pass_matches_the_modules(hidden: tuple[int, ...]) -> None:
    ours = build_module(
        lambda: ResidualGenerator(11, hidden, 7), torch.Generator().manual_seed(0), CPU
    )
    ref = copy.deepcopy(ours)
    x = torch.randn(40, 11, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(40, 7, generator=torch.Generator().manual_seed(2))
    assert ours._fusable(x)
    got = ours(x)
    want = ref.out(ref.blocks(x))  # the modules, concatenations and autograd
    torch.testing.assert_close(got, want)
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    for (name, a), b in zip(ref.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)
    for (name, a), b in zip(ref.named_buffers(), ours.buffers(), strict=True):
        torch.testing.assert_close(b, a, msg=name)  # running statistics and batch count
    # Inference and evaluation keep the module path.
    assert not ours.eval()._fusable(x)
    with torch.no_grad():
        assert not ours.train()._fusable(x)


def test_direct_adam_step_matches_torch_adam() -> None:
    torch.manual_seed(0)
    ref_params = [torch.nn.Parameter(torch.randn(20, 6)), torch.nn.Parameter(torch.randn(6))]
    params = [torch.nn.Parameter(p.detach().clone()) for p in ref_params]
    ref = torch.optim.Adam(ref_params, lr=1e-3, betas=(0.5, 0.9), weight_decay=1e-6, fused=True)
    opt = adam(params, 1e-3, 1e-6, CPU, betas=(0.5, 0.9))
    assert isinstance(opt, _FusedAdam)
    for step in range(12):
        grads = [torch.randn_like(p) for p in ref_params]
        for p, q, g in zip(ref_params, params, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        ref.step()
        opt.step()
        if step == 0:
            assert opt._lists is not None  # later steps take the direct path
        if step == 5:  # resume from a checkpoint: new state tensors
            opt.load_state_dict(copy.deepcopy(opt.state_dict()))
            assert opt._lists is None
    for p, q in zip(ref_params, params, strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0)
    assert float(opt.state[params[0]]["step"]) == 12
    # A missing gradient falls back to torch's step (which skips that parameter).
    params[1].grad = None
    before = params[1].detach().clone()
    opt.step()
    torch.testing.assert_close(params[1].detach(), before)


def test_ctgan_fused_training_equals_the_autograd_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CTGAN fits, the hand-written steps against autograd's: the same weights.

    Both paths run the same float32 operations in a different order, so every parameter that
    has a gradient agrees to a few float32 roundings per step (``rtol`` about 1000 float32 eps);
    ``atol`` is a twentieth of the learning rate, so one Adam step taken in a wrong direction
    (a step moves a weight by about ``lr``) fails the test. One kind of parameter is the
    exception: the bias of a linear layer followed by batch normalization in training mode has
    a gradient of exactly zero in exact arithmetic (the normalization removes any shift), so
    what either path computes for it is rounding noise, which Adam rescales into steps of about
    ``lr``; that bias (and the running mean that includes it) can drift apart by up to an Adam
    step per training step on either path, and only that is asserted for them. The unit tests
    above compare their gradients directly.
    """
    rng = np.random.default_rng(0)
    n, batch_size, epochs, lr = 200, 50, 3, 2e-4
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + rng.normal(scale=0.3, size=n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    metadata = Metadata.detect_from_dataframe(df)
    kwargs = {
        "epochs": epochs,
        "batch_size": batch_size,
        "pac": 5,
        "random_state": 0,
        "training_precision": "float32",
        "generator_lr": lr,
        "discriminator_lr": lr,
    }
    fused = CTGANSynthesizer(metadata, **kwargs).fit(df)
    monkeypatch.setattr(FusedCriticStep, "supports", staticmethod(lambda critic: False))
    monkeypatch.setattr(ResidualGenerator, "_fusable", lambda self, x: False)
    plain = CTGANSynthesizer(metadata, **kwargs).fit(df)
    steps = epochs * -(-n // batch_size)
    # Adam's step with CTGAN's betas (0.5, 0.9) is at most about 1.6 lr; two paths drift apart.
    noise_bound = 2 * 1.6 * lr * steps
    noisy = 0
    for name in ("generator", "discriminator"):
        got = getattr(fused, f"{name}_").state_dict()
        for key, want in getattr(plain, f"{name}_").state_dict().items():
            if name == "generator" and key.endswith((".fc.bias", ".bn.running_mean")):
                noisy += 1
                torch.testing.assert_close(got[key], want, rtol=0, atol=noise_bound, msg=key)
            else:
                torch.testing.assert_close(got[key], want, rtol=1e-4, atol=lr / 20, msg=key)
    assert noisy == 2 * len(fused.generator_.blocks)
    assert fused._gan_ is None  # released with the training rows


def test_bias_before_batch_norm_has_no_gradient() -> None:
    """Why the comparison above exempts the blocks' linear biases: their gradient is zero up to
    float rounding, on the modules' path too."""
    net = build_module(
        lambda: ResidualGenerator(11, (16, 8), 7), torch.Generator().manual_seed(0), CPU
    )
    x = torch.randn(40, 11, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(40, 7, generator=torch.Generator().manual_seed(2))
    (net.out(net.blocks(x)) * weight).sum().backward()
    for block in net.blocks:
        scale = float(block.fc.weight.grad.abs().max())
        assert scale > 1e-3
        assert float(block.fc.bias.grad.abs().max()) < 1e-5 * scale


def test_gumbel_activate_matches_autograd() -> None:
    """The Gumbel-softmax activation's forward and backward against autograd's operations."""
    from types import SimpleNamespace as S

    from clinsynth.synthesizers.nn import SpanLayout, activate
    from clinsynth.synthesizers.nn._layers import _activate

    spans = [
        S(dim=1, activation="tanh", role="value"),
        S(dim=3, activation="softmax", role="category"),
        S(dim=1, activation="linear", role="value"),
        S(dim=2, activation="softmax", role="null"),
        S(dim=3, activation="softmax", role="category"),
        S(dim=5, activation="softmax", role="category"),
    ]
    layout = SpanLayout(spans, level_major=True)
    raw = torch.randn(30, layout.dim, generator=torch.Generator().manual_seed(0)) * 4
    cond = torch.rand(30, 4, generator=torch.Generator().manual_seed(1))
    ours_raw, ref_raw = raw.clone().requires_grad_(True), raw.clone().requires_grad_(True)
    got = activate(
        ours_raw, layout, tau=0.2, generator=torch.Generator().manual_seed(2), append=cond
    )
    want = torch.cat(
        [_activate(ref_raw, layout, tau=0.2, generator=torch.Generator().manual_seed(2)), cond], 1
    )
    torch.testing.assert_close(got, want)
    assert bool((got[:, layout.n_scalar : layout.dim] == 0).any())  # tiny levels flushed
    weight = torch.randn(got.shape, generator=torch.Generator().manual_seed(3))
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    torch.testing.assert_close(ours_raw.grad, ref_raw.grad, rtol=1e-5, atol=1e-5)
