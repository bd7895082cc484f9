"""What a schema bundle holds beside its table bundles: reference tables and plan values.

A schema bundle's ``manifest.json`` says ``"kind": "multi_table"`` and ``"model": "hma"`` and,
under ``"tables"``, holds one entry per table: the manifest of that table's model exactly as
``BaseSynthesizer.save`` writes it alone (``BaseSynthesizer.to_bundle``), with the prefix
(``t0``, ``t1``...) of its members (``clinsynth.io._bundle.nest_bundle``). ``plan.json`` holds
the learned links, date rules and context encoders (statistics, no rows). Reference tables
(public vocabularies kept verbatim) are the only rows stored, as ``reference.<prefix>.json``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import BundleError, ParameterError
from clinsynth.synthesizers import BaseSynthesizer, get_synthesizer


def check_registered(model: BaseSynthesizer) -> None:
    """A table model must be in the registry, or its schema could not be loaded again."""
    try:
        registered = get_synthesizer(type(model)._model_name) is type(model)
    except ParameterError:
        registered = False
    if not registered:
        raise BundleError(
            f"The table model {type(model).__name__} is not in the model registry, so a saved "
            "schema could not be loaded again. Register it with @clinsynth.register(name)."
        )


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
