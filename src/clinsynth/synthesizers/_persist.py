"""The one persistence path of a table model: a fitted synthesizer as ``(manifest, documents,
tensors)`` and back.

:meth:`BaseSynthesizer.save` writes what :func:`pack` returns as a bundle; a multi-table bundle
holds one such table bundle per table (``clinsynth.io._bundle.nest_bundle``), so a table model
inside a schema keeps everything a model saved alone keeps: its rules, its dtypes, its privacy
ledger, its refiner. :func:`unpack` is the one reader of both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from clinsynth.errors import BundleError, ParameterError
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import _rules
from clinsynth.transform import TableTransformer

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer

Bundle = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values: tuples as lists, callables (progress) left out."""
    out = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        if callable(value):
            continue
        out[key] = value
    return out


def pack(model: BaseSynthesizer) -> Bundle:
    """``(manifest, documents, tensors)`` of a fitted table model: everything it needs to
    sample again, and no training row."""
    state, tensors = model._get_state()
    params = {k: v for k, v in model.get_params().items() if k not in model._runtime_params}
    manifest = {
        "kind": "single_table",
        "model": model._model_name,
        "class": type(model).__name__,
        "params": jsonable_params(params),
        "metadata": model.get_metadata().to_dict(),
        "table_name": model.table_name,
        "fit": {
            "seconds": model.fit_seconds_,
            "num_training_rows": model.num_training_rows_,
            "sample_seed": model._sample_seed_,
            "fit_seed": model._fit_seed_,
            "dtypes": getattr(model, "_dtypes_", {}),
        },
        "constraints": _rules.to_json(getattr(model, "_rules_", [])),
        **model._manifest_extra(),
    }
    documents = {
        "transformer.json": model._transformer_.to_dict(),
        "model.json": state,
    }
    if model._loss_history_ is not None:
        documents["losses.json"] = model._loss_history_.to_dict(orient="list")
    if getattr(model, "_refiner_", None) is not None:
        documents["refiner.json"], refiner_tensors = model._refiner_.to_state()
        tensors = {**tensors, **refiner_tensors}
    return manifest, documents, tensors


def model_class(manifest: dict[str, Any], where: str) -> type[BaseSynthesizer]:
    """The registered class that a table bundle names."""
    from clinsynth.synthesizers._registry import get_synthesizer

    try:
        return get_synthesizer(manifest["model"])
    except (KeyError, ParameterError):
        raise BundleError(
            f"{where} was made by an unknown model {manifest.get('model')!r}. Install the "
            "clinsynth version that wrote it."
        ) from None


def unpack(
    manifest: dict[str, Any],
    documents: dict[str, Any],
    tensors: dict[str, Any],
    *,
    where: str,
    device: str = "cpu",
    custom_constraints: dict[str, Any] | None = None,
) -> BaseSynthesizer:
    """Rebuild the model :func:`pack` described (the manifest already checked by
    ``clinsynth.io._bundle``); every failure is a :class:`BundleError` naming ``where``."""
    from clinsynth.io._bundle import BUILD_ERRORS

    klass = model_class(manifest, where)
    try:
        metadata = Metadata.from_dict(manifest["metadata"])
        params = dict(manifest.get("params", {}))
        params.pop("device", None)  # written by bundle format 1 inside schemas
        obj = klass(metadata, **params, device=device)
        table_name = manifest.get("table_name")
        obj._transformer_ = TableTransformer.from_dict(
            documents["transformer.json"], metadata, table_name
        )
        obj._rules_ = _rules.from_json(manifest.get("constraints", []), custom_constraints)
        fit = manifest["fit"]
        obj.fit_seconds_ = fit["seconds"]
        obj.num_training_rows_ = fit["num_training_rows"]
        obj._sample_seed_ = fit["sample_seed"]
        obj._fit_seed_ = fit["fit_seed"]
        obj._dtypes_ = fit.get("dtypes", {})
        losses = documents.get("losses.json")
        obj._loss_history_ = pd.DataFrame(losses) if losses is not None else None
        obj._set_state(documents.get("model.json", {}), tensors)
        obj._load_manifest_extra(manifest)
        obj._refiner_ = None
        if "refiner.json" in documents:
            from clinsynth.synthesizers._refine import DensityRatioRefiner

            obj._refiner_ = DensityRatioRefiner.from_state(
                documents["refiner.json"], tensors, metadata, table_name
            )
    except BundleError as exc:  # a document's own check: say which model
        raise BundleError(f"{where}: {exc}", exc.problems) from None
    except BUILD_ERRORS as exc:  # what the checks of each document did not foresee
        raise BundleError(
            f"{where} is corrupt or incomplete ({type(exc).__name__}: {exc}). "
            "Fit and save the model again."
        ) from None
    obj._fitted_ = True
    obj.reset_sampling()
    return obj
