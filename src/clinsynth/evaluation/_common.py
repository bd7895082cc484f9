"""Shared helpers of the evaluation package: inputs, column kinds, subsampling, JSON, verdicts."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from clinsynth.errors import DataError, MetadataError, ParameterError
from clinsynth.metadata import Metadata, TableMetadata, detect_datetime_format, is_pii

#: SDMetrics' column kinds: continuous columns are compared with KS, discrete ones with TV.
CONTINUOUS = ("numerical", "datetime")
DISCRETE = ("categorical", "ordinal", "boolean")
STATISTICAL = CONTINUOUS + DISCRETE


def single_threaded(func: Callable) -> Callable:
    """Run ``func`` with one OpenMP/BLAS thread.

    Gradient boosting and nearest-neighbour searches spin-wait between OpenMP threads; on a small
    machine shared with other processes that made them up to 50 times slower. One thread is
    predictable. (threadpoolctl is a dependency of scikit-learn.)
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1):
            return func(*args, **kwargs)

    return wrapper


def resolve_table(metadata: Metadata | TableMetadata | dict) -> TableMetadata:
    """The single table of ``metadata`` (a Metadata, a TableMetadata or its JSON dict)."""
    if isinstance(metadata, TableMetadata):
        return metadata
    if isinstance(metadata, dict):
        metadata = Metadata.from_dict(metadata)
    if not isinstance(metadata, Metadata):
        raise MetadataError(
            f"metadata must be a clinsynth Metadata (or its dict). Got {type(metadata).__name__}. "
            "Create it with Metadata.detect_from_dataframe(real_data)."
        )
    return metadata.get_table()


def check_frame(data: object, name: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{name} must be a pandas DataFrame. Got {type(data).__name__}.")
    if len(data) == 0:
        raise DataError(f"{name} has no rows. Give at least one row to evaluate.")
    return data


def check_columns(table: TableMetadata, frames: dict[str, pd.DataFrame]) -> None:
    """Raise one DataError listing every metadata column that a frame lacks."""
    problems = []
    for name, df in frames.items():
        missing = [c for c in table.columns if c not in df.columns]
        if missing:
            problems.append(f"{name} lacks the metadata column(s) {', '.join(map(repr, missing))}")
    if problems:
        raise DataError.from_problems(
            "The data does not match the metadata (give the same columns as the metadata)", problems
        )


def check_release_inputs(
    metadata: Metadata | TableMetadata | dict,
    real_train: object,
    synthetic: object,
    holdout: object,
) -> tuple[TableMetadata, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The table and the three frames of a train / synthetic / holdout comparison (privacy,
    utility), each checked, with every missing metadata column reported at once."""
    table = resolve_table(metadata)
    train = check_frame(real_train, "real_train")
    synth = check_frame(synthetic, "synthetic")
    hold = check_frame(holdout, "holdout")
    check_columns(table, {"real_train": train, "synthetic": synth, "holdout": hold})
    return table, train, synth, hold


def statistical_columns(table: TableMetadata, kinds: tuple[str, ...] = STATISTICAL) -> list[str]:
    """Columns whose sdtype is in ``kinds``; id and PII columns never are."""
    return [c for c, s in table.columns.items() if s["sdtype"] in kinds and not is_pii(s)]


def key_and_pii_columns(table: TableMetadata) -> list[str]:
    return [c for c, s in table.columns.items() if s["sdtype"] == "id" or is_pii(s)]


def to_numeric(series: pd.Series, spec: dict) -> np.ndarray:
    """A numerical or datetime column as float64 (datetimes in nanoseconds); NaN for missing or
    unparseable values."""
    if spec["sdtype"] == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            text = series.astype("string")
            fmt = spec.get("datetime_format") or detect_datetime_format(text.dropna()) or "mixed"
            values = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
            values = values.dt.tz_localize(None)
        out = values.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
        out[values.isna().to_numpy()] = np.nan
        return out
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def subsample(df: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows of ``df``, drawn without replacement with ``rng`` (order kept)."""
    if n is None or len(df) <= n:
        return df
    idx = np.sort(rng.choice(len(df), size=n, replace=False))
    return df.iloc[idx]


def check_positive_int(owner: str, name: str, value: object, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be an int >= 1. Got {value!r}."
        )


@dataclass
class Sampling:
    """Which metrics ran on a subsample, and on how many rows (recorded in every report)."""

    notes: dict[str, dict[str, int]] = field(default_factory=dict)

    def record(self, metric: str, **sizes: int) -> None:
        self.notes[metric] = {k: int(v) for k, v in sizes.items()}


def jsonable(value: Any) -> Any:
    """Turn numpy/pandas values into plain JSON values; NaN and infinities become None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if value is None or isinstance(value, int | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(value)
    return str(value)


def clip01(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(min(1.0, max(0.0, value)))


def nanmean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else None


def verdict(value: float | None, medium: float, high: float) -> str:
    """'low' below ``medium``, 'high' from ``high`` on, else 'medium' (higher value = more risk)."""
    if value is None:
        return "not measured"
    if value >= high:
        return "high"
    if value >= medium:
        return "medium"
    return "low"


#: A [0, 1] score (1 is best) reads "good" from GOOD_FROM on, "poor" below POOR_BELOW.
GOOD_FROM, POOR_BELOW = 0.9, 0.75


def score_verdict(score: float | None) -> str:
    """A plain word for a [0, 1] score where 1 is best."""
    if score is None:
        return "not measured"
    if score >= GOOD_FROM:
        return "good"
    if score >= POOR_BELOW:
        return "fair"
    return "poor"


def row_keys(df: pd.DataFrame, table: TableMetadata, columns: list[str]) -> np.ndarray:
    """A 64-bit hash per row of ``columns``, comparable across tables whose dtypes differ
    (numbers as float64, datetimes parsed, other values as text; missing values hash alike)."""
    parts = {}
    for col in columns:
        spec = table.columns[col]
        series = df[col]
        if spec["sdtype"] in CONTINUOUS or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        ):
            parts[col] = pd.Series(
                to_numeric(series, spec)
                if spec["sdtype"] in CONTINUOUS
                else series.astype("float64").to_numpy(),
                index=df.index,
            )
        else:
            parts[col] = series.astype("string").fillna("\x00<NA>")
    frame = pd.DataFrame(parts, index=df.index)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
