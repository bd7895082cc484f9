"""The closed-form gradient penalty against autograd's double backward."""

from __future__ import annotations

import pytest
import torch

from clinsynth.synthesizers.nn import Critic, build_module, gradient_penalty


def _double_backward_penalty(critic, real, fake, generator, weight=10.0):
    """The textbook WGAN-GP: the input gradient from autograd, differentiated again."""
    pac = critic.pac
    packs, dim = real.shape[0] // pac, real.shape[1]
    alpha = torch.rand(packs, 1, 1, generator=generator)
    mixed = alpha * real.reshape(packs, pac, dim) + (1 - alpha) * fake.reshape(packs, pac, dim)
    mixed = mixed.reshape(-1, dim).requires_grad_(True)
    out = critic(mixed, generator)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norm = grad.reshape(packs, pac * dim).norm(2, dim=1)
    return weight * ((norm - 1) ** 2).mean()


def _critic_and_rows(dropout: float) -> tuple[Critic, torch.Tensor, torch.Tensor]:
    """A small PacGAN critic in training mode, and 12 real and 12 fake rows."""
    critic = build_module(
        lambda: Critic(7, (16, 8), pac=2, dropout=dropout),
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )
    critic.train()
    data = torch.Generator().manual_seed(1)
    return critic, torch.randn(12, 7, generator=data), torch.randn(12, 7, generator=data)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_penalty_and_its_gradients_match_double_backward(dropout: float) -> None:
    critic, real, fake = _critic_and_rows(dropout)
    results = []
    for fn in (gradient_penalty, _double_backward_penalty):
        critic.zero_grad(set_to_none=True)
        penalty = fn(critic, real, fake, torch.Generator().manual_seed(2), 10.0)
        penalty.backward()
        grads = [
            torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in critic.parameters()
        ]
        results.append((penalty.detach(), grads))
    (ours, ours_grads), (ref, ref_grads) = results
    assert float(ref) > 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_critic_losses_reuse_the_first_layer_exactly() -> None:
    """critic_losses (the penalty from the main pass's first-layer pre-activations) against
    the critic's plain forward and the penalty that recomputes the interpolates' first layer."""
    from clinsynth.synthesizers.nn import critic_losses

    critic, real, fake = _critic_and_rows(0.5)
    results = []
    for reuse in (True, False):
        g = torch.Generator().manual_seed(2)
        critic.zero_grad(set_to_none=True)
        if reuse:
            loss, penalty = critic_losses(critic, real, fake, g, 10.0)
        else:
            scores = critic(torch.cat([real, fake]), g)
            loss = scores[6:].mean() - scores[:6].mean()
            penalty = gradient_penalty(critic, real, fake, g, 10.0)
        (loss + penalty).backward()
        results.append(
            (loss.detach(), penalty.detach(), [p.grad.clone() for p in critic.parameters()])
        )
    (l1, p1, g1), (l2, p2, g2) = results
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
