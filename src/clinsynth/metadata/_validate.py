"""Check data against its metadata: collect every problem, raise once."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from clinsynth.errors import DataError
from clinsynth.metadata._metadata import Metadata
from clinsynth.metadata._table import TableMetadata

logger = logging.getLogger(__name__)

_BOOL_SPELLINGS = {"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n", "1.0", "0.0"}


def validate_data(md: Metadata, data: pd.DataFrame | dict[str, pd.DataFrame]) -> list[str]:
    md.validate()
    if isinstance(data, pd.DataFrame):
        name = md.single_table_name()
        tables = {name: data}
        multi = False
    else:
        tables = data
        multi = True
    problems: list[str] = []
    notes: list[str] = []
    for name in md.tables:
        if name not in tables:
            problems.append(f"table '{name}' is in the metadata but not in the data.")
            continue
        where = f"table '{name}', " if multi else ""
        p, n = table_problems(md.tables[name], tables[name], where)
        problems.extend(p)
        notes.extend(n)
    for name in tables:
        if name not in md.tables:
            problems.append(f"table '{name}' is in the data but not in the metadata.")
    if multi:
        # Orphans are reported with the other problems (all at once); the check skips the
        # tables and key columns already reported missing.
        from clinsynth.metadata._relations import relationship_problems

        problems.extend(relationship_problems(md, tables))
    if problems:
        raise DataError.from_problems("The data does not match its metadata", problems)
    for note in notes:
        logger.warning(note)
    return notes


def clear_missing_values(df: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
    """``df`` with the cells that hold a column's ``missing_values`` emptied (a copy when any
    is found; ``df`` itself is never modified).

    Text markers match after stripping blanks; numbers match numerically (also when the
    column holds them as text). A numerical column left with nothing but numbers in text (as
    read from a CSV with ``.`` for missing) becomes a float column.

    >>> from clinsynth.metadata import TableMetadata
    >>> t = TableMetadata({"age": {"sdtype": "numerical", "missing_values": [".", -99]}})
    >>> clear_missing_values(pd.DataFrame({"age": ["54", ".", "-99", "61"]}), t)["age"].tolist()
    [54.0, nan, nan, 61.0]
    """
    if not isinstance(df, pd.DataFrame):
        return df
    out = df
    for col, spec in table.columns.items():
        markers = spec.get("missing_values")
        if not markers or col not in df.columns or df.columns.tolist().count(col) != 1:
            continue
        series = df[col]
        hit = _marker_mask(series, markers)
        numeric_text = (
            spec.get("sdtype") == "numerical"
            and not pd.api.types.is_numeric_dtype(series)
            and not pd.api.types.is_bool_dtype(series)
        )
        if not hit.any() and not numeric_text:
            continue
        cleared = series.mask(hit)
        if numeric_text:
            numbers = pd.to_numeric(cleared, errors="coerce")
            if (numbers.notna() | cleared.isna()).all():  # else validation names the strays
                cleared = numbers.astype("float64")
        if out is df:
            out = df.copy()
        out[col] = cleared
    return out


def _marker_mask(series: pd.Series, markers: list) -> pd.Series:
    texts = {str(m).strip() for m in markers if isinstance(m, str)}
    numbers = [float(m) for m in markers if isinstance(m, int | float) and not isinstance(m, bool)]
    hit = pd.Series(False, index=series.index)
    if texts and not pd.api.types.is_numeric_dtype(series):
        present = series.notna()
        hit |= present & series.astype("object").astype(str).str.strip().isin(texts)
    if numbers:
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            hit |= series.isin(numbers)
        elif not pd.api.types.is_datetime64_any_dtype(series):
            hit |= pd.to_numeric(series, errors="coerce").isin(numbers)
    return hit


def table_problems(
    table: TableMetadata, df: pd.DataFrame, where: str = ""
) -> tuple[list[str], list[str]]:
    """Every problem (blocking) and note (not blocking) of one table.

    Cells holding a column's ``missing_values`` count as missing (:func:`clear_missing_values`).
    """
    problems: list[str] = []
    notes: list[str] = []
    if not isinstance(df, pd.DataFrame):
        return [f"{where}expected a table (DataFrame), got {type(df).__name__}."], notes
    df = clear_missing_values(df, table)
    if len(df.columns) == 0:
        return [f"{where}the table has no columns."], notes
    if len(df) == 0:
        return [f"{where}the table has no rows; there is nothing to learn."], notes
    dupes = df.columns[df.columns.duplicated()].unique().tolist()
    if dupes:
        problems.append(
            f"{where}duplicate column names {dupes}: rename them so every column is unique."
        )
    names = [str(c) for c in df.columns]
    missing = [c for c in table.columns if c not in names]
    extra = [c for c in names if c not in table.columns]
    if missing:
        problems.append(
            f"{where}columns {missing} are in the metadata but not in the data: "
            "add them to the data or remove them from the metadata."
        )
    if extra:
        problems.append(
            f"{where}columns {extra} are in the data but not in the metadata: "
            "add them to the metadata (`clinsynth detect`) or drop them."
        )
    for col, spec in table.columns.items():
        if col not in names or col in dupes:
            continue
        series = df[col]
        at = f"{where}column '{col}'"
        nonnull = series.dropna()
        sdtype = spec["sdtype"]
        if len(nonnull) == 0:
            notes.append(f"{at} is empty; it will be empty in the synthetic data too.")
            continue
        if sdtype == "unknown":
            problems.append(
                f"{at} has sdtype 'unknown' but holds {len(nonnull)} values. Declare its sdtype "
                "(`clinsynth detect` finds one)."
            )
            continue
        if nonnull.nunique() == 1 and sdtype not in ("id",) and len(series) > 1:
            notes.append(
                f"{at} is constant ({nonnull.iloc[0]!r}); it will be constant in the synthetic "
                "data."
            )
        checker = _CHECKS.get(sdtype)
        if checker is not None:
            msg = checker(series, spec)
            if msg:
                problems.append(f"{at} {msg}")
    pk = table.primary_key
    if pk is not None and pk in names and pk not in dupes:
        keys = df[pk]
        nulls = int(keys.isna().sum())
        dup = keys[keys.duplicated(keep=False) & keys.notna()]
        if nulls:
            problems.append(f"{where}primary key '{pk}' has {nulls} missing values.")
        if len(dup):
            first = dup.iloc[0]
            rows = np.flatnonzero((keys == first).to_numpy())[:3] + 1
            problems.append(
                f"{where}primary key '{pk}' has {dup.nunique()} duplicated values "
                f"(first: {first!r} in rows {', '.join(map(str, rows))}). Make the key unique or "
                "set another primary key (or none)."
            )
    return problems, notes


def _first_bad(series: pd.Series, bad: pd.Series) -> str:
    pos = int(np.flatnonzero(bad.to_numpy())[0])
    return f"{int(bad.sum())} values (first: {series.iloc[pos]!r} in row {pos + 1})"


def _on_all_rows(series: pd.Series, bad_non_null: pd.Series) -> pd.Series:
    """A mask over the non-null values of ``series`` widened to all its rows (nulls are fine)."""
    bad = pd.Series(False, index=series.index)
    bad.loc[bad_non_null[bad_non_null].index] = True
    return bad


def _check_numerical(series: pd.Series, spec: dict) -> str | None:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        inf = np.isinf(values)
        if inf.any():
            return (
                f"has {int(inf.sum())} infinite values; replace them with a number or leave "
                "the cells empty."
            )
        return None
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        return (
            f"is declared numerical but {_first_bad(series, bad)} are not numbers. "
            "Declare it categorical or clean the values."
        )
    return None


def _check_datetime(series: pd.Series, spec: dict) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(series):
        return None
    fmt = spec.get("datetime_format")
    text = series.dropna().astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = (
            pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
            if fmt
            else pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
        )
    bad_mask = parsed.isna()
    if bad_mask.any():  # dates pandas cannot hold (after 2262...) are still dates
        from clinsynth.metadata._detect import _FAR_YEAR, _parses

        far = text[bad_mask]
        far = far[far.str.contains(_FAR_YEAR)]
        bad_mask[far.index[_parses(far, fmt)]] = False
    if bad_mask.any():
        bad = _on_all_rows(series, bad_mask)
        fix = f"format '{fmt}'" if fmt else "any date format"
        return (
            f"is declared datetime but {_first_bad(series, bad)} do not parse with {fix}. "
            "Fix the datetime_format in the metadata or clean the values."
        )
    return None


def _check_boolean(series: pd.Series, spec: dict) -> str | None:
    if pd.api.types.is_bool_dtype(series):
        return None
    text = series.dropna().astype(str).str.strip().str.lower()
    bad_mask = ~text.isin(_BOOL_SPELLINGS)
    if bad_mask.any():
        bad = _on_all_rows(series, bad_mask)
        return (
            f"is declared boolean but {_first_bad(series, bad)} are not true/false. "
            "Declare it categorical or clean the values."
        )
    return None


def _check_ordinal(series: pd.Series, spec: dict) -> str | None:
    order = spec.get("order")
    if not order:
        return None
    allowed = {str(v) for v in order}
    text = series.dropna().astype(str)
    # Numbers read from CSV come as floats ("2.0") when the order says 2.
    text = text.where(~text.str.fullmatch(r"-?\d+\.0"), text.str[:-2])
    bad_mask = ~text.isin(allowed)
    if bad_mask.any():
        bad = _on_all_rows(series, bad_mask)
        return (
            f"is ordinal but {_first_bad(series, bad)} are not among its levels {order}. "
            "Add the level to 'order' in the metadata or clean the values."
        )
    return None


_CHECKS = {
    "numerical": _check_numerical,
    "datetime": _check_datetime,
    "boolean": _check_boolean,
    "ordinal": _check_ordinal,
}
