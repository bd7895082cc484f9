"""clinsynth: synthetic clinical data with evidence of fidelity and privacy."""

from clinsynth._version import __version__
from clinsynth.errors import ClinsynthError
from clinsynth.metadata import Metadata

__all__ = ["__version__", "ClinsynthError", "Metadata"]
