"""Where the Dask evaluation's rows come from: a Dask DataFrame, a pandas DataFrame, or Parquet
and CSV paths, read by each task a batch at a time (:mod:`clinsynth.evaluation._dask`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinsynth._extras import require
from clinsynth.errors import DataError, ParameterError

#: Rows a task reads at a time (a Parquet file's batches, a partition's slices).
CHUNK_ROWS = 65_536


def frame(data: Any, name: str) -> Any:
    """A Dask DataFrame from a Dask DataFrame, a pandas DataFrame, or a path to Parquet (a
    file or a folder of parts) or CSV (a file or a glob)."""
    dd = require("dask.dataframe", "Evaluating tables on Dask")
    if isinstance(data, dd.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return dd.from_pandas(data, npartitions=max(1, len(data) // 1_000_000 + 1))
    if isinstance(data, str | Path):
        path = Path(data)
        if path.suffix.lower() in (".csv", ".tsv") or "*" in path.name:
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            return dd.read_csv(str(path), sep=sep, assume_missing=True, dtype=object)
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
            if not path.exists():
                raise DataError(
                    f"{name}: {str(path)!r} does not exist. Give a Parquet file or folder."
                )
            return dd.read_parquet(str(path))
    raise ParameterError(
        f"{name} must be a Dask or pandas DataFrame, or the path of a Parquet file or folder or "
        f"of a CSV file. Got {type(data).__name__} {data!r}."[:300]
    )


def _parquet_files(data: Any) -> list[str] | None:
    """The Parquet files of a path (a file, or a folder's parts without ``_``/``.`` names)."""
    if not isinstance(data, str | Path):
        return None
    path = Path(data)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith(("_", ".")))
        return [str(p) for p in files] or None
    if path.suffix.lower() in (".parquet", ".pq"):
        return [str(path)]
    return None


def sources(data: Any, frame: Any) -> list[Any]:
    """One task's input per Parquet file (read in batches), else per Dask partition."""
    return _parquet_files(data) or list(frame.to_delayed())


def chunks(source: Any, columns: list[str]) -> Iterator[pd.DataFrame]:
    """The rows of one task, ``CHUNK_ROWS`` at a time: a Parquet file's batches or slices of
    a partition (so that a task's temporaries stay small whatever the part's size)."""
    if isinstance(source, str):
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(source)
        empty = True
        for batch in reader.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield reader.schema_arrow.empty_table().select(columns).to_pandas()
        return
    for start in range(0, max(len(source), 1), CHUNK_ROWS):
        yield source.iloc[start : start + CHUNK_ROWS][columns]


def sample_task(source: Any, columns: list[str], fraction: float, seed: int) -> pd.DataFrame:
    """About ``fraction`` of the task's rows, each kept with that probability."""
    rng = np.random.default_rng(seed)
    kept = [c[rng.random(len(c)) < fraction] for c in chunks(source, columns)]
    return pd.concat(kept, ignore_index=True)
