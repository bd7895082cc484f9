"""A table streamed into a database chunk by chunk: one transaction, nothing left on failure."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from clinsynth import Metadata
from clinsynth.errors import DataError
from clinsynth.io._sql_stream import write_sql_chunks

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
