"""The readers and writers of each file format (the table of formats: ``_formats.py``).

Each reader turns a file into a DataFrame or raises a :class:`DataError` that names the file
and the fix; each writer writes a DataFrame to a path (the caller makes the write atomic).
"""

from __future__ import annotations

import codecs
import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clinsynth.errors import DataError

logger = logging.getLogger("clinsynth.io._files")
_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")


def read_csv(path: Path, sheet_name: str | int | None = None) -> pd.DataFrame:
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


def read_excel(path: Path, sheet_name: str | int | None = None) -> pd.DataFrame:
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


def read_parquet(path: Path, sheet_name: str | int | None = None) -> pd.DataFrame:
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


def write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False)


def write_tsv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, sep="\t")


def write_excel(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    for col in out.columns:  # Excel cannot store time zones
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_localize(None)
    out.to_excel(path, index=False, engine="openpyxl")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False)
