"""A table streamed into a database chunk by chunk: one transaction (a staging table on
DuckDB), nothing left on failure."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from clinsynth import Metadata
from clinsynth.errors import DataError
from clinsynth.io._sql_stream import STAGING_PREFIX, drop_sql_table, write_sql_chunks

POSTGRES_URL = os.environ.get("CLINSYNTH_TEST_POSTGRES_URL", "")


def chunks(n_chunks: int = 4, rows: int = 50, fail_at: int | None = None):
    rng = np.random.default_rng(0)
    for i in range(n_chunks):
        if i == fail_at:
            raise RuntimeError("sampling broke mid-run")
        ids = np.arange(i * rows, (i + 1) * rows) + 1
        yield pd.DataFrame(
            {
                "pid": ids,
                "age": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(60, 10, rows).round(1)),
                "sex": rng.choice(["F", "M"], rows),
                "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(ids, unit="D"),
            }
        )


def metadata() -> Metadata:
    md = Metadata.detect_from_dataframe(pd.concat(chunks()), "patients", discover_rules=False)
    md.set_primary_key("pid", table_name="patients")
    return md


def urls(tmp_path):
    out = [f"duckdb:///{tmp_path / 'o.duckdb'}", f"sqlite:///{tmp_path / 'o.sqlite'}"]
    return out + ([POSTGRES_URL] if POSTGRES_URL else [])


def read(url: str, table: str, schema: str | None = None) -> pd.DataFrame:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.connect() as conn:
            query = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema))
            return pd.read_sql_query(query, conn)
    finally:
        engine.dispose()


def tables(url: str, schema: str | None = None) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        return sa.inspect(engine).get_table_names(schema=schema)
    finally:
        engine.dispose()


def test_chunks_land_in_one_table_with_progress(tmp_path):
    for url in urls(tmp_path):
        schema = f"s{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
        seen: list[tuple[int, int]] = []

        def record(total, done, message, seen=seen):
            seen.append((total, done))

        rows = write_sql_chunks(
            chunks(),
            url,
            table_name="patients",
            metadata=metadata(),
            schema=schema,
            num_rows=200,
            progress=record,
        )
        assert rows == 200 and seen == [(200, 50), (200, 100), (200, 150), (200, 200)]
        back = read(url, "patients", schema).sort_values("pid", ignore_index=True)
        expected = pd.concat(chunks(), ignore_index=True)
        assert back["pid"].tolist() == expected["pid"].tolist()
        assert back["age"].isna().sum() == expected["age"].isna().sum()
        np.testing.assert_allclose(back["age"].dropna(), expected["age"].dropna())
        assert pd.to_datetime(back["seen"]).tolist() == expected["seen"].tolist()


def test_failure_mid_stream_leaves_no_table(tmp_path):
    for url in urls(tmp_path):
        schema = f"s{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
        with pytest.raises(RuntimeError, match="broke mid-run"):
            write_sql_chunks(
                chunks(fail_at=2), url, table_name="patients", metadata=metadata(), schema=schema
            )
        assert "patients" not in tables(url, schema)


def test_database_error_mid_stream_rolls_back(tmp_path):
    # A duplicate primary key in the third chunk: the database refuses it, the two chunks
    # already loaded go with the rollback.
    def duplicated():
        for i, chunk in enumerate(chunks()):
            yield chunk.assign(pid=chunk["pid"] - 50) if i == 2 else chunk

    url = f"duckdb:///{tmp_path / 'o.duckdb'}"
    with pytest.raises(DataError, match="nothing was written"):
        write_sql_chunks(duplicated(), url, table_name="patients", metadata=metadata())
    assert "patients" not in tables(url)


def test_existing_table_is_refused_before_sampling(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.sqlite'}"
    write_sql_chunks(chunks(), url, table_name="patients", metadata=metadata())
    drawn = []

    def watched():
        for chunk in chunks():
            drawn.append(len(chunk))
            yield chunk

    with pytest.raises(DataError, match="already exists"):
        write_sql_chunks(watched(), url, table_name="patients", metadata=metadata())
    assert drawn == []
    assert len(read(url, "patients")) == 200


def duck(tmp_path) -> str:
    return f"duckdb:///{tmp_path / 'o.duckdb'}"


def duck_constraints(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT table_name, constraint_type FROM duckdb_constraints()"
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_duckdb_loads_through_a_staging_table_renamed_at_the_end(tmp_path):
    # While the rows load, the target name does not exist yet (the staging table holds them,
    # committed chunk by chunk); at the end only the target remains, with its primary key.
    url, seen = duck(tmp_path), []

    def watched():
        for chunk in chunks():
            yield chunk
            seen.append(tables(url))  # a second connection (same process: same database)

    assert write_sql_chunks(watched(), url, table_name="patients", metadata=metadata()) == 200
    assert all(len(names) == 1 and names[0].startswith(STAGING_PREFIX) for names in seen[:3])
    assert tables(url) == ["patients"]
    assert ("patients", "PRIMARY KEY") in duck_constraints(url)
    assert read(url, "patients")["pid"].tolist() == list(range(1, 201))


@pytest.mark.parametrize("interrupt", [RuntimeError("sampling broke"), KeyboardInterrupt()])
def test_duckdb_failure_drops_the_staging_table(tmp_path, interrupt):
    def broken():
        yield from chunks(n_chunks=2)
        raise interrupt

    url = duck(tmp_path)
    with pytest.raises(type(interrupt)):
        write_sql_chunks(broken(), url, table_name="patients", metadata=metadata())
    assert tables(url) == []


def test_duckdb_target_created_meanwhile_is_refused(tmp_path):
    url = duck(tmp_path)

    def racing():
        yield from chunks(n_chunks=2)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE patients (other INTEGER)"))
        engine.dispose()

    with pytest.raises(DataError, match="appeared while the rows were loaded"):
        write_sql_chunks(racing(), url, table_name="patients", metadata=metadata())
    assert tables(url) == ["patients"]
    assert list(read(url, "patients").columns) == ["other"]


def test_before_commit_failure_writes_nothing(tmp_path):
    def refuse():
        raise OSError("the file beside it could not be finished")

    for url in urls(tmp_path):
        schema = f"s{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
        with pytest.raises(OSError, match="could not be finished"):
            write_sql_chunks(
                chunks(),
                url,
                table_name="patients",
                metadata=metadata(),
                schema=schema,
                before_commit=refuse,
            )
        assert tables(url, schema) == []


def test_drop_sql_table_removes_a_written_table(tmp_path):
    url = duck(tmp_path)
    write_sql_chunks(chunks(), url, table_name="patients", metadata=metadata())
    drop_sql_table(url, "patients")
    assert tables(url) == []
