"""DP-SGD for any torch network: Poisson batches, per-sample clipping, Gaussian noise.

The deep models train on tensor-index batches, not DataLoaders, so the private step is written
directly on ``torch.func``: ``vmap(grad(loss))`` gives every row's gradient (the loss of one row
may itself contain an input gradient, e.g. a WGAN-GP penalty), each row's gradient over *all*
the networks that read real rows is clipped to ``max_grad_norm`` as one vector, the clipped
gradients are summed, Gaussian noise of standard deviation ``noise_multiplier · max_grad_norm`` is
added and the sum is divided by the expected batch size ``q·n`` (Abadi et al. 2016). Batches are
Poisson samples (each row independently with probability ``q``), the sampling the RDP analysis of
:mod:`clinsynth.privacy._accountant` assumes. Rows are processed in chunks so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from clinsynth.errors import ParameterError, PrivacyError

__all__ = ["DPSGD", "critic_row_loss", "functional", "poisson_batch"]

#: A per-row loss: ``loss(params, *row_tensors) -> scalar``; each row tensor has a batch of 1.
RowLoss = Callable[..., torch.Tensor]


def poisson_batch(
    num_rows: int,
    sample_rate: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each row is in with probability ``sample_rate``.

    >>> g = torch.Generator().manual_seed(0)
    >>> idx = poisson_batch(1000, 0.1, g)
    >>> 60 < len(idx) < 140
    True
    """
    keep = torch.rand(num_rows, generator=generator, device=generator.device) < sample_rate
    return torch.nonzero(keep, as_tuple=False).flatten().to(device)


def functional(
    module: nn.Module, params: Mapping[str, torch.Tensor], *args: torch.Tensor
) -> torch.Tensor:
    """Run ``module`` with the given parameters (its buffers unchanged): ``torch.func`` style.

    >>> net = nn.Linear(3, 1)
    >>> p = {k: v.detach() for k, v in net.named_parameters()}
    >>> functional(net, p, torch.ones(2, 3)).shape
    torch.Size([2, 1])
    """
    return functional_call(module, dict(params), args)


