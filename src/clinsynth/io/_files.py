"""Read and write tables in the formats of ``_formats.FORMATS`` (CSV, TSV, Excel, Parquet), and
folders of them.

Errors name the file and say how to fix the problem; writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clinsynth.errors import DataError
from clinsynth.io._atomic import atomic_path
from clinsynth.io._formats import (
    folder_formats,
    format_of,
    get_format,
    listed_names,
    listed_suffixes,
)
from clinsynth.io._paths import check_file_name


def read_table(path: str | os.PathLike, *, sheet_name: str | int | None = None) -> pd.DataFrame:
    """Read one table from a CSV/TSV, Excel or Parquet file.

    Parameters
    ----------
    path : path-like
    sheet_name : str or int, optional
        The Excel sheet. By default the first; a warning names the others when the workbook
        has several.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b\\n1,x\\n2,y\\n")
    >>> read_table(p).shape
    (2, 2)
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"File '{path}' does not exist. Check the path.")
    if path.is_dir():
        raise DataError(
            f"'{path}' is a folder, not a table file. Use load_csvs('{path}') for a folder of CSVs."
        )
    fmt = format_of(path)
    if fmt is None:
        raise DataError(
            f"File '{path}' has an unsupported type '{path.suffix.lower()}'. Use "
            f"{listed_names(labels=True)} ({listed_suffixes()})."
        )
    try:
        if path.stat().st_size == 0:
            raise DataError(f"File '{path}' is empty. Give a file with a header row and data rows.")
        df = fmt.read(path, sheet_name)
    except OSError as exc:
        raise DataError(
            f"File '{path}' could not be read ({exc.strerror or type(exc).__name__}). Check "
            "that it exists and that you may read it."
        ) from None
    return _check_table(df, path)


def _check_table(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    if df.shape[1] == 0:
        raise DataError(f"File '{path}' has no columns. Give a file with a header row.")
    if df.shape[0] == 0:
        raise DataError(f"File '{path}' has a header but no data rows; there is nothing to learn.")
    if df.shape[1] == 1 and path.suffix.lower() in get_format("csv").suffixes and len(df):
        first = str(df.columns[0])
        if len(first) > 200 or first.lstrip().startswith(("<", "{", "%PDF")):
            raise DataError(
                f"File '{path}' does not look like a table (one column named {first[:40]!r}...). "
                "Give a CSV with a header row."
            )
    duplicated = _duplicated_headers(df)
    if duplicated:
        raise DataError(
            f"File '{path}' has duplicate column names {duplicated}. Rename them so every "
            "column is unique."
        )
    return df


def _duplicated_headers(df: pd.DataFrame) -> list[str]:
    """pandas renames a repeated CSV header 'a' to 'a.1'; report those as duplicates."""
    names = [str(c) for c in df.columns]
    dupes = {n for n in names if names.count(n) > 1}
    for n in names:
        base, _, tail = n.rpartition(".")
        if base and tail.isdigit() and base in names:
            dupes.add(base)
    return sorted(dupes)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV, Excel (.xlsx) or Parquet, chosen by the file suffix; atomically."""
    path = Path(path)
    fmt = format_of(path, writing=True)
    if fmt is None:
        raise DataError(
            f"Cannot write '{path}': unsupported type '{path.suffix.lower() or '(none)'}'. "
            f"Use {listed_suffixes()}."
        )
    if fmt.name == "xlsx":
        from clinsynth._extras import require

        require("openpyxl", f"Writing the Excel file '{path}'")
    with atomic_path(path) as tmp:
        fmt.write(df, tmp)
    return path


def load_csvs(folder_name: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Read every CSV file of a folder into ``{file stem: DataFrame}``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "patients.csv").write_text("id,age\\n1,40\\n2,50\\n")
    >>> list(load_csvs(d))
    ['patients']
    """
    folder = Path(folder_name)
    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder. Give a folder that holds CSV files.")
    suffix = get_format("csv").writes[0]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix)
    if not files:
        raise DataError(f"Folder '{folder}' has no .csv files.")
    return {p.stem: read_table(p) for p in files}


def write_tables(
    tables: dict[str, pd.DataFrame], folder: str | os.PathLike, *, file_format: str = "csv"
) -> Path:
    """Write a dict of tables as one file per table in ``folder`` (atomically, as a whole)."""
    if file_format not in folder_formats():
        raise DataError(
            f"Unsupported folder format '{file_format}'. Use {listed_names(folder=True)}."
        )
    names = {name: check_file_name(name) for name in tables}  # never a path outside `folder`
    lowered = [n.lower() for n in names.values()]
    clash = sorted({n for n in lowered if lowered.count(n) > 1})
    if clash:
        raise DataError(
            f"Tables {clash} differ only in letter case; their files would overwrite each other "
            "on some systems. Rename one of them."
        )
    with atomic_path(folder, directory=True) as tmp:
        for name, df in tables.items():
            write_table(df, tmp / f"{names[name]}{get_format(file_format).writes[0]}")
    return Path(folder)


def read_data(
    path: str | os.PathLike, *, sheet_name: str | int | None = None
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """A table from a file, or a dict of tables from a folder of CSVs."""
    path = Path(path)
    if path.is_dir():
        return load_csvs(path)
    return read_table(path, sheet_name=sheet_name)
