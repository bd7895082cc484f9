"""``clinsynth.load``: any saved model, one table or a whole schema.

The bundle is read and checked once (``clinsynth.io._bundle.load_bundle``, which also says its
kind); the model is then built by the class of that kind.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.multitable import HierarchicalSynthesizer
    from clinsynth.synthesizers import BaseSynthesizer


def load(
    filepath: str | os.PathLike,
    *,
    device: str = "cpu",
    custom_constraints: dict[str, Any] | None = None,
) -> BaseSynthesizer | HierarchicalSynthesizer:
    """Load any saved synthesizer (the bundle names its model); a multi-table bundle loads as a
    :class:`~clinsynth.multitable.HierarchicalSynthesizer`.

    ``custom_constraints`` gives back the functions of :class:`~clinsynth.constraints.Custom`
    rules by name (a bundle stores no code).

    >>> import clinsynth
    >>> # model = clinsynth.load("model_dir")
    """
    from clinsynth.io._bundle import MULTI_TABLE, bundle_kind, load_bundle

    manifest, documents, tensors = load_bundle(filepath)
    where = f"Model '{filepath}'"
    if bundle_kind(manifest) == MULTI_TABLE:
        from clinsynth.multitable import HierarchicalSynthesizer

        return HierarchicalSynthesizer.from_bundle(manifest, documents, tensors, where=where)
    from clinsynth.synthesizers import BaseSynthesizer

    return BaseSynthesizer.from_bundle(
        manifest,
        documents,
        tensors,
        where=where,
        device=device,
        custom_constraints=custom_constraints,
    )
