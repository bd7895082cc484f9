"""Column types kept across a round trip through a SQL database (DuckDB, PostgreSQL).

Reading records each column's database type in its metadata as ``"sql_type"``, in a small
portable vocabulary: ``smallint``, ``integer``, ``bigint``, ``numeric(p,s)``, ``real``,
``double``, ``boolean``, ``date``, ``timestamp``, ``timestamptz``, ``varchar(n)``, ``varchar``,
``char(n)``, ``text``, ``uuid``. Writing creates each column with that type, so a DATE stays a
DATE, a SMALLINT a SMALLINT and a NUMERIC(8,2) a NUMERIC(8,2). A column without a recorded type
gets one from its values, and datetime columns held as text (read from a CSV) are parsed with the
metadata's ``datetime_format`` and written as DATE when the format has no time of day, TIMESTAMP
otherwise. The types come from ``information_schema.columns``, which both databases provide.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import DataError

logger = logging.getLogger(__name__)

_INTEGERS = {
    "smallint": "smallint",
    "int2": "smallint",
    "tinyint": "smallint",
    "integer": "integer",
    "int": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
}
_SIMPLE = {
    "real": "real",
    "float": "real",  # DuckDB's FLOAT is 4 bytes
    "float4": "real",
    "double precision": "double",
    "double": "double",
    "float8": "double",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp": "timestamp",
    "timestamp with time zone": "timestamptz",
    "timestamptz": "timestamptz",
    "text": "text",
    "uuid": "uuid",
}
#: strftime directives of a time of day: a format without any is a date.
_TIME_DIRECTIVES = re.compile(r"%[HIMSfpTXcrRz]")


def portable_type(
    data_type: str, length: int | None, precision: int | None, scale: int | None
) -> str | None:
    """The vocabulary name of a column type from ``information_schema.columns``, or None.

    >>> portable_type("character varying", 20, None, None)
    'varchar(20)'
    >>> portable_type("DECIMAL(8,2)", None, 8, 2)
    'numeric(8,2)'
    >>> portable_type("timestamp without time zone", None, None, None)
    'timestamp'
    """
    name = str(data_type).strip().lower()
    if name in _INTEGERS:
        return _INTEGERS[name]
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name.startswith(("numeric", "decimal")):
        if precision is not None and scale is not None:
            return f"numeric({int(precision)},{int(scale)})"
        return "numeric"
    if name in ("character varying", "varchar"):
        return f"varchar({int(length)})" if length else "varchar"
    if name in ("character", "char", "bpchar"):
        return f"char({int(length)})" if length else "varchar"
    return None


def column_types(conn: Any, schema: str | None, names: list[str]) -> dict[str, dict[str, str]]:
    """``{table: {column: sql_type}}`` for the tables ``names`` of ``schema`` (the connection's
    current schema when None)."""
    import sqlalchemy as sa

    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, character_maximum_length, "
            "numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_schema = coalesce(:schema, current_schema())"
        ),
        {"schema": schema},
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    wanted = set(names)
    for table, column, data_type, length, precision, scale in rows:
        if table not in wanted:
            continue
        found = portable_type(data_type, length, precision, scale)
        if found:
            out.setdefault(table, {})[column] = found
    return out


def sa_type(sql_type: str) -> Any:
    """The SQLAlchemy type of a vocabulary name (see the module docstring)."""
    import sqlalchemy as sa

    simple = {
        "smallint": sa.SmallInteger,
        "integer": sa.Integer,
        "bigint": sa.BigInteger,
        "real": sa.REAL,
        "double": sa.Double,
        "boolean": sa.Boolean,
        "date": sa.Date,
        "timestamp": sa.DateTime,
        "text": sa.Text,
        "varchar": sa.String,
        "numeric": sa.Numeric,
    }
    if sql_type in simple:
        return simple[sql_type]()
    if sql_type == "timestamptz":
        return sa.DateTime(timezone=True)
    if sql_type == "uuid":
        return sa.Uuid(as_uuid=False)
    match = re.fullmatch(r"(numeric|varchar|char)\((\d+)(?:,(\d+))?\)", sql_type)
    if match is None:
        raise DataError(
            f"Unknown sql_type {sql_type!r} in the metadata. Use one of smallint, integer, "
            "bigint, numeric(p,s), real, double, boolean, date, timestamp, timestamptz, "
            "varchar(n), char(n), text, uuid, or remove it."
        )
    kind, first, second = match.groups()
    if kind == "numeric":
        return sa.Numeric(int(first), int(second or 0))
    return sa.String(int(first)) if kind == "varchar" else sa.CHAR(int(first))


def typed_column(series: pd.Series, spec: dict, where: str) -> tuple[pd.Series, str | None]:
    """The column's values ready for its type, and the type to create it with (None: from
    the values).

    Datetime columns held as text are parsed with the spec's ``datetime_format`` (an error names
    the values that do not parse); the type is the spec's ``sql_type`` when its values fit it,
    ``date`` for dates without a time of day, else None.
    """
    sql_type = spec.get("sql_type")
    fmt = spec.get("datetime_format")
    if spec.get("sdtype") == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
        series = _parse_dates(series, fmt, where)
        if sql_type is None and fmt and not _TIME_DIRECTIVES.search(fmt):
            sql_type = "date"
    if sql_type is None:
        return series, None
    if sql_type == "date" and pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.dt.floor("D"), sql_type
    if sql_type in ("smallint", "integer", "bigint"):
        return _as_integers(series, sql_type, where)
    return series, sql_type


def _parse_dates(series: pd.Series, fmt: str | None, where: str) -> pd.Series:
    present = series.notna() & (series.astype(str).str.strip() != "")
    text = series.where(present).astype(object)
    parsed = pd.to_datetime(text, format=fmt, errors="coerce") if fmt else None
    if parsed is None:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = present & parsed.isna()
    if bad.any():
        first = series[bad].iloc[0]
        raise DataError(
            f"{where} is a datetime column, but {int(bad.sum())} values do not parse with its "
            f"datetime_format {fmt!r} (first: {first!r}). Fix the format in the metadata or "
            "the values."
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _as_integers(series: pd.Series, sql_type: str, where: str) -> tuple[pd.Series, str | None]:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return series, None
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if not np.all(finite == np.round(finite)):
        logger.warning(
            "%s was an %s column but holds fractions: written as a floating-point column.",
            where,
            sql_type.upper(),
        )
        return series, None
    limit = _INTEGER_LIMITS[sql_type]
    if len(finite) and np.abs(finite).max() > limit:
        logger.warning(
            "%s was an %s column but holds values beyond its range: written as BIGINT.",
            where,
            sql_type.upper(),
        )
        sql_type = "bigint"
    return series.astype("Int64"), sql_type


_INTEGER_LIMITS = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}
