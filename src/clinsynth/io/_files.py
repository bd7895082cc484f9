"""Read and write tables: CSV, Excel (.xlsx), Parquet, and folders of CSVs.

Errors name the file and say how to fix the problem; writes are atomic.
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from clinsynth.errors import DataError
from clinsynth.io._atomic import atomic_path
from clinsynth.io._paths import check_file_name

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".parquet", ".pq")
_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")


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
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES + ("",):
        raise DataError(
            f"File '{path}' has an unsupported type '{suffix}'. Use CSV, Excel (.xlsx) or Parquet."
        )
    try:
        if path.stat().st_size == 0:
            raise DataError(f"File '{path}' is empty. Give a file with a header row and data rows.")
        if suffix in (".xlsx", ".xls"):
            df = _read_excel(path, sheet_name)
        elif suffix in (".parquet", ".pq"):
            df = _read_parquet(path)
        else:
            df = _read_csv(path)
    except OSError as exc:
        raise DataError(
            f"File '{path}' could not be read ({exc.strerror or type(exc).__name__}). Check "
            "that it exists and that you may read it."
        ) from None
    return _check_table(df, path)


def _read_csv(path: Path) -> pd.DataFrame:
    with open(path, "rb") as handle:
        raw = handle.read(65536)
    encodings: tuple[str, ...] = _ENCODINGS
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encodings = ("utf-32",)
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)  # spreadsheet programs' "Unicode text"
    elif b"\x00" in raw:
        raise DataError(
            f"File '{path}' is binary, not a text table. Give a CSV, Excel (.xlsx) or Parquet file."
        )
    last_error: Exception | None = None
    for encoding in encodings:
        try:
            # Incremental: a character cut at the end of the sample is not an error.
            sample = codecs.getincrementaldecoder(encoding)().decode(raw, final=False)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        sep = "\t" if path.suffix.lower() == ".tsv" else _sniff_separator(sample)
        try:
            return pd.read_csv(path, sep=sep, encoding=encoding, low_memory=False)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except pd.errors.EmptyDataError:
            raise DataError(
                f"File '{path}' has no columns. Give a file with a header row."
            ) from None
        except pd.errors.ParserError as exc:
            raise DataError(
                f"File '{path}' is not a well-formed table ({str(exc).strip()}). "
                "Check the separator and quoting."
            ) from None
    raise DataError(
        f"File '{path}' is in an unknown text encoding ({last_error}). Save it as UTF-8."
    )


def _sniff_separator(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample.split("\n", 20)[0] + "\n", delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_excel(path: Path, sheet_name: str | int | None) -> pd.DataFrame:
    from clinsynth._extras import require

    require("openpyxl", f"Reading the Excel file '{path}'")
    try:
        with pd.ExcelFile(path) as book:
            sheets = [str(s) for s in book.sheet_names]
            chosen = _choose_sheet(path, sheets, sheet_name)
            return pd.read_excel(book, sheet_name=chosen)
    except DataError:
        raise
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DataError(
            f"File '{path}' could not be read as Excel ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Save it again as .xlsx, or export it as CSV."
        ) from None


def _choose_sheet(path: Path, sheets: list[str], sheet_name: str | int | None) -> str:
    if not sheets:
        raise DataError(f"Excel file '{path}' has no sheets.")
    if sheet_name is None:
        if len(sheets) > 1:
            logger.warning(
                "Excel file '%s' has %d sheets (%s); reading the first, '%s'. Choose another "
                "with --sheet NAME (or read_table(path, sheet_name=NAME)).",
                path,
                len(sheets),
                ", ".join(sheets[:10]) + (", ..." if len(sheets) > 10 else ""),
                sheets[0],
            )
        return sheets[0]
    if isinstance(sheet_name, int) and not isinstance(sheet_name, bool):
        if 0 <= sheet_name < len(sheets):
            return sheets[sheet_name]
    elif str(sheet_name) in sheets:
        return str(sheet_name)
    raise DataError(
        f"Excel file '{path}' has no sheet {sheet_name!r}. Its sheets: {', '.join(sheets[:20])}."
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged file
        raise DataError(
            f"File '{path}' could not be read as Parquet ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Check that it is a complete Parquet file."
        ) from None
    nested = _nested_columns(df)
    if nested:
        raise DataError(
            f"File '{path}' has nested values (lists, structs or maps) in column"
            f"{'s' if len(nested) > 1 else ''} {', '.join(repr(c) for c in nested[:5])}; clinsynth "
            "needs one plain value per cell. Flatten those columns (one column per field) or "
            "drop them."
        )
    return df


_NESTED = (list, tuple, dict, set, np.ndarray)


def _nested_columns(df: pd.DataFrame) -> list[str]:
    """Columns holding lists, dicts or arrays (Parquet's nested types)."""
    out = []
    for column in df.columns:
        if df[column].dtype != object:
            continue
        values = df[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, _NESTED)).any():
            out.append(str(column))
    return out


def _check_table(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    if df.shape[1] == 0:
        raise DataError(f"File '{path}' has no columns. Give a file with a header row.")
    if df.shape[0] == 0:
        raise DataError(f"File '{path}' has a header but no data rows; there is nothing to learn.")
    if df.shape[1] == 1 and path.suffix.lower() in (".csv", ".txt") and df.shape[0] > 0:
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
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".xlsx", ".parquet", ".pq"):
        raise DataError(
            f"Cannot write '{path}': unsupported type '{suffix or '(none)'}'. "
            "Use .csv, .xlsx or .parquet."
        )
    if suffix == ".xlsx":
        from clinsynth._extras import require

        require("openpyxl", f"Writing the Excel file '{path}'")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".tsv":
            df.to_csv(tmp, index=False, sep="\t")
        elif suffix == ".xlsx":
            out = df.copy()
            for col in out.columns:  # Excel cannot store time zones
                if isinstance(out[col].dtype, pd.DatetimeTZDtype):
                    out[col] = out[col].dt.tz_localize(None)
            out.to_excel(tmp, index=False, engine="openpyxl")
        else:
            df.to_parquet(tmp, index=False)
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
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    if not files:
        raise DataError(f"Folder '{folder}' has no .csv files.")
    return {p.stem: read_table(p) for p in files}


def write_tables(
    tables: dict[str, pd.DataFrame], folder: str | os.PathLike, *, file_format: str = "csv"
) -> Path:
    """Write a dict of tables as one file per table in ``folder`` (atomically, as a whole)."""
    if file_format not in ("csv", "parquet"):
        raise DataError(f"Unsupported folder format '{file_format}'. Use 'csv' or 'parquet'.")
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
            write_table(df, tmp / f"{names[name]}.{file_format}")
    return Path(folder)


def read_data(
    path: str | os.PathLike, *, sheet_name: str | int | None = None
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """A table from a file, or a dict of tables from a folder of CSVs."""
    path = Path(path)
    if path.is_dir():
        return load_csvs(path)
    return read_table(path, sheet_name=sheet_name)
