"""The training step of the conditional WGAN-GPs (CTGAN, CWGAN-GP), as a part the model owns.

:func:`adversarial_step` is one step: critic updates with the gradient penalty, then a generator
update. :class:`AdversarialTraining` holds what a model trains it with (networks, optimizers,
the model's batch functions) and the critic's update by hand (:class:`FusedCriticStep`, which
with the residual generator's training pass also applies ``training_precision``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from clinsynth.synthesizers.nn._critic import critic_losses
from clinsynth.synthesizers.nn._critic_step import FusedCriticStep


class AdversarialTraining:
    """What a conditional GAN trains with, built in the model's ``_prepare_training`` and
    released (:meth:`release`) with the training rows.

    Parameters
    ----------
    generator_net, critic : Module
        The generator (a ``ResidualGenerator``: its ``matmul_dtype`` is set for the fused
        passes) and the critic.
    opt_g, opt_d : Optimizer
        Their optimizers.
    critic_batch, fake_rows, extra_loss
        The model's batch functions (see :func:`adversarial_step`).
    critic_steps : int
        Critic updates per step.
    penalty_weight : float
        Weight of the gradient penalty.
    matmul_dtype : torch.dtype
        Dtype of the hand-written passes' matrix products (``training_precision``).
    """

    def __init__(
        self,
        generator_net: torch.nn.Module,
        critic: torch.nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        *,
        critic_batch: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, Any]],
        fake_rows: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        extra_loss: Callable[[torch.Tensor, Any], torch.Tensor | None] | None = None,
        critic_steps: int = 1,
        penalty_weight: float = 10.0,
        matmul_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.generator_net, self.critic = generator_net, critic
        self.opt_g, self.opt_d = opt_g, opt_d
        self.critic_batch, self.fake_rows, self.extra_loss = critic_batch, fake_rows, extra_loss
        self.critic_steps = int(critic_steps)
        self.penalty_weight = float(penalty_weight)
        self.fused: FusedCriticStep | None = (
            FusedCriticStep(critic, self.penalty_weight, matmul_dtype=matmul_dtype)
            if FusedCriticStep.supports(critic)
            else None
        )
        if self.fused is not None:  # bfloat16 products in the hand-written passes
            generator_net.matmul_dtype = matmul_dtype

    @property
    def applies_precision(self) -> bool:
        """Whether the hand-written passes apply ``training_precision`` (no autocast)."""
        return self.fused is not None

    def step(self, idx: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One training step on the epoch's batch ``idx``."""
        return adversarial_step(
            idx,
            critic=self.critic,
            opt_d=self.opt_d,
            opt_g=self.opt_g,
            steps=self.critic_steps,
            generator=generator,
            critic_batch=self.critic_batch,
            fake_rows=self.fake_rows,
            extra_loss=self.extra_loss,
            penalty_weight=self.penalty_weight,
            fused=self.fused,
        )

    def release(self) -> None:
        """Back to float32 sampling passes; drop the fused step's buffers (training rows)."""
        self.generator_net.matmul_dtype = torch.float32
        self.generator_net._cast = {}
        self.fused = None


def adversarial_step(
    idx: torch.Tensor,
    *,
    critic: torch.nn.Module,
    opt_d: torch.optim.Optimizer,
    opt_g: torch.optim.Optimizer,
    steps: int,
    generator: torch.Generator,
    critic_batch: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, Any]],
    fake_rows: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    extra_loss: Callable[[torch.Tensor, Any], torch.Tensor | None] | None = None,
    penalty_weight: float = 10.0,
    fused: FusedCriticStep | None = None,
) -> dict[str, torch.Tensor]:
    """One training step of a conditional GAN (CTGAN, CWGAN-GP): ``steps`` critic updates
    with the WGAN gradient penalty, then one generator update.

    ``critic_batch(idx, step)`` gives real rows with their condition columns, the condition of
    the fake rows and a context for ``extra_loss(raw, context)`` (the generator's loss beyond
    the critic's, e.g. CTGAN's cross-entropy of the conditioned column); ``fake_rows(cond)``
    gives generated rows with the condition columns and the raw generator output.

    The fake rows of the last critic update are generated with gradients and reused by the
    generator update (as in the DCGAN reference implementation): the generator learns from
    the updated critic on those rows, and one generator forward pass per step is saved.

    ``fused``: the critic's gradients computed by hand (:class:`FusedCriticStep`, same
    numbers); not under autocast, where the autograd path runs.
    """
    if fused is not None and torch.is_autocast_enabled(generator.device.type):
        fused = None
    for step in range(steps):
        real, cond, context = critic_batch(idx, step)
        with torch.set_grad_enabled(step == steps - 1):
            fake, raw = fake_rows(cond)
        if fused is not None:
            loss_d, penalty = fused.critic_step(real, fake.detach(), generator)
        else:
            loss_d, penalty = critic_losses(critic, real, fake.detach(), generator, penalty_weight)
            opt_d.zero_grad(set_to_none=True)
            (loss_d + penalty).backward()
        opt_d.step()
    extra = extra_loss(raw, context) if extra_loss is not None else None
    opt_g.zero_grad(set_to_none=True)
    if fused is not None:
        loss_g, grad = fused.generator_grad(fake, generator)
        if extra is not None:
            torch.autograd.backward((fake, extra), (grad, torch.ones_like(extra)))
            loss_g = loss_g + extra.detach()
        else:
            fake.backward(grad)
    else:
        critic.requires_grad_(False)  # no weight gradients for the critic in this step
        loss_g = -critic(fake, generator).mean()
        critic.requires_grad_(True)
        if extra is not None:
            loss_g = loss_g + extra
        loss_g.backward()
    opt_g.step()
    return {"generator_loss": loss_g.detach(), "discriminator_loss": loss_d.detach()}
