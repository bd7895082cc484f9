"""One table streamed into a SQL database chunk by chunk; nothing partial left on failure.

``clinsynth sample model -n N --sql URL`` hands its chunks to :func:`write_sql_chunks`: the table
is created from the first chunk (column types as :func:`~clinsynth.io.write_sql_schema` gives
them, the primary key as a constraint) and every chunk is loaded with the backend's bulk path
(DuckDB's DataFrame insert, PostgreSQL's ``COPY``, batched ``INSERT`` elsewhere) as it arrives,
so clinsynth holds one chunk, not the table.

How the table appears only once complete depends on where the database keeps what is not
committed yet:

* **PostgreSQL and SQLite**: one transaction. PostgreSQL keeps it on the server, SQLite in its
  journal on disk; a failure rolls it back and no table is left under the name.
* **DuckDB** keeps an open transaction's rows in the process (measured 2.9 GB at 2.6M rows of 50
  columns; ``memory_limit`` did not bound it). The rows go instead into a **staging table** with
  a hidden unique name (``__clinsynth_staging_<table>_<random>``, same schema), committed chunk by
  chunk so DuckDB can write them out; at the end one short transaction renames it to the target
  name (refusing if that name appeared meanwhile). On a failure (the sampling's, the database's,
  ``KeyboardInterrupt``) the staging table is dropped. Only a killed process leaves one behind,
  under its recognisable name (docs/BENCHMARKS.md, "#19 scale").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from clinsynth.errors import DataError
from clinsynth.io._sql import _table_ddl, _typed
from clinsynth.io._sql_engine import (
    _backend,
    _connect,
    _engine,
    _first_line,
    _is_driver_error,
    _qualified,
    _quote,
)
from clinsynth.metadata import Metadata

#: Prefix of the staging tables (DuckDB); a leftover one comes from a killed run.
STAGING_PREFIX = "__clinsynth_staging_"


def write_sql_chunks(
    chunks: Iterable[pd.DataFrame],
    url: str,
    *,
    table_name: str,
    metadata: Metadata,
    schema: str | None = None,
    num_rows: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Create ``table_name`` in the database at ``url`` from ``chunks``; return the rows written.

    The table must not exist yet (checked before the first chunk is drawn) and appears only
    once every chunk is in: in one transaction (PostgreSQL, SQLite) or through a staging table
    renamed at the end (DuckDB). ``progress(total, written, message)`` is called after each
    chunk when given; ``before_commit()`` after the last chunk and before the table is made
    visible: if it raises, nothing is written.

    Examples
    --------
    >>> import os, tempfile
    >>> from clinsynth import Metadata
    >>> frames = [pd.DataFrame({"patient_id": [1, 2]}), pd.DataFrame({"patient_id": [3]})]
    >>> md = Metadata.detect_from_dataframe(pd.concat(frames), table_name="patients")
    >>> url = "duckdb:///" + os.path.join(tempfile.mkdtemp(), "out.duckdb")
    >>> write_sql_chunks(iter(frames), url, table_name="patients", metadata=md)
    3
    """
    import sqlalchemy as sa

    if table_name not in metadata.tables:
        raise DataError(f"Table '{table_name}' is not in the metadata; nothing was written.")
    engine, shown = _engine(url, must_exist=False)
    job = _Job(table_name, schema, metadata, shown, num_rows, progress, before_commit)
    try:
        with _connect(engine, shown) as conn:
            backend = _backend(conn)
            staged = conn.dialect.name == "duckdb"
            failed = f"Writing table '{table_name}' to {shown} failed, so nothing was written"
            failed += " (the staging table was dropped)" if staged else " (rolled back)"
            try:
                if staged:
                    return _load_staged(conn, backend, chunks, job)
                with conn.begin():
                    _check_absent(conn, backend, job)
                    return _load(conn, backend, chunks, job, table_name)
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(f"{failed}: {_first_line(exc)}") from None
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise  # the sampling's own error, after the rollback
                raise DataError(f"{failed}: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def drop_sql_table(url: str, table_name: str, schema: str | None = None) -> None:
    """Drop ``table_name`` (undoes a committed :func:`write_sql_chunks` when what was written
    beside it failed at the very end)."""
    import sqlalchemy as sa

    engine, _ = _engine(url, must_exist=True)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {_qualified(conn, table_name, schema)}"))
    finally:
        engine.dispose()


class _Job:
    """What one run writes: the target table and the callbacks."""

    def __init__(
        self,
        name: str,
        schema: str | None,
        metadata: Metadata,
        shown: str,
        num_rows: int | None,
        progress: Callable[[int, int, str], None] | None,
        before_commit: Callable[[], None] | None,
    ) -> None:
        self.name, self.schema, self.metadata, self.shown = name, schema, metadata, shown
        self.columns = metadata.tables[name].columns
        self.num_rows, self.progress, self.before_commit = num_rows, progress, before_commit


def _check_absent(conn: Any, backend: Any, job: _Job, *, meanwhile: bool = False) -> None:
    """Create the schema if needed; refuse a target table that exists."""
    import sqlalchemy as sa

    if job.schema and not meanwhile:
        conn.execute(sa.schema.CreateSchema(job.schema, if_not_exists=True))
    if job.name in backend.table_names(conn, job.schema):
        when = "appeared while the rows were loaded" if meanwhile else "already exists"
        raise DataError(
            f"Table '{job.name}' {when} in {job.shown}; nothing was written. Drop it first, or "
            "write to another database or --schema."
        )


def _load(conn: Any, backend: Any, chunks: Iterable[pd.DataFrame], job: _Job, as_name: str) -> int:
    """Create the table ``as_name`` from the first chunk and load every chunk; with a staging
    table (``as_name`` differs from the target's name) each chunk is committed on its own."""
    import sqlalchemy as sa

    staged = as_name != job.name
    table, rows = None, 0
    for chunk in chunks:
        frame, types = _typed(chunk, job.columns, job.name)
        if staged:
            conn.begin()
        if table is None:
            sa_md = sa.MetaData(schema=job.schema)
            ddl = _table_ddl(sa_md, job.name, frame, job.metadata, {job.name}, types)
            table = ddl if not staged else ddl.to_metadata(sa.MetaData(), name=as_name)
            table.create(conn)
        if len(frame):
            backend.write(conn, table, frame)
        if staged:
            conn.commit()
        rows += len(frame)
        if job.progress is not None:
            job.progress(job.num_rows or rows, rows, "writing to the database")
    if table is None:
        raise DataError(f"No rows came for table '{job.name}'; nothing was written.")
    if job.before_commit is not None:
        job.before_commit()
    return rows


def _load_staged(conn: Any, backend: Any, chunks: Iterable[pd.DataFrame], job: _Job) -> int:
    """Load into a staging table committed chunk by chunk, then rename it to the target."""
    staging = f"{STAGING_PREFIX}{job.name[:24]}_{uuid.uuid4().hex[:12]}"
    with conn.begin():
        _check_absent(conn, backend, job)
    try:
        rows = _load(conn, backend, chunks, job, staging)
        with conn.begin():
            _check_absent(conn, backend, job, meanwhile=True)
            conn.exec_driver_sql(
                f"ALTER TABLE {_qualified(conn, staging, job.schema)} "
                f"RENAME TO {_quote(conn, job.name)}"
            )
    except BaseException as exc:
        _drop_staging(conn, staging, job, exc)
        raise
    return rows


def _drop_staging(conn: Any, staging: str, job: _Job, cause: BaseException) -> None:
    """Drop the staging table after a failure; if that fails too, say which table to drop."""
    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_qualified(conn, staging, job.schema)}")
    except Exception as exc:
        if not isinstance(cause, Exception):
            return  # KeyboardInterrupt: let it through; the name is recognisable
        raise DataError(
            f"Writing table '{job.name}' to {job.shown} failed ({_first_line(cause)}), and its "
            f"staging table '{staging}' could not be dropped ({_first_line(exc)}). Drop it by "
            "hand."
        ) from None
