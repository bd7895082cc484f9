"""Whole schemas in and out of SQL databases through SQLAlchemy: DuckDB (embedded) and PostgreSQL.

:func:`read_sql_schema` reads tables with their metadata: primary and foreign keys come from the
database's own constraints when it declares them, from detection otherwise.
:func:`write_sql_schema` creates the tables with their primary and foreign key constraints and
writes parents before children in one transaction, so a failure leaves nothing half-written.
Column types survive the round trip: reading records each column's database type in the
metadata (``"sql_type"``), writing creates the column with it (:mod:`clinsynth.io._sql_types`).

Bulk paths keep large tables fast: DuckDB reads and writes DataFrames natively, PostgreSQL loads
rows with ``COPY``; other SQLAlchemy dialects use batched ``INSERT``. Every error names the URL
with its password masked.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import uuid
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinsynth.errors import DataError, ParameterError
from clinsynth.io._sql_engine import (
    _backend,
    _connect,
    _engine,
    _first_line,
    _is_driver_error,
)
from clinsynth.io._sql_types import column_types, sa_type, typed_column
from clinsynth.metadata import Metadata

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- public API
def read_sql_schema(
    url: str,
    tables: list[str] | None = None,
    schema: str | None = None,
) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """Read tables of a database with their metadata (keys and relationships).

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``duckdb:///file.duckdb`` or ``postgresql://user:pw@host:5432/db``.
    tables : list of str, optional
        Tables to read; all the tables of the schema when None.
    schema : str, optional
        Database schema (namespace); the connection's default when None.

    Returns
    -------
    tables : dict of str to DataFrame
        One DataFrame per table; date and time columns as ``datetime64[ns]``.
    metadata : Metadata
        Detected column sdtypes, each with its database type as ``"sql_type"``; primary keys
        and relationships from the database's constraints, or detected from names and values
        when it declares none.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> from clinsynth.io import read_sql_schema, write_sql_schema
    >>> url = "duckdb:///" + os.path.join(tempfile.mkdtemp(), "demo.duckdb")
    >>> patients = pd.DataFrame({"patient_id": [1, 2], "age": [54, 61]})
    >>> visits = pd.DataFrame({"visit_id": [10, 11, 12], "patient_id": [1, 1, 2]})
    >>> write_sql_schema({"patients": patients, "visits": visits}, url)
    >>> data, md = read_sql_schema(url)
    >>> md.relationships[0]["child_table_name"], md.tables["visits"].primary_key
    ('visits', 'visit_id')
    """
    engine, shown = _engine(url, must_exist=True)
    try:
        with _connect(engine, shown) as conn:
            backend = _backend(conn)
            available = backend.table_names(conn, schema)
            if not available:
                where = f" in schema '{schema}'" if schema else ""
                raise DataError(f"The database {shown} has no tables{where}.")
            if tables is None:
                names = available
            else:
                if isinstance(tables, str):
                    tables = [tables]
                missing = [t for t in tables if t not in available]
                if missing:
                    raise DataError(
                        f"Tables {missing} are not in the database {shown}. Tables there: "
                        f"{', '.join(available)}."
                    )
                names = list(tables)
            data = {name: _normalize(backend.read(conn, name, schema)) for name in names}
            pks, fks = backend.keys(conn, schema, names)
            types = column_types(conn, schema, names)
    finally:
        engine.dispose()
    md = _metadata(data, pks, fks)
    for name, columns in types.items():
        for column, sql_type in columns.items():
            if column in md.tables[name].columns:
                md.tables[name].columns[column]["sql_type"] = sql_type
    return data, md


def write_sql_schema(
    tables: dict[str, pd.DataFrame],
    url: str,
    *,
    metadata: Metadata | None = None,
    schema: str | None = None,
    if_exists: Literal["fail", "replace"] = "fail",
) -> None:
    """Write tables to a database with primary and foreign key constraints, in one transaction.

    Parameters
    ----------
    tables : dict of str to DataFrame
    url : str
        SQLAlchemy URL (``duckdb:///file.duckdb`` creates the file).
    metadata : Metadata, optional
        Keys and relationships; detected from the tables when None.
    schema : str, optional
        Database schema (namespace) to write into; created when it does not exist.
    if_exists : {"fail", "replace"}
        When a table already exists: raise without writing anything, or drop and recreate it.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> url = "duckdb:///" + os.path.join(tempfile.mkdtemp(), "out.duckdb")
    >>> write_sql_schema({"patients": pd.DataFrame({"patient_id": [1, 2]})}, url)
    """
    from clinsynth._extras import require

    sa = require("sqlalchemy", "Writing a SQL database")

    if if_exists not in ("fail", "replace"):
        raise ParameterError(
            f"The 'if_exists' parameter of write_sql_schema must be 'fail' or 'replace'. "
            f"Got {if_exists!r}."
        )
    md = _checked_metadata(tables, metadata)
    order = _parents_first(md, list(tables))
    engine, shown = _engine(url, must_exist=False)
    try:
        frames, types = {}, {}
        for name in order:
            frames[name], types[name] = _typed(tables[name], md.tables[name].columns, name)
        sa_md = sa.MetaData(schema=schema)
        sa_tables = {
            name: _table_ddl(sa_md, name, frames[name], md, set(order), types[name])
            for name in order
        }
        with _connect(engine, shown) as conn:
            try:
                with conn.begin():
                    _create_and_fill(
                        conn, sa_md, sa_tables, frames, order, schema, if_exists, shown
                    )
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(
                    f"Writing the tables to {shown} failed, so nothing was written (the "
                    f"transaction was rolled back): {_first_line(exc)}"
                ) from None
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                raise DataError(
                    f"Writing the tables to {shown} failed, so nothing was written (the "
                    f"transaction was rolled back): {_first_line(exc)}"
                ) from None
    finally:
        engine.dispose()


def _checked_metadata(tables: Any, metadata: Metadata | None) -> Metadata:
    """The metadata of the tables to write (detected when None), after checking both."""
    if not isinstance(tables, dict) or not all(
        isinstance(v, pd.DataFrame) for v in tables.values()
    ):
        raise DataError("write_sql_schema needs a dict of table name to pandas DataFrame.")
    md = metadata if metadata is not None else Metadata.detect_from_dataframes(tables)
    if not isinstance(md, Metadata):
        raise ParameterError(
            f"The 'metadata' parameter of write_sql_schema must be a Metadata or None. "
            f"Got {type(md).__name__}."
        )
    missing = [t for t in tables if t not in md.tables]
    if missing:
        raise DataError(f"Tables {missing} are not in the metadata; add them or leave them out.")
    return md


def _create_and_fill(
    conn: Any,
    sa_md: Any,
    sa_tables: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    order: list[str],
    schema: str | None,
    if_exists: str,
    shown: str,
) -> None:
    """Inside the transaction: the schema, the tables (existing ones refused or dropped) and
    their rows, parents first."""
    import sqlalchemy as sa

    backend = _backend(conn)
    if schema:
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    existing = set(backend.table_names(conn, schema))
    clash = [t for t in order if t in existing]
    if clash and if_exists == "fail":
        raise DataError(
            f"Tables {clash} already exist in {shown}; nothing was written. "
            "Pass if_exists='replace' to overwrite them, or write to another "
            "database or schema."
        )
    for name in reversed(order):
        if name in existing:
            sa.Table(name, sa.MetaData(schema=schema)).drop(conn)
    sa_md.create_all(conn)
    for name in order:
        backend.write(conn, sa_tables[name], frames[name])


# --------------------------------------------------------------------------- reading helpers
def _normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Driver values as pandas types: dates and times as datetime64[ns], decimals as floats,
    UUIDs as text."""
    out = {}
    for column in df.columns:
        s = df[column]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is None:
                s = s.astype("datetime64[ns]")
        elif s.dtype == object:
            first = s.dropna()
            first = first.iloc[0] if len(first) else None
            if isinstance(first, dt.datetime | dt.date) and not isinstance(first, dt.time):
                s = pd.to_datetime(s)
                if getattr(s.dt, "tz", None) is None:
                    s = s.astype("datetime64[ns]")
            elif isinstance(first, decimal.Decimal):
                s = pd.to_numeric(
                    s.astype(object)
                    .where(s.notna(), None)
                    .map(lambda v: None if v is None else float(v))
                )
            elif isinstance(first, uuid.UUID):
                s = s.map(lambda v: None if v is None else str(v))
        out[column] = s
    return pd.DataFrame(out, index=df.index)


def _metadata(data: dict[str, pd.DataFrame], pks: dict[str, str], fks: list[dict]) -> Metadata:
    from clinsynth.metadata._detect import detect_relationships, detect_table, ids_to_codes

    md = Metadata({name: detect_table(df, name) for name, df in data.items()})
    for name, pk in pks.items():
        md.tables[name].columns[pk] = {"sdtype": "id"}
        md.tables[name].primary_key = pk
    declared = [
        fk
        for fk in fks
        if fk["parent_table_name"] in data
        and md.tables[fk["parent_table_name"]].primary_key == fk["parent_primary_key"]
    ]
    if declared:
        for fk in declared:
            md.tables[fk["child_table_name"]].columns[fk["child_foreign_key"]] = {"sdtype": "id"}
        md.relationships = declared
        ids_to_codes(
            data, md, {(fk["child_table_name"], fk["child_foreign_key"]) for fk in declared}
        )
    else:
        md.relationships = detect_relationships(data, md, declared_keys=pks)
    return md


# --------------------------------------------------------------------------- writing helpers
def _parents_first(md: Metadata, names: list[str]) -> list[str]:
    parents = {n: set() for n in names}
    for rel in md.relationships:
        p, c = rel["parent_table_name"], rel["child_table_name"]
        if p != c and p in parents and c in parents:
            parents[c].add(p)
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and parents[n] <= set(order)]
        if not ready:
            raise DataError(
                "The relationships form a cycle, so no table can be written first. Remove one "
                "relationship of the cycle (Metadata.validate() names it)."
            )
        order.extend(ready)
    return order


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Column values the drivers accept: text for mixed objects, naive UTC for zoned times."""
    out = {}
    for column in df.columns:
        s = df[column]
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif s.dtype == object:
            present = s.dropna()
            if len(present) and not present.map(lambda v: isinstance(v, str)).all():
                if present.map(lambda v: isinstance(v, bool | np.bool_)).all():
                    s = s.astype("boolean")
                elif present.map(lambda v: isinstance(v, int | float | np.number)).all():
                    s = pd.to_numeric(s)
                else:
                    s = s.map(lambda v: None if v is None or v is pd.NA else str(v))
        out[str(column)] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


def _typed(
    df: pd.DataFrame, columns: dict[str, dict], table: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table's values ready to write and the recorded types of its columns (see
    :mod:`clinsynth.io._sql_types`)."""
    out, types = {}, {}
    for column in df.columns:
        spec = columns.get(str(column), {})
        where = f"Column '{column}' of table '{table}'"
        out[column], sql_type = typed_column(df[column], spec, where)
        if sql_type:
            types[str(column)] = sql_type
    return _prepare(pd.DataFrame(out, index=df.index)), types


