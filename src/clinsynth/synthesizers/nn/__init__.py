"""Torch modules, training steps and the training loop of the deep synthesizers (tensors only,
no pandas)."""

from clinsynth.synthesizers.nn._adversarial import AdversarialTraining, adversarial_step
from clinsynth.synthesizers.nn._critic_step import FusedCriticStep
from clinsynth.synthesizers.nn._engine import (
    TrainingEngine,
    TrainingHistory,
    load_checkpoint,
    save_checkpoint,
)
from clinsynth.synthesizers.nn._layers import (
    ChoiceLoss,
    Critic,
    MaskedLinear,
    Residual,
    ResidualGenerator,
    SpanLayout,
    activate,
    build_module,
    critic_losses,
    gaussian_kl,
    gradient_penalty,
    gumbel_noise,
    init_parameters,
    mlp,
    output_t,
    reconstruction_loss,
    sample_rows_t,
)
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
