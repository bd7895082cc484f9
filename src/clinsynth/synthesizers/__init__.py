"""Synthesizers: one contract (fit, sample, save, load), a registry, one module per model."""

from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer
from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer
from clinsynth.synthesizers._registry import get_synthesizer, list_synthesizers, register

__all__ = [
    "BaseSynthesizer",
    "GaussianCopulaSynthesizer",
    "DPMarginalSynthesizer",
    "get_synthesizer",
    "list_synthesizers",
    "register",
    "load",
]


def load(filepath, *, device: str = "cpu", custom_constraints=None) -> BaseSynthesizer:  # noqa: ANN001
    """Load any saved synthesizer (the bundle names its model).

    >>> import clinsynth
    >>> # model = clinsynth.load("model_dir")
    """
    return BaseSynthesizer.load(filepath, device=device, custom_constraints=custom_constraints)
