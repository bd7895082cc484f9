import numpy as np
import pandas as pd

from clinsynth import Metadata
from clinsynth.metadata import detect_column


def test_detects_every_kind():
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame(
        {
            "patient_id": np.arange(n),
            "age": rng.normal(60, 10, n).round(1),
            "heart_rate": rng.integers(50, 120, n),
            "flag": rng.integers(0, 2, n),  # a 0/1 code
            "nyha": rng.integers(1, 5, n),  # few numeric levels
            "sex": rng.choice(["F", "M"], n),
            "active": rng.random(n) < 0.5,
            "visit_date": pd.Series(pd.date_range("2021-01-01", periods=n).strftime("%d/%m/%Y")),
            "admitted_at": pd.date_range("2021-01-01", periods=n, freq="h"),
            "email": [f"user{i}@example.com" for i in range(n)],
            "ssn": [f"{100 + i:03d}-12-{1000 + i}" for i in range(n)],
            "phone": [f"+1 (555) 010-{1000 + i}" for i in range(n)],
            "first_name": rng.choice(["Ann", "Bob", "Cid"], n),
            "address": [f"{i} Main Street" for i in range(n)],
            "mrn": [f"MRN{100000 + i}" for i in range(n)],
            "notes": [
                f"patient reports mild symptoms on day {i} after the procedure" for i in range(n)
            ],
            "empty": [None] * n,
            "uuid_col": [f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}" for i in range(n)],
            "icd_code": rng.choice([401, 250, 428, 496, 585, 272, 530, 414, 427, 244, 715, 311], n),
        }
    )
    md = Metadata.detect_from_dataframe(df)
    got = {c: s["sdtype"] for c, s in md.columns.items()}
    assert got == {
        "patient_id": "id",
        "age": "numerical",
        "heart_rate": "numerical",
        "flag": "categorical",
        "nyha": "categorical",
        "sex": "categorical",
        "active": "boolean",
        "visit_date": "datetime",
        "admitted_at": "datetime",
        "email": "email",
        "ssn": "ssn",
        "phone": "phone_number",
        "first_name": "name",
        "address": "address",
        "mrn": "mrn",
        "notes": "text",
        "empty": "unknown",
        "uuid_col": "id",
        "icd_code": "categorical",
    }
    assert md.primary_key == "patient_id"
    assert md.columns["heart_rate"]["computer_representation"] == "Int64"
    assert md.columns["age"]["computer_representation"] == "Float"
    assert md.columns["visit_date"]["datetime_format"] == "%d/%m/%Y"


def test_mostly_numeric_text_with_stray_values_is_categorical_and_says_why(caplog):
    """Detection never returns metadata its own data fails: stray text that is not a
    missing-value marker makes the column categorical, with a warning naming a value."""
    values = pd.Series([str(v) for v in range(100)] + ["<5"] * 3, dtype=object)
    with caplog.at_level("WARNING", logger="clinsynth"):
        assert detect_column("age", values) == {"sdtype": "categorical"}
    assert "'<5'" in caplog.text and "mostly numbers" in caplog.text
    words = pd.Series([str(v) for v in range(100)] + ["unknown"] * 3, dtype=object)
    spec = detect_column("age", words)  # a word that means missing in a column of numbers
    assert spec["sdtype"] == "numerical" and spec["missing_values"] == ["unknown"]


def test_words_ending_in_id_are_not_keys():
    s = pd.Series(np.arange(100) * 1.5)
    assert detect_column("acid", s)["sdtype"] == "numerical"
    assert detect_column("fluid", s)["sdtype"] == "numerical"
    assert detect_column("visitId", pd.Series(np.arange(100)))["sdtype"] == "id"


def test_detect_from_csvs_finds_relationship(tmp_path):
    pd.DataFrame({"patient_id": [1, 2, 3], "age": [50, 60, 70]}).to_csv(
        tmp_path / "patients.csv", index=False
    )
    pd.DataFrame({"visit_id": [10, 11, 12, 13], "patient_id": [1, 1, 2, 3]}).to_csv(
        tmp_path / "visits.csv", index=False
    )
    md = Metadata.detect_from_csvs(tmp_path)
    assert md.table_names == ["patients", "visits"]
    assert md.relationships == [
        {
            "parent_table_name": "patients",
            "parent_primary_key": "patient_id",
            "child_table_name": "visits",
            "child_foreign_key": "patient_id",
        }
    ]
