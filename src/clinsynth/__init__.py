"""clinsynth: synthetic clinical data with evidence of fidelity and privacy.

>>> from clinsynth import Metadata, GaussianCopulaSynthesizer, load

The public names are imported on first use (PEP 562), so that ``import clinsynth.cli`` (and
``clinsynth --help``) does not pay for pandas and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clinsynth._version import __version__
from clinsynth.errors import ClinsynthError

if TYPE_CHECKING:
    from clinsynth._load import load
    from clinsynth.metadata import Metadata
    from clinsynth.synthesizers import (
        AutoSynthesizer,
        BaseSynthesizer,
        CARTSynthesizer,
        CTGANSynthesizer,
        CWGANGPSynthesizer,
        DPMarginalSynthesizer,
        GaussianCopulaSynthesizer,
        HVAEGANSynthesizer,
        SequentialSynthesizer,
        TabDDPMSynthesizer,
        TVAESynthesizer,
        get_synthesizer,
        list_synthesizers,
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
    "CARTSynthesizer",
    "AutoSynthesizer",
    "SequentialSynthesizer",
    "get_synthesizer",
    "list_synthesizers",
    "load",
    "visualize_latent_space",
]

_LAZY = {"Metadata": "clinsynth.metadata", "load": "clinsynth._load"} | {
    name: "clinsynth.synthesizers" for name in __all__[3:] if name != "load"
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clinsynth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
