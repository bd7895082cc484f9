"""The critic of the GANs, the WGAN gradient penalty in closed form and the critic's losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Critic(nn.Module):
    """Discriminator/critic over packs of ``pac`` rows (PacGAN), LeakyReLU and dropout.

    Dropout draws its masks from the generator passed to ``forward`` (``torch.nn.Dropout`` would
    use the global random state, which breaks reproducibility).
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], pac: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pac, self.in_dim, self.dropout = pac, in_dim, dropout
        dims = [in_dim * pac, *hidden]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.out = nn.Linear(dims[-1], 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = x.reshape(-1, self.pac * self.in_dim)
        if not self.hidden:
            return self.out(h)
        return self.head(self.hidden[0](h), generator)

    def head(self, pre: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The critic from its first layer's pre-activation ``pre`` on."""
        keep = 1.0 - self.dropout
        h = pre
        for i, layer in enumerate(self.hidden):
            h = F.leaky_relu(layer(h) if i else pre, 0.2)
            if self.training and self.dropout > 0:
                mask = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
                h = h * (mask < keep).to(h.dtype) / keep
        return self.out(h)


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    weight: float = 10.0,
    first: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad D(x_hat)|| - 1)^2]`` on interpolates of each pack.

    The critic is piecewise linear in its input (LeakyReLU, dropout, linear layers), so its
    input gradient is a product of matrices: ``w_out`` scaled by each layer's slopes (1 or
    0.2, times the dropout mask) and multiplied back through each weight. The slopes and masks
    come from a forward pass without a graph; the product is then built with autograd on the
    weights only. This is the penalty autograd's double backward computes (the same masks
    from the same random draws), without differentiating through the forward pass, whose
    contribution is zero almost everywhere.

    ``first``: the first layer's pre-activations of the real and the fake packs, when the
    caller has them. The first layer is affine, so an interpolate's pre-activation is the same
    interpolate of those: the largest product of the forward pass is not computed again.
    """
    pac = critic.pac
    packs, dim = real.shape[0] // pac, real.shape[1]
    alpha = torch.rand(packs, 1, 1, generator=generator, device=real.device, dtype=real.dtype)
    scales = []
    keep = 1.0 - critic.dropout
    with torch.no_grad():
        if first is None or not critic.hidden:
            mixed = alpha * real.reshape(packs, pac, dim) + (1 - alpha) * fake.reshape(
                packs, pac, dim
            )
            h = mixed.reshape(packs, pac * dim)
            pre = critic.hidden[0](h) if critic.hidden else h
        else:
            a = alpha.reshape(packs, 1).to(first[0].dtype)
            pre = torch.lerp(first[1], first[0], a)  # a * real + (1 - a) * fake
        for i, layer in enumerate(critic.hidden):
            if i:
                pre = layer(h)
            scale = torch.where(pre > 0, 1.0, 0.2).to(pre.dtype)
            h = F.leaky_relu(pre, 0.2)
            if critic.training and critic.dropout > 0:
                u = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
                mask = (u < keep).to(h.dtype) / keep
                h = h * mask
                scale = scale * mask
            scales.append(scale)
    grad = critic.out.weight.expand(packs, -1)
    for layer, scale in zip(reversed(critic.hidden), reversed(scales), strict=True):
        grad = (grad * scale) @ layer.weight
    norm = grad.norm(2, dim=1)
    return weight * ((norm - 1) ** 2).mean()


def critic_losses(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    penalty_weight: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[D(fake)] - E[D(real)], gradient penalty)`` for one critic update.

    Real and fake rows go through the critic in one pass: one large matrix product (and one
    weight gradient) instead of two small ones. The penalty reuses that pass's first-layer
    pre-activations for its interpolates (see :func:`gradient_penalty`).
    """
    packs = real.shape[0] // critic.pac
    if not critic.hidden:
        scores = critic(torch.cat([real, fake], dim=0), generator)
        first = None
    else:
        x = torch.cat([real, fake], dim=0).reshape(-1, critic.pac * critic.in_dim)
        pre = critic.hidden[0](x)
        scores = critic.head(pre, generator)
        first = (pre[:packs].detach(), pre[packs:].detach())
    loss = scores[packs:].mean() - scores[:packs].mean()
    return loss, gradient_penalty(critic, real, fake, generator, penalty_weight, first)
