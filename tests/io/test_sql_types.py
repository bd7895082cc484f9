"""Column types kept through SQL: read, synthesize, write into another schema, same types.

The PostgreSQL test runs against the server `make test` starts (scripts/postgres.sh); it is
skipped only when CLINSYNTH_TEST_POSTGRES_URL is not set.
"""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from clinsynth import Metadata
from clinsynth.cli import main
from clinsynth.errors import DataError
from clinsynth.io import read_sql_schema, write_sql_schema
from clinsynth.multitable import HMASynthesizer

POSTGRES_URL = os.environ.get("CLINSYNTH_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="CLINSYNTH_TEST_POSTGRES_URL is not set: run `make test` (it starts PostgreSQL with "
    "scripts/postgres.sh) or export the URL of a PostgreSQL test database.",
)

_TABLES = [
    "CREATE TABLE {s}.patients (patient_id INTEGER PRIMARY KEY, age SMALLINT, birth DATE, "
    "weight NUMERIC(5,1), score DOUBLE PRECISION, ratio REAL, smoker BOOLEAN, sex VARCHAR(1), "
    "ward TEXT, admitted TIMESTAMP, counter BIGINT)",
    "CREATE TABLE {s}.visits (visit_id BIGINT PRIMARY KEY, "
    "patient_id INTEGER REFERENCES {s}.patients(patient_id), visit_date DATE, "
    "cost NUMERIC(10,2))",
]
_ROWS = [
    "INSERT INTO {s}.patients SELECT i, 20 + i % 60, "
    "DATE '1950-01-01' + CAST(i * 37 % 20000 AS INTEGER), 50 + (i % 40) * 1.5, i * 0.37, "
    "i * 0.5, i % 3 = 0, CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END, 'ward ' || (i % 5), "
    "TIMESTAMP '2020-01-01 08:00:00' + CAST(i * 7 AS INTEGER) * INTERVAL '1 hour', "
    "CAST(i AS BIGINT) * 1000000000 FROM generate_series(1, 120) t(i)",
    "INSERT INTO {s}.visits SELECT i, 1 + i % 120, DATE '2021-01-01' + CAST(i % 300 AS INTEGER), "
    "(i % 97) * 10.25 FROM generate_series(1, 360) t(i)",
]
_TYPES = (
    "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, "
    "numeric_scale FROM information_schema.columns WHERE table_schema = :schema "
    "ORDER BY table_name, ordinal_position"
)


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def _create(url: str, schema: str) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        for sql in _TABLES + _ROWS:
            conn.execute(sa.text(sql.format(s=schema)))
    engine.dispose()


def _types(url: str, schema: str) -> list[tuple]:
    engine = _engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_TYPES), {"schema": schema}).fetchall()
    engine.dispose()
    return [tuple(r)[1:] for r in rows]


def test_duckdb_types_survive_read_synthesize_write(tmp_path):
    url = f"duckdb:///{tmp_path / 'ehr.duckdb'}"
    _create(url, "clinical")
    data, md = read_sql_schema(url, schema="clinical")
    columns = md.tables["patients"].columns
    assert columns["age"]["sql_type"] == "smallint"
    assert columns["birth"]["sql_type"] == "date" and columns["birth"]["sdtype"] == "datetime"
    assert columns["weight"]["sql_type"] == "numeric(5,1)"
    synthetic = HMASynthesizer(md, random_state=0).fit(data).sample()
    write_sql_schema(synthetic, url, metadata=md, schema="synthetic")  # created: it is new
    expected = _types(url, "clinical")
    assert len(expected) == 15 and _types(url, "synthetic") == expected
    back, _ = read_sql_schema(url, schema="synthetic")
    assert (back["patients"]["birth"] == back["patients"]["birth"].dt.floor("D")).all()


def test_text_dates_are_parsed_with_the_metadata_format_and_written_as_dates(tmp_path):
    visits = pd.DataFrame(
        {
            "visit_id": [1, 2, 3],
            "seen": ["31/01/2024", "01/02/2024", None],
            "stamp": ["2024-01-31 08:15", "2024-02-01 17:00", "2024-02-03 09:30"],
        }
    )
    md = Metadata.detect_from_dataframes({"visits": visits})
    assert md.tables["visits"].columns["seen"]["datetime_format"] == "%d/%m/%Y"
    url = f"duckdb:///{tmp_path / 'out.duckdb'}"
    write_sql_schema({"visits": visits}, url, metadata=md)
    types = {column: kind for column, kind, *_ in _types(url, "main")}
    assert types == {"visit_id": "BIGINT", "seen": "DATE", "stamp": "TIMESTAMP"}
    back, _ = read_sql_schema(url)
    assert back["visits"]["seen"].tolist()[:2] == [
        pd.Timestamp("2024-01-31"),
        pd.Timestamp("2024-02-01"),
    ]
    assert back["visits"]["stamp"][0] == pd.Timestamp("2024-01-31 08:15")
    bad = visits.assign(seen=["31/01/2024", "2024-02-01", "soon"])
    with pytest.raises(DataError, match=r"'seen' of table 'visits'.*2 values do not parse"):
        write_sql_schema({"visits": bad}, f"duckdb:///{tmp_path / 'bad.duckdb'}", metadata=md)
    assert (
        not (tmp_path / "bad.duckdb").exists()
        or _types(f"duckdb:///{tmp_path / 'bad.duckdb'}", "main") == []
    )


def test_schema_needs_a_database(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "x.csv"), "--schema", "clinical", "-o", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--sql" in err


@needs_postgres
def test_postgres_round_trip_with_schema_keeps_every_column_type(tmp_path):
    source, target = f"s_{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:8]}"
    _create(POSTGRES_URL, source)
    try:
        model = tmp_path / "model"
        assert main(["fit", "--sql", POSTGRES_URL, "--schema", source, "-o", str(model), "-q"]) == 0
        assert main(["sample", str(model), "--sql", POSTGRES_URL, "--schema", target, "-q"]) == 0
        expected = _types(POSTGRES_URL, source)
        assert len(expected) == 15 and _types(POSTGRES_URL, target) == expected
        kinds = {column: kind for column, kind, *_ in expected}
        assert kinds["birth"] == "date" and kinds["age"] == "smallint"
        back, md = read_sql_schema(POSTGRES_URL, schema=target)
        assert back["visits"]["patient_id"].isin(back["patients"]["patient_id"]).all()
        assert md.relationships[0]["child_foreign_key"] == "patient_id"
    finally:
        engine = _engine(POSTGRES_URL)
        with engine.begin() as conn:
            for schema in (source, target):
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
