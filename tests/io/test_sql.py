"""Whole schemas in and out of SQL databases: DuckDB (embedded) and a real PostgreSQL server.

The PostgreSQL tests run against the server `make test` starts on loopback
(scripts/postgres.sh); they are skipped only when CLINSYNTH_TEST_POSTGRES_URL is not set.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from clinsynth import Metadata
from clinsynth.errors import ClinsynthError, DataError, ParameterError
from clinsynth.io import mask_url, read_sql_schema, write_sql_schema
from clinsynth.multitable import HMASynthesizer

POSTGRES_URL = os.environ.get("CLINSYNTH_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="CLINSYNTH_TEST_POSTGRES_URL is not set: run `make test` (it starts PostgreSQL with "
    "scripts/postgres.sh) or export the URL of a PostgreSQL test database.",
)


def schema(n: int = 40, seed: int = 0) -> tuple[dict[str, pd.DataFrame], Metadata]:
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1),
            "sex": rng.choice(["F", "M"], n),
            "birth_date": pd.to_datetime("1950-01-01")
            + pd.to_timedelta(rng.integers(0, 20000, n), unit="D"),
            "smoker": rng.random(n) < 0.3,
            "weight": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.normal(75, 10, n), 1)),
        }
    )
    count = rng.integers(0, 4, n)
    v = int(count.sum())
    visits = pd.DataFrame(
        {
            "visit_code": [f"V{i:05d}" for i in range(v)],
            "patient_id": np.repeat(patients["patient_id"].to_numpy(), count),
            "admitted": pd.to_datetime("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 300 * 24, v), unit="h"),
            "note": rng.choice(["routine", "follow-up, urgent", 'said "ok"', None], v),
            "cost": rng.gamma(2.0, 150.0, v),
        }
    )
    tables = {"patients": patients, "visits": visits}
    md = Metadata.detect_from_dataframes(tables)
    md.update_column("note", table_name="visits", sdtype="categorical")
    md.update_column("visit_code", table_name="visits", sdtype="id")
    md.set_primary_key("visit_code", table_name="visits")
    return tables, md


def assert_same(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert set(got) == set(expected)
    for name, df in expected.items():
        key = df.columns[0]
        a = got[name][list(df.columns)].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, df.reset_index(drop=True), check_dtype=False)


def duck_url(tmp_path, name: str = "db.duckdb") -> str:
    return f"duckdb:///{tmp_path / name}"


def test_duckdb_round_trip_keeps_values_keys_and_relationships(tmp_path):
    tables, md = schema()
    url = duck_url(tmp_path)
    write_sql_schema(tables, url, metadata=md)
    got, got_md = read_sql_schema(url)
    assert_same(got, tables)
    assert got_md.tables["visits"].primary_key == "visit_code"
    assert got_md.tables["patients"].primary_key == "patient_id"
    assert got_md.relationships == md.relationships
    assert pd.api.types.is_datetime64_any_dtype(got["visits"]["admitted"])
    assert pd.api.types.is_bool_dtype(got["patients"]["smoker"])


def test_keys_come_from_the_database_constraints(tmp_path):
    """Names that detection would not link are read from the declared foreign key."""
    url = duck_url(tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE ward (code VARCHAR PRIMARY KEY, beds INTEGER)"))
        conn.execute(
            sa.text(
                "CREATE TABLE stay (sid INTEGER PRIMARY KEY,"
                " location VARCHAR REFERENCES ward(code), days INTEGER)"
            )
        )
        conn.execute(sa.text("INSERT INTO ward VALUES ('A', 10), ('B', 20)"))
        conn.execute(sa.text("INSERT INTO stay VALUES (1, 'A', 3), (2, 'B', 1), (3, 'A', 7)"))
    engine.dispose()
    got, md = read_sql_schema(url, tables=["ward", "stay"])
    assert md.relationships == [
        {
            "parent_table_name": "ward",
            "parent_primary_key": "code",
            "child_table_name": "stay",
            "child_foreign_key": "location",
        }
    ]
    assert md.tables["stay"].primary_key == "sid"
    assert md.tables["stay"].columns["location"]["sdtype"] == "id"


def test_without_constraints_keys_are_detected(tmp_path):
    url = duck_url(tmp_path)
    tables, _ = schema()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, df in tables.items():
            raw = conn.connection.driver_connection
            raw.register("frame", df)
            raw.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            raw.unregister("frame")
    engine.dispose()
    _, md = read_sql_schema(url)
    assert md.tables["patients"].primary_key == "patient_id"
    assert [(r["parent_table_name"], r["child_foreign_key"]) for r in md.relationships] == [
        ("patients", "patient_id")
    ]


def test_declared_primary_keys_are_kept_and_the_links_detected(tmp_path):
    """Primary keys declared, no foreign key (a common dump): links come from the values."""
    url = duck_url(tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # 'code' would be detected as the key of ward (named like one); the database says 'nr'.
        conn.execute(sa.text("CREATE TABLE ward (nr INTEGER PRIMARY KEY, ward_code VARCHAR)"))
        conn.execute(sa.text("CREATE TABLE stay (stay_id INTEGER PRIMARY KEY, ward_nr INTEGER)"))
        conn.execute(sa.text("INSERT INTO ward SELECT i, 'W' || i FROM range(1, 31) t(i)"))
        conn.execute(sa.text("INSERT INTO stay SELECT i, 1 + i % 30 FROM range(1, 301) t(i)"))
    engine.dispose()
    _, md = read_sql_schema(url)
    assert md.tables["ward"].primary_key == "nr"
    assert md.detection["tables"]["ward"]["how"] == "declared"
    assert md.tables["stay"].primary_key == "stay_id"
    assert [(r["parent_table_name"], r["child_foreign_key"]) for r in md.relationships] == [
        ("ward", "ward_nr")
    ]


def test_existing_tables_fail_or_are_replaced(tmp_path):
    tables, md = schema()
    url = duck_url(tmp_path)
    write_sql_schema(tables, url, metadata=md)
    smaller, _ = schema(n=10, seed=1)
    with pytest.raises(DataError, match=r"Tables \['patients', 'visits'\] already exist"):
        write_sql_schema(smaller, url, metadata=md)
    assert len(read_sql_schema(url)[0]["patients"]) == 40
    write_sql_schema(smaller, url, metadata=md, if_exists="replace")
    assert_same(read_sql_schema(url)[0], smaller)


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    tables, md = schema()
    url = duck_url(tmp_path)
    broken = dict(tables)
    broken["visits"] = tables["visits"].assign(patient_id=tables["visits"]["patient_id"] + 1000)
    with pytest.raises(DataError, match="nothing was written") as info:
        write_sql_schema(broken, url, metadata=md)
    assert "foreign key" in str(info.value).lower()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_clear_errors_with_the_password_masked(tmp_path):
    assert mask_url("postgresql://ana:s3cret@db:5432/x") == "postgresql://ana:***@db:5432/x"
    with pytest.raises(ParameterError, match="not a database URL"):
        read_sql_schema("not a url")
    with pytest.raises(ParameterError, match="does not know") as info:
        read_sql_schema("nosuchdb://ana:s3cret@host/db")
    assert "s3cret" not in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        read_sql_schema(duck_url(tmp_path, "missing.duckdb"))
    tables, md = schema()
    url = duck_url(tmp_path)
    write_sql_schema(tables, url, metadata=md)
    with pytest.raises(DataError, match=r"\['labs'\] are not in the database.*patients, visits"):
        read_sql_schema(url, tables=["patients", "labs"])
    with pytest.raises(ParameterError, match="if_exists"):
        write_sql_schema(tables, url, if_exists="append")


def test_unreachable_server_is_reported_without_the_password():
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    with pytest.raises(
        DataError, match="Cannot connect to postgresql://ana:\\*\\*\\*@127.0.0.1:1/"
    ) as info:
        read_sql_schema("postgresql://ana:s3cret@127.0.0.1:1/clinsynth")
    assert "s3cret" not in str(info.value)
    assert isinstance(info.value, ClinsynthError)


def test_schema_from_duckdb_synthesized_and_written_back(tmp_path):
    tables, md = schema(n=80)
    source, target = duck_url(tmp_path, "real.duckdb"), duck_url(tmp_path, "synthetic.duckdb")
    write_sql_schema(tables, source, metadata=md)
    data, read_md = read_sql_schema(source)
    synthetic = HMASynthesizer(read_md, random_state=0).fit(data).sample(scale=0.5)
    write_sql_schema(synthetic, target, metadata=read_md)
    back, back_md = read_sql_schema(target)
    assert len(back["patients"]) == 40
    assert back["visits"]["patient_id"].isin(back["patients"]["patient_id"]).all()
    assert back_md.relationships == read_md.relationships


@pytest.fixture()
def pg_schema():
    """A fresh PostgreSQL schema (namespace) per test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


