"""clinsynth: synthetic clinical data with evidence of fidelity and privacy.

>>> from clinsynth import Metadata, GaussianCopulaSynthesizer, load
"""

from clinsynth._version import __version__
from clinsynth.errors import ClinsynthError
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import (
    AutoSynthesizer,
    BaseSynthesizer,
    CTGANSynthesizer,
    CWGANGPSynthesizer,
    DPMarginalSynthesizer,
    GaussianCopulaSynthesizer,
    HVAEGANSynthesizer,
    TabDDPMSynthesizer,
    TVAESynthesizer,
    get_synthesizer,
    list_synthesizers,
    load,
    visualize_latent_space,
)

__all__ = [
    "__version__",
    "ClinsynthError",
    "Metadata",
    "BaseSynthesizer",
    "GaussianCopulaSynthesizer",
    "DPMarginalSynthesizer",
    "TVAESynthesizer",
    "CTGANSynthesizer",
    "CWGANGPSynthesizer",
    "HVAEGANSynthesizer",
    "TabDDPMSynthesizer",
    "AutoSynthesizer",
    "get_synthesizer",
    "list_synthesizers",
    "load",
    "visualize_latent_space",
]
