"""Connections to SQL databases through SQLAlchemy and the dialect backends.

The URL is checked and its driver required before connecting; every error names the URL with its
password masked. A backend reads and writes tables in bulk where the dialect allows it (DuckDB:
DataFrames natively; PostgreSQL: ``COPY``; any other dialect: batched ``INSERT``) and reads the
tables' primary and foreign keys."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any

import pandas as pd

from clinsynth.errors import DataError, ParameterError

_EXAMPLES = "duckdb:///path/to/file.duckdb or postgresql://user:password@host:5432/database"
_NULL = r"\N"
_INSERT_BATCH = 10_000


def mask_url(url: object) -> str:
    """The URL with its password replaced by ``***`` (also for URLs that do not parse).

    >>> mask_url("postgresql://ana:s3cret@db.example.org:5432/ehr")
    'postgresql://ana:***@db.example.org:5432/ehr'
    """
    import re

    try:
        import sqlalchemy as sa
    except ImportError:  # without the [sql] extra: mask by pattern
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, TypeError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def _engine(url: str, *, must_exist: bool) -> tuple[Any, str]:
    from clinsynth._extras import require

    sa = require("sqlalchemy", "Reading or writing a SQL database")

    shown = mask_url(url)
    if not isinstance(url, str | sa.engine.URL) or not str(url).strip():
        raise ParameterError(
            f"The 'url' parameter must be a database URL such as {_EXAMPLES}. Got {url!r}."
        )
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ParameterError(f"'{shown}' is not a database URL. Use {_EXAMPLES}.") from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is not None:
        # SQLAlchemy 2.1 defaults to psycopg 3; psycopg2 (a clinsynth dependency) loads rows
        # with COPY.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "duckdb":
        require("duckdb_engine", f"The DuckDB database '{shown}'")
    elif parsed.drivername == "postgresql+psycopg2" or (
        parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None
    ):
        require("psycopg2", f"The PostgreSQL database '{shown}'")
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if must_exist and not path.exists():
            raise DataError(
                f"The DuckDB file '{path}' does not exist ({shown}). Check the path; write "
                "tables there first with write_sql_schema or `clinsynth sample --sql`."
            )
        if not must_exist and not path.parent.exists():
            raise DataError(
                f"The folder of the DuckDB file '{path}' does not exist ({shown}). Create it first."
            )
    try:
        engine = sa.create_engine(parsed)
        if parsed.get_backend_name() == "sqlite":
            _transactional_ddl(engine)
    except sa.exc.NoSuchModuleError:
        raise ParameterError(
            f"'{shown}' names a database kind SQLAlchemy does not know "
            f"('{parsed.drivername}'). Use {_EXAMPLES}."
        ) from None
    except ImportError as exc:
        raise ParameterError(
            f"The database driver for '{shown}' is not installed ({exc}). Install it, e.g. "
            "pip install clinsynth[postgres] (PostgreSQL) or clinsynth[sql] (DuckDB)."
        ) from None
    return engine, shown


def _transactional_ddl(engine: Any) -> None:
    """SQLite: CREATE TABLE inside the transaction, so a rollback removes it. Python's sqlite3
    begins transactions only before data changes, so a table created by a failed write would
    stay; SQLAlchemy's recipe hands the transaction to SQLAlchemy instead."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


class _connect:
    """``engine.connect()`` whose connection failures are reported with the masked URL."""

    def __init__(self, engine: Any, shown: str) -> None:
        self.engine, self.shown, self.conn = engine, shown, None

    def __enter__(self) -> Any:
        import sqlalchemy as sa

        try:
            self.conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(
                f"Cannot connect to {self.shown}: {_first_line(exc)}. Check that the server is "
                "running and reachable, and the user, password and database name."
            ) from None
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def _is_driver_error(exc: BaseException) -> bool:
    """Errors raised by a database driver directly (the bulk paths bypass SQLAlchemy)."""
    module = type(exc).__module__ or ""
    return module.split(".")[0].lstrip("_") in ("duckdb", "psycopg2")


# --------------------------------------------------------------------------- backends
def _backend(conn: Any) -> _Backend:
    name = conn.dialect.name
    if name == "duckdb":
        return _DuckDB()
    if name == "postgresql" and conn.dialect.driver == "psycopg2":
        return _Postgres()
    return _Backend()


