"""One bundle for a whole schema: each table model's files under a prefix (``t0.``, ``t1.``...).

The bundle is the single-table format (``clinsynth.io._bundle``): ``manifest.json`` says
``"kind": "multi_table"`` and ``"model": "hma"``, lists every table's model (name, parameters,
metadata, fit seeds) and prefix; ``plan.json`` holds the learned links, date rules and context
encoders (statistics, no rows); each table model adds ``<prefix>.transformer.json``,
``<prefix>.model.json`` and tensors named ``<prefix>.<name>`` in ``weights.pt``. Reference tables
(public vocabularies kept verbatim) are the only rows stored, as ``reference.<prefix>.json``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import BundleError, ClinsynthError, ParameterError
from clinsynth.io._atomic import recover
from clinsynth.io._bundle import MANIFEST
from clinsynth.io._limits import MAX_JSON_BYTES, loads_limited
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import BaseSynthesizer, get_synthesizer
from clinsynth.transform import TableTransformer

_RUNTIME = ("progress", "verbose", "device")


def bundle_kind(path: str | os.PathLike) -> str | None:
    """The ``kind`` in a bundle's manifest (``"multi_table"``), reading only the manifest.

    Returns None when the path is not a readable bundle (the caller's loader reports why).
    """
    path = Path(path)
    if not path.exists():
        recover(path)  # a replace interrupted by a kill leaves the old copy beside the path
    try:  # a peek within the limits; load_bundle reads and checks the whole bundle
        if path.is_dir():
            with open(path / MANIFEST, "rb") as handle:
                raw = handle.read(MAX_JSON_BYTES + 1)
        else:
            with zipfile.ZipFile(path) as zf, zf.open(MANIFEST) as member:
                raw = member.read(MAX_JSON_BYTES + 1)
        manifest = loads_limited(raw, MANIFEST, BundleError)
    except (ClinsynthError, OSError, KeyError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None
    return manifest.get("kind") if isinstance(manifest, dict) else None


def pack_model(
    model: BaseSynthesizer, prefix: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(manifest entry, documents, tensors)`` of one fitted table model."""
    name = type(model)._model_name
    try:
        registered = get_synthesizer(name) is type(model)
    except ParameterError:
        registered = False
    if not registered:
        raise BundleError(
            f"The table model {type(model).__name__} is not in the model registry, so a saved "
            "schema could not be loaded again. Register it with @clinsynth.register(name)."
        )
    state, tensors = model._get_state()
    params = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in model.get_params().items()
        if k not in _RUNTIME and not callable(v)
    }
    entry = {
        "prefix": prefix,
        "model": name,
        "params": params,
        "metadata": model.get_metadata().to_dict(),
        "fit": {
            "seconds": model.fit_seconds_,
            "num_training_rows": model.num_training_rows_,
            "sample_seed": model._sample_seed_,
            "fit_seed": model._fit_seed_,
        },
    }
    documents = {
        f"{prefix}.transformer.json": model._transformer_.to_dict(),
        f"{prefix}.model.json": state,
    }
    if model._loss_history_ is not None:
        documents[f"{prefix}.losses.json"] = model._loss_history_.to_dict(orient="list")
    return entry, documents, {f"{prefix}.{k}": v for k, v in tensors.items()}


def unpack_model(
    entry: dict[str, Any], documents: dict[str, Any], tensors: dict[str, Any]
) -> BaseSynthesizer:
    """Rebuild a table model packed by :func:`pack_model` (as ``BaseSynthesizer.load`` does)."""
    prefix = entry["prefix"]
    klass = get_synthesizer(entry["model"])
    metadata = Metadata.from_dict(entry["metadata"])
    model = klass(metadata, **entry["params"])
    model._transformer_ = TableTransformer.from_dict(
        documents[f"{prefix}.transformer.json"], metadata, None
    )
    fit = entry["fit"]
    model.fit_seconds_ = fit["seconds"]
    model.num_training_rows_ = fit["num_training_rows"]
    model._sample_seed_ = fit["sample_seed"]
    model._fit_seed_ = fit["fit_seed"]
    losses = documents.get(f"{prefix}.losses.json")
    model._loss_history_ = pd.DataFrame(losses) if losses is not None else None
    start = len(prefix) + 1
    own = {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    model._set_state(documents.get(f"{prefix}.model.json", {}), own)
    model._fitted = True
    model.reset_sampling()
    return model


def pack_frame(df: pd.DataFrame) -> dict[str, Any]:
    """A small table as JSON (a reference table kept verbatim), with its dtypes."""
    return {
        "data": json.loads(df.to_json(orient="split", date_format="iso", index=False)),
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
    }


def unpack_frame(doc: dict[str, Any]) -> pd.DataFrame:
    data = doc["data"]
    df = pd.DataFrame(data["data"], columns=data["columns"])
    for column, dtype in doc["dtypes"].items():
        if dtype.startswith("datetime64"):
            df[column] = pd.to_datetime(df[column]).astype(dtype)
        elif dtype != "object":
            df[column] = df[column].astype(dtype)
    return df


def jsonable(value: Any) -> Any:
    """Plan values (numpy scalars and arrays inside dicts and lists) as JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
