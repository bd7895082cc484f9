"""Synthesizers: one contract (fit, sample, save, load), a registry, one module per model.

``clinsynth.load`` (any bundle, one table or a schema) lives above this package and
``clinsynth.multitable``, in ``clinsynth._load``.
"""

from clinsynth.synthesizers._auto import AutoSynthesizer
from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._cart import CARTSynthesizer
from clinsynth.synthesizers._condition_parse import parse_condition_strings
from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer
from clinsynth.synthesizers._ctgan import CTGANSynthesizer
from clinsynth.synthesizers._cwgan import CWGANGPSynthesizer
from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer
from clinsynth.synthesizers._hvaegan import HVAEGANSynthesizer
from clinsynth.synthesizers._latent import visualize_latent_space
from clinsynth.synthesizers._registry import get_synthesizer, list_synthesizers, register
from clinsynth.synthesizers._sequence_data import check_sequences
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
    "CARTSynthesizer",
    "AutoSynthesizer",
    "SequentialSynthesizer",
    "check_sequences",
    "get_synthesizer",
    "list_synthesizers",
    "parse_condition_strings",
    "register",
    "visualize_latent_space",
]