@needs_postgres
def test_postgres_round_trip_reads_keys_from_constraints(pg_schema):
    tables, md = schema()
    write_sql_schema(tables, POSTGRES_URL, metadata=md, schema=pg_schema)
    got, got_md = read_sql_schema(POSTGRES_URL, schema=pg_schema)
    assert_same(got, tables)
    assert got_md.tables["visits"].primary_key == "visit_code"
    assert got_md.relationships == md.relationships
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.connect() as conn:
        fks = sa.inspect(conn).get_foreign_keys("visits", schema=pg_schema)
    engine.dispose()
    assert fks[0]["referred_table"] == "patients"


@needs_postgres
def test_postgres_failed_write_rolls_back_and_replace_works(pg_schema):
    tables, md = schema()
    broken = dict(tables)
    broken["visits"] = tables["visits"].assign(patient_id=tables["visits"]["patient_id"] + 1000)
    with pytest.raises(DataError, match="nothing was written"):
        write_sql_schema(broken, POSTGRES_URL, metadata=md, schema=pg_schema)
    with pytest.raises(DataError, match="has no tables"):
        read_sql_schema(POSTGRES_URL, schema=pg_schema)
    write_sql_schema(tables, POSTGRES_URL, metadata=md, schema=pg_schema)
    with pytest.raises(DataError, match="already exist"):
        write_sql_schema(tables, POSTGRES_URL, metadata=md, schema=pg_schema)
    smaller, _ = schema(n=12, seed=3)
    write_sql_schema(smaller, POSTGRES_URL, metadata=md, schema=pg_schema, if_exists="replace")
    assert_same(read_sql_schema(POSTGRES_URL, schema=pg_schema)[0], smaller)


@needs_postgres
def test_postgres_schema_synthesized_end_to_end(pg_schema):
    tables, md = schema(n=60)
    write_sql_schema(tables, POSTGRES_URL, metadata=md, schema=pg_schema)
    data, read_md = read_sql_schema(POSTGRES_URL, schema=pg_schema)
    synthetic = HMASynthesizer(read_md, random_state=0).fit(data).sample()
    write_sql_schema(
        synthetic, POSTGRES_URL, metadata=read_md, schema=pg_schema, if_exists="replace"
    )
    back, _ = read_sql_schema(POSTGRES_URL, schema=pg_schema)
    assert back["visits"]["patient_id"].isin(back["patients"]["patient_id"]).all()
    assert back["visits"]["visit_code"].is_unique