def critic_row_loss(
    critic: nn.Module,
    params: Mapping[str, torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor,
    *,
    penalty_weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One row's WGAN-GP critic loss ``D(fake) - D(real) + λ (‖∇D(x̂)‖ - 1)²``.

    ``x̂ = α·real + (1-α)·fake``; the input gradient is taken with ``torch.func.grad`` so the
    loss can itself be differentiated per row under ``vmap`` (the DP-SGD step). ``generator``
    is handed to the critic (its dropout masks).

    >>> critic = nn.Linear(3, 1)
    >>> p = {k: v.detach() for k, v in critic.named_parameters()}
    >>> critic_row_loss(critic, p, torch.ones(1, 3), torch.zeros(1, 3), torch.full((1, 1), 0.5),
    ...                 generator=None).shape
    torch.Size([])
    """

    def score(x: torch.Tensor) -> torch.Tensor:
        args = (x,) if generator is None else (x, generator)
        return functional(critic, params, *args).sum()

    mixed = alpha * real + (1 - alpha) * fake
    penalty = (grad(score)(mixed).norm() - 1) ** 2
    return score(fake) - score(real) + penalty_weight * penalty


class DPSGD:
    """Private gradients for the parameters of one or several networks.

    Parameters
    ----------
    modules : Module or dict of str to Module
        The networks whose training reads real rows (a GAN's discriminator; a VAE's encoder and
        decoder). Their per-row gradients are clipped together, as one vector.
    noise_multiplier : float
        Noise standard deviation relative to ``max_grad_norm`` (``σ``; from
        :func:`~clinsynth.privacy.calibrate_noise_multiplier`).
    max_grad_norm : float
        Clipping norm ``C`` of each row's gradient.
    sample_rate : float
        Poisson sampling rate ``q`` of the batches.
    num_rows : int
        Training rows ``n``; the noisy sum is divided by ``q·n``.
    generator : torch.Generator
        Source of the noise (a local generator: the same seed gives the same model).
    chunk_size : int
        Rows whose gradients are materialized at once.

    Examples
    --------
    >>> net = nn.Linear(4, 1)
    >>> dp = DPSGD(net, noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.1, num_rows=100,
    ...            generator=torch.Generator().manual_seed(0))
    >>> def row_loss(params, x, y):
    ...     return ((functional(net, params, x) - y) ** 2).sum()
    >>> idx = poisson_batch(100, 0.1, torch.Generator().manual_seed(1))
    >>> x, y = torch.randn(100, 4), torch.randn(100, 1)
    >>> stats = dp.step(row_loss, x[idx], y[idx])  # writes .grad; call optimizer.step() next
    >>> net.weight.grad.shape, 0.0 <= stats["clipped_share"] <= 1.0
    (torch.Size([1, 4]), True)
    """

    def __init__(
        self,
        modules: nn.Module | Mapping[str, nn.Module],
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        sample_rate: float,
        num_rows: int,
        generator: torch.Generator,
        chunk_size: int = 256,
    ) -> None:
        if not (max_grad_norm > 0):
            raise ParameterError(f"'max_grad_norm' must be > 0. Got {max_grad_norm!r}.")
        if noise_multiplier < 0:
            raise ParameterError(f"'noise_multiplier' must be >= 0. Got {noise_multiplier!r}.")
        self.single = isinstance(modules, nn.Module)
        self.modules = {"": modules} if self.single else dict(modules)
        for name, module in self.modules.items():
            _check_supported(module, name)
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.sample_rate = float(sample_rate)
        self.num_rows = int(num_rows)
        self.generator = generator
        self.chunk_size = int(chunk_size)
        self.steps = 0

    # ------------------------------------------------------------------ parameters
    def _params(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            name: {k: p.detach() for k, p in m.named_parameters() if p.requires_grad}
            for name, m in self.modules.items()
        }

    def _live(self) -> dict[str, dict[str, nn.Parameter]]:
        return {
            name: {k: p for k, p in m.named_parameters() if p.requires_grad}
            for name, m in self.modules.items()
        }

    # ------------------------------------------------------------------ the private step
    def step(self, row_loss: RowLoss, *batch: torch.Tensor) -> dict[str, float]:
        """Write the private gradient of ``row_loss`` over ``batch`` into each ``.grad``.

        ``row_loss(params, *rows)`` gets the parameters (a dict of tensors, or a dict per
        network name when several networks were given) and one row of each batch tensor (with a
        batch dimension of 1), and returns that row's scalar loss. Randomness the loss needs
        (noise, fake rows, interpolation weights) should come in as batch tensors drawn from a
        local generator. Returns the share of rows whose gradient was clipped and the mean
        per-row gradient norm (for monitoring; they are not released).
        """
        params = self._params()
        if self.single:

            def one(p: Any, *rows: torch.Tensor) -> torch.Tensor:
                return row_loss(p[""], *(r.unsqueeze(0) for r in rows))
        else:

            def one(p: Any, *rows: torch.Tensor) -> torch.Tensor:
                return row_loss(p, *(r.unsqueeze(0) for r in rows))

        per_row = vmap(grad(one), in_dims=(None, *([0] * len(batch))), randomness="different")
        total = {
            name: {k: torch.zeros_like(v) for k, v in group.items()}
            for name, group in params.items()
        }
        n = len(batch[0]) if batch else 0
        clipped, norms = 0, 0.0
        for start in range(0, n, self.chunk_size):
            chunk = [b[start : start + self.chunk_size] for b in batch]
            grads = per_row(params, *chunk)
            # A row whose gradient is not finite contributes nothing (still within the bound).
            grads = {
                name: {
                    k: torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
                    for k, g in group.items()
                }
                for name, group in grads.items()
            }
            flat = [g for group in grads.values() for g in group.values()]
            norm = torch.sqrt(sum(g.reshape(len(g), -1).pow(2).sum(1) for g in flat))
            factor = torch.clamp(self.max_grad_norm / (norm + 1e-6), max=1.0)
            clipped += int((factor < 1.0).sum())
            norms += float(norm.sum())
            for name, group in grads.items():
                for k, g in group.items():
                    total[name][k] += torch.einsum("b,b...->...", factor, g)
        self._write(total)
        self.steps += 1
        return {"clipped_share": clipped / max(n, 1), "mean_grad_norm": norms / max(n, 1)}

    def clip_and_noise(self, per_sample_grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The private mean of per-row gradients given as tensors of shape ``(rows, ...)``.

        Each row's gradient (over all tensors together) is clipped to ``max_grad_norm``; the
        sum gets Gaussian noise and is divided by the expected batch size.

        >>> dp = DPSGD(nn.Linear(2, 1), noise_multiplier=0.0, max_grad_norm=1.0, sample_rate=1.0,
        ...            num_rows=2, generator=torch.Generator())
        >>> grads = dp.clip_and_noise([torch.tensor([[3.0, 4.0], [0.3, 0.4]])])
        >>> [round(v, 4) for v in grads[0].tolist()]
        [0.45, 0.6]
        """
        flat = [g.reshape(len(g), int(g[0].numel()) if len(g) else 0) for g in per_sample_grads]
        norm = torch.sqrt(sum(f.pow(2).sum(1) for f in flat))
        factor = torch.clamp(self.max_grad_norm / (norm + 1e-6), max=1.0)
        return [self._noisy(torch.einsum("b,b...->...", factor, g)) for g in per_sample_grads]

    def _noisy(self, summed: torch.Tensor) -> torch.Tensor:
        std = self.noise_multiplier * self.max_grad_norm
        noise = torch.randn(
            summed.shape, generator=self.generator, device=self.generator.device
        ).to(summed.device)
        return (summed + std * noise) / (self.sample_rate * self.num_rows)

    def _write(self, total: dict[str, dict[str, torch.Tensor]]) -> None:
        live = self._live()
        for name, group in total.items():
            for k, summed in group.items():
                live[name][k].grad = self._noisy(summed)


def _check_supported(module: nn.Module, name: str) -> None:
    """Batch normalization mixes rows: a per-row gradient (and its clipping) is undefined."""
    for sub_name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            where = ".".join(p for p in (name, sub_name) if p)
            raise PrivacyError(
                f"Layer '{where}' is a BatchNorm: it mixes rows, so per-row gradients cannot be "
                "clipped for differential privacy. Use LayerNorm/GroupNorm or no normalization "
                "in the networks that read real rows."
            )