class _Backend:
    """Any SQLAlchemy dialect: the inspector for names and keys, batched INSERTs."""

    def table_names(self, conn: Any, schema: str | None) -> list[str]:
        import sqlalchemy as sa

        return list(sa.inspect(conn).get_table_names(schema=schema))

    def read(self, conn: Any, name: str, schema: str | None) -> pd.DataFrame:
        import sqlalchemy as sa

        query = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema))
        return pd.read_sql_query(query, conn)

    def keys(
        self, conn: Any, schema: str | None, names: list[str]
    ) -> tuple[dict[str, str], list[dict]]:
        import sqlalchemy as sa

        insp = sa.inspect(conn)
        pks: dict[str, str] = {}
        fks: list[dict] = []
        for name in names:
            cols = (insp.get_pk_constraint(name, schema=schema) or {}).get(
                "constrained_columns"
            ) or []
            if len(cols) == 1:
                pks[name] = cols[0]
            for fk in insp.get_foreign_keys(name, schema=schema):
                if len(fk["constrained_columns"]) == 1 and len(fk["referred_columns"]) == 1:
                    fks.append(
                        {
                            "parent_table_name": fk["referred_table"],
                            "parent_primary_key": fk["referred_columns"][0],
                            "child_table_name": name,
                            "child_foreign_key": fk["constrained_columns"][0],
                        }
                    )
        return pks, fks

    def write(self, conn: Any, table: Any, df: pd.DataFrame) -> None:
        records = df.astype(object).where(df.notna(), None).to_dict("records")
        for start in range(0, len(records), _INSERT_BATCH):
            conn.execute(table.insert(), records[start : start + _INSERT_BATCH])


class _DuckDB(_Backend):
    """DuckDB: DataFrames in and out natively; keys from ``duckdb_constraints()`` (its
    SQLAlchemy dialect cannot reflect them)."""

    def read(self, conn: Any, name: str, schema: str | None) -> pd.DataFrame:
        raw = conn.connection.driver_connection
        return raw.execute(f"SELECT * FROM {_qualified(conn, name, schema)}").df()

    def keys(
        self, conn: Any, schema: str | None, names: list[str]
    ) -> tuple[dict[str, str], list[dict]]:
        import sqlalchemy as sa

        rows = conn.execute(
            sa.text(
                "SELECT table_name, constraint_type, constraint_column_names, referenced_table, "
                "referenced_column_names FROM duckdb_constraints() "
                "WHERE schema_name = coalesce(:schema, current_schema())"
            ),
            {"schema": schema},
        ).fetchall()
        pks: dict[str, str] = {}
        fks: list[dict] = []
        for table, kind, cols, ref_table, ref_cols in rows:
            if table not in names or len(cols) != 1:
                continue
            if kind == "PRIMARY KEY":
                pks[table] = cols[0]
            elif kind == "FOREIGN KEY" and ref_cols and len(ref_cols) == 1:
                fks.append(
                    {
                        "parent_table_name": ref_table,
                        "parent_primary_key": ref_cols[0],
                        "child_table_name": table,
                        "child_foreign_key": cols[0],
                    }
                )
        return pks, fks

    def write(self, conn: Any, table: Any, df: pd.DataFrame) -> None:
        raw = conn.connection.driver_connection
        view = "__clinsynth_frame"
        columns = ", ".join(_quote(conn, c) for c in df.columns)
        raw.register(view, df)
        # No unregister on failure: the aborted transaction refuses it and would hide the cause
        # (the connection is discarded with the engine anyway).
        raw.execute(
            f"INSERT INTO {_qualified(conn, table.name, table.schema)} ({columns}) "
            f"SELECT {columns} FROM {view}"
        )
        raw.unregister(view)


class _Postgres(_Backend):
    """PostgreSQL with psycopg2: rows loaded with ``COPY ... FROM STDIN`` (CSV)."""

    def write(self, conn: Any, table: Any, df: pd.DataFrame) -> None:
        raw = conn.connection.driver_connection
        columns = ", ".join(_quote(conn, c) for c in df.columns)
        sql = (
            f"COPY {_qualified(conn, table.name, table.schema)} ({columns}) FROM STDIN "
            f"WITH (FORMAT csv, NULL '{_NULL}')"
        )
        with raw.cursor() as cursor:
            for start in range(0, max(len(df), 1), 200_000):
                chunk = df.iloc[start : start + 200_000]
                if len(chunk) == 0:
                    break
                buffer = io.StringIO()
                chunk.to_csv(
                    buffer,
                    index=False,
                    header=False,
                    na_rep=_NULL,
                    quoting=csv.QUOTE_MINIMAL,
                    date_format="%Y-%m-%d %H:%M:%S.%f",
                )
                buffer.seek(0)
                cursor.copy_expert(sql, buffer)


def _quote(conn: Any, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _qualified(conn: Any, name: str, schema: str | None) -> str:
    quoted = _quote(conn, name)
    return f"{_quote(conn, schema)}.{quoted}" if schema else quoted
