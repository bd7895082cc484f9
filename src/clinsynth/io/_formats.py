"""The table of file formats: one entry per format, read by io, the CLI, simulate and the
dashboard.

Adding a format is one :class:`FileFormat` entry in :data:`FORMATS` (its reader and writer
functions, or the names of functions in ``_readers.py``) and its test. Everything else reads the
table when it runs, so nothing else names the format. This module imports nothing heavy, so
the CLI can list the formats without loading pandas.

>>> format_of("visits.parquet").name
'parquet'
>>> listed_suffixes()
'.csv, .xlsx or .parquet'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FileFormat:
    """One file format of tables.

    Attributes
    ----------
    name : str
        Its name (``--format`` of ``clinsynth simulate``, ``write_tables(file_format=)``).
    label : str
        Its name in messages ("CSV", "Excel").
    suffixes : tuple of str
        The suffixes read as this format; the first is the one written.
    writes : tuple of str
        The suffixes written (empty: read only).
    reader, writer : str or callable
        ``reader(path, sheet_name)`` returns a DataFrame, ``writer(df, path)`` writes one: the
        functions, or the names of functions in ``clinsynth.io._readers`` (so that this module
        imports nothing heavy).
    folder : bool
        Whether a folder of tables may be written in it (one file per table).
    listed : bool
        Named in the messages that list the formats to use.
    cell_bytes : int
        Bytes a cell takes in a file, roughly (for the disk check before a write).
    """

    name: str
    label: str
    suffixes: tuple[str, ...]
    writes: tuple[str, ...]
    reader: str | Callable[..., Any]
    writer: str | Callable[..., Any] | None = None
    folder: bool = False
    listed: bool = True
    cell_bytes: int = 10

    def read(self, path: Path, sheet_name: str | int | None = None) -> pd.DataFrame:
        """Read ``path`` in this format (a missing optional module names its extra)."""
        return _function(self.reader)(path, sheet_name)

    def write(self, df: pd.DataFrame, path: Path) -> None:
        """Write ``df`` to ``path`` in this format (not atomic: the caller is)."""
        _function(self.writer)(df, path)


def _function(name: str | Callable[..., Any] | None) -> Callable[..., Any]:
    if callable(name):
        return name
    from clinsynth.io import _readers

    return getattr(_readers, str(name))


#: Every file format of tables. A file without a suffix is read as CSV. Read when used (never
#: copied at import), so an entry added here reaches io, the CLI, simulate and the dashboard.
FORMATS: list[FileFormat] = [
    FileFormat("csv", "CSV", (".csv", ".txt"), (".csv",), "read_csv", "write_csv", folder=True),
    FileFormat("tsv", "TSV", (".tsv",), (".tsv",), "read_csv", "write_tsv", listed=False),
    FileFormat("xlsx", "Excel", (".xlsx", ".xls"), (".xlsx",), "read_excel", "write_excel"),
    FileFormat(
        "parquet",
        "Parquet",
        (".parquet", ".pq"),
        (".parquet", ".pq"),
        "read_parquet",
        "write_parquet",
        folder=True,
        cell_bytes=6,
    ),
]


def get_format(name: str) -> FileFormat:
    """The format called ``name`` (KeyError for another)."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise KeyError(name)


def format_of(path: str | os.PathLike, *, writing: bool = False) -> FileFormat | None:
    """The format of ``path`` by its suffix (None: no format reads, or writes, it)."""
    suffix = Path(path).suffix.lower()
    if not suffix and not writing:
        return get_format("csv")
    for fmt in FORMATS:
        if suffix in (fmt.writes if writing else fmt.suffixes):
            return fmt
    return None


def readable_suffixes() -> tuple[str, ...]:
    return tuple(s for f in FORMATS for s in f.suffixes)


def writable_suffixes() -> tuple[str, ...]:
    return tuple(s for f in FORMATS for s in f.writes)


def listed_formats() -> tuple[str, ...]:
    """Names of the formats offered by name (``clinsynth simulate --format``)."""
    return tuple(f.name for f in FORMATS if f.listed)


def folder_formats() -> tuple[str, ...]:
    """Names of the formats a folder of tables may be written in."""
    return tuple(f.name for f in FORMATS if f.folder)


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def listed_suffixes() -> str:
    """The written suffixes to name in a message: ``'.csv, .xlsx or .parquet'``."""
    return _either([f.writes[0] for f in FORMATS if f.listed and f.writes])


def listed_names(*, folder: bool = False, labels: bool = False) -> str:
    """The formats to name in a message: ``"'csv' or 'parquet'"`` (``folder``: those a folder
    may hold; ``labels``: ``"CSV or Parquet"``)."""
    return _either(
        [
            f.label if labels else f"'{f.name}'"
            for f in FORMATS
            if f.listed and (f.folder or not folder)
        ]
    )