def _sql_type(s: pd.Series) -> Any:
    import sqlalchemy as sa

    if pd.api.types.is_bool_dtype(s):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(s):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(s):
        return sa.Float(precision=53)
    if pd.api.types.is_datetime64_any_dtype(s):
        return sa.DateTime()
    return sa.Text()


def _table_ddl(
    sa_md: Any,
    name: str,
    df: pd.DataFrame,
    md: Metadata,
    written: set[str],
    types: dict[str, str],
) -> Any:
    import sqlalchemy as sa

    table = md.tables[name]
    links = {
        r["child_foreign_key"]: r
        for r in md.relationships
        if r["child_table_name"] == name
        and r["parent_table_name"] in written
        and r["parent_table_name"] != name
    }
    columns = []
    for column in df.columns:
        args: list[Any] = []
        rel = links.get(column)
        if rel is not None:
            target = f"{rel['parent_table_name']}.{rel['parent_primary_key']}"
            if sa_md.schema:
                target = f"{sa_md.schema}.{target}"
            args.append(sa.ForeignKey(target))
        is_pk = column == table.primary_key
        columns.append(
            sa.Column(
                column,
                sa_type(types[column]) if column in types else _sql_type(df[column]),
                *args,
                primary_key=is_pk,
                autoincrement=False,
                nullable=not is_pk,
            )
        )
    return sa.Table(name, sa_md, *columns)
