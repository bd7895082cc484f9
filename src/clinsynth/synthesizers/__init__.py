"""Synthesizers: one contract (fit, sample, save, load), a registry, one module per model."""

from clinsynth.synthesizers._auto import AutoSynthesizer
from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._conditions import parse_condition_strings
from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer
from clinsynth.synthesizers._ctgan import CTGANSynthesizer
from clinsynth.synthesizers._cwgan import CWGANGPSynthesizer
from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer
from clinsynth.synthesizers._hvaegan import HVAEGANSynthesizer
from clinsynth.synthesizers._latent import visualize_latent_space
from clinsynth.synthesizers._registry import get_synthesizer, list_synthesizers, register
from clinsynth.synthesizers._sequential import SequentialSynthesizer
from clinsynth.synthesizers._tabddpm import TabDDPMSynthesizer
from clinsynth.synthesizers._tvae import TVAESynthesizer

__all__ = [
    "BaseSynthesizer",
    "GaussianCopulaSynthesizer",
    "DPMarginalSynthesizer",
    "TVAESynthesizer",
    "CTGANSynthesizer",
    "CWGANGPSynthesizer",
    "HVAEGANSynthesizer",
    "TabDDPMSynthesizer",
    "AutoSynthesizer",
    "SequentialSynthesizer",
    "get_synthesizer",
    "list_synthesizers",
    "parse_condition_strings",
    "register",
    "load",
    "visualize_latent_space",
]


def load(filepath, *, device: str = "cpu", custom_constraints=None) -> BaseSynthesizer:  # noqa: ANN001
    """Load any saved synthesizer (the bundle names its model); a multi-table bundle loads as a
    :class:`~clinsynth.multitable.HierarchicalSynthesizer`.

    >>> import clinsynth
    >>> # model = clinsynth.load("model_dir")
    """
    from clinsynth.multitable._persist import bundle_kind

    if bundle_kind(filepath) == "multi_table":
        from clinsynth.multitable import HierarchicalSynthesizer

        return HierarchicalSynthesizer.load(filepath)
    return BaseSynthesizer.load(filepath, device=device, custom_constraints=custom_constraints)
