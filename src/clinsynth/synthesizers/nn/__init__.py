"""Torch modules, training steps and the training loop of the deep synthesizers (tensors only,
no pandas)."""

from clinsynth.synthesizers.nn._activations import activate, gumbel_noise, output_t, sample_rows_t
from clinsynth.synthesizers.nn._adversarial import AdversarialTraining, adversarial_step
from clinsynth.synthesizers.nn._critic import Critic, critic_losses, gradient_penalty
from clinsynth.synthesizers.nn._critic_step import FusedCriticStep
from clinsynth.synthesizers.nn._engine import (
    TrainingEngine,
    TrainingHistory,
    load_checkpoint,
    save_checkpoint,
)
from clinsynth.synthesizers.nn._layers import (
    MaskedLinear,
    Residual,
    ResidualGenerator,
    build_module,
    init_parameters,
    mlp,
)
from clinsynth.synthesizers.nn._losses import ChoiceLoss, gaussian_kl, reconstruction_loss
from clinsynth.synthesizers.nn._optim import adam
from clinsynth.synthesizers.nn._spans import SpanLayout
from clinsynth.synthesizers.nn._vae_step import FusedVAEStep

__all__ = [
    "AdversarialTraining",
    "adversarial_step",
    "ChoiceLoss",
    "Critic",
    "FusedCriticStep",
    "FusedVAEStep",
    "critic_losses",
    "MaskedLinear",
    "Residual",
    "ResidualGenerator",
    "SpanLayout",
    "TrainingEngine",
    "TrainingHistory",
    "activate",
    "adam",
    "build_module",
    "gaussian_kl",
    "gradient_penalty",
    "gumbel_noise",
    "init_parameters",
    "load_checkpoint",
    "mlp",
    "reconstruction_loss",
    "output_t",
    "sample_rows_t",
    "save_checkpoint",
]
