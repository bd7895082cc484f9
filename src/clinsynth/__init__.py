"""clinsynth: synthetic clinical data with evidence of fidelity and privacy.

>>> from clinsynth import Metadata, GaussianCopulaSynthesizer, load
"""

from clinsynth._version import __version__
from clinsynth.errors import ClinsynthError
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import (
    BaseSynthesizer,
    DPMarginalSynthesizer,
    GaussianCopulaSynthesizer,
    get_synthesizer,
    list_synthesizers,
    load,
)

__all__ = [
    "__version__",
    "ClinsynthError",
    "Metadata",
    "BaseSynthesizer",
    "GaussianCopulaSynthesizer",
    "DPMarginalSynthesizer",
    "get_synthesizer",
    "list_synthesizers",
    "load",
]
