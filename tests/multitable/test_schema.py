"""Multi-table metadata and the shapes of real schemas: SDV JSON, detection, validation,
orphans, empty columns, reference tables, secondary parents, self-references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.errors import DataError, MetadataError
from clinsynth.multitable import HMASynthesizer

from .mt_data import hospital_metadata, make_hospital

SDV_JSON = {
    "METADATA_SPEC_VERSION": "V1",
    "tables": {
        "patients": {
            "primary_key": "patient_id",
            "columns": {
                "patient_id": {"sdtype": "id", "regex_format": "[0-9]{5}"},
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "stage": {"sdtype": "categorical", "order": ["I", "II", "III"]},
                "email": {"sdtype": "email", "pii": True},
            },
        },
        "visits": {
            "primary_key": "visit_id",
            "columns": {
                "visit_id": {"sdtype": "id"},
                "patient_id": {"sdtype": "id"},
                "start": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
                "cost": {"sdtype": "numerical"},
            },
        },
    },
    "relationships": [
        {
            "parent_table_name": "patients",
            "parent_primary_key": "patient_id",
            "child_table_name": "visits",
            "child_foreign_key": "patient_id",
        }
    ],
}


def _sdv_tables(n: int = 60, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(10000, 10000 + n),
            "age": rng.integers(20, 90, n),
            "stage": rng.choice(["I", "II", "III"], n),
            "email": [f"p{i}@example.org" for i in range(n)],
        }
    )
    count = rng.integers(0, 5, n)
    v = int(count.sum())
    visits = pd.DataFrame(
        {
            "visit_id": np.arange(v),
            "patient_id": np.repeat(patients["patient_id"], count).to_numpy(),
            "start": pd.Series(
                pd.date_range("2021-01-01", periods=v, freq="D").strftime("%Y-%m-%d")
            ),
            "cost": np.round(rng.gamma(2.0, 100.0, v), 2),
        }
    )
    return {"patients": patients, "visits": visits}


def test_sdv_multi_table_json_loads_unchanged_and_synthesizes(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(SDV_JSON))
    md = Metadata.load_from_json(path)
    md.validate()
    assert md.relationships == SDV_JSON["relationships"]
    assert md.tables["patients"].columns["stage"]["sdtype"] == "ordinal"
    tables = _sdv_tables()
    out = HMASynthesizer(md, random_state=0).fit(tables).sample()
    assert out["visits"]["patient_id"].isin(out["patients"]["patient_id"]).all()
    assert not out["patients"]["email"].isin(tables["patients"]["email"]).any()


def test_detection_links_by_name_and_values():
    tables = make_hospital(80, seed=2)
    md = Metadata.detect_from_dataframes(tables)
    links = {
        (r["parent_table_name"], r["child_table_name"], r["child_foreign_key"])
        for r in md.relationships
    }
    assert links == {
        ("patients", "visits", "patient_id"),
        ("patients", "labs", "patient_id"),
        ("patients", "prescriptions", "patient_id"),
        ("visits", "labs", "visit_id"),
    }


def test_detection_finds_role_named_and_broken_links_but_not_generic_ones():
    concept = pd.DataFrame({"CONCEPT_ID": [8507, 8532, 0, 4001, 4002], "NAME": list("abcde")})
    person = pd.DataFrame(
        {
            "PERSON_ID": np.arange(1, 41),
            "GENDER_CONCEPT_ID": np.resize([8507, 8532], 40),
            "RACE_CONCEPT_ID": np.resize([1, 2, 3], 40),  # not in concept: a code
            "id": np.arange(40),
        }
    )
    visit = pd.DataFrame(
        {
            "VISIT_ID": np.arange(100, 140),
            "PERSON_ID": np.resize(np.arange(1, 41), 40),
            # a broken link shipped as is: 10% of its values exist in visit_occurrence's key
            "PRECEDING_VISIT_ID": np.r_[np.arange(100, 104), np.arange(900, 936)],
        }
    )
    events = pd.DataFrame(
        {"EVENT_ID": np.arange(60), "VISIT_ID": np.r_[np.arange(100, 106), np.arange(500, 554)]}
    )
    tables = {"concept": concept, "person": person, "visit": visit, "events": events}
    md = Metadata.detect_from_dataframes(tables)
    links = {
        (r["parent_table_name"], r["child_table_name"], r["child_foreign_key"])
        for r in md.relationships
    }
    assert ("concept", "person", "GENDER_CONCEPT_ID") in links  # role name, 100% contained
    assert ("person", "visit", "PERSON_ID") in links
    assert ("visit", "events", "VISIT_ID") in links  # exact key name, 10%: reported as orphans
    assert not any(child == "visit" and fk == "PRECEDING_VISIT_ID" for _, child, fk in links)
    assert md.tables["person"].columns["RACE_CONCEPT_ID"]["sdtype"] == "categorical"
    with pytest.raises(
        DataError, match=r"54 of 60 rows point.*\(90.0%; orphans; e.g. \[500, 501, 502\]"
    ):
        md.validate_data(tables)


def test_validate_data_reports_orphans_and_duplicate_keys_at_once():
    tables = make_hospital(50, seed=4)
    tables["patients"].loc[1, "patient_id"] = 1  # a duplicated parent key
    tables["visits"].loc[:2, "patient_id"] = [999, 998, 999]  # orphans
    tables["labs"] = tables["labs"].drop(columns=["value"])
    with pytest.raises(DataError) as info:
        hospital_metadata().validate_data(tables)
    problems = info.value.problems
    text = str(info.value)
    # Every kind of problem in one error: a duplicated key, the orphans (the overwritten patient
    # 2 left orphans in three tables), a missing column.
    assert len(problems) == 5
    assert "primary key 'patient_id' has 1 duplicated values" in text
    assert "table 'visits', column 'patient_id'" in text and "orphans; e.g. [999, 998, 2]" in text
    assert "table 'labs', column 'patient_id'" in text
    assert "['value'] are in the metadata but not in the data" in text


def test_validate_reports_cycles_with_the_tables():
    md = hospital_metadata()
    md.add_relationship("labs", "patients", "lab_id", "patient_id")
    with pytest.raises(MetadataError, match=r"cycle \(labs -> patients -> labs\)"):
        md.validate()


@pytest.fixture()
def with_orphans():
    tables = make_hospital(150, seed=5)
    visits = tables["visits"]
    tables["visits"] = visits.assign(
        patient_id=np.where(np.arange(len(visits)) % 10 == 0, 10_000, visits["patient_id"])
    )
    return tables


def test_orphans_are_reported_with_counts_and_examples(with_orphans):
    n_orphans = int((with_orphans["visits"]["patient_id"] == 10_000).sum())
    with pytest.raises(DataError) as info:
        HMASynthesizer(hospital_metadata()).fit(with_orphans)
    text = str(info.value)
    assert f"{n_orphans} of {len(with_orphans['visits'])} rows" in text
    assert "e.g. [10000]" in text and "orphans='drop'" in text and "keep_as_null" in text


def test_orphans_drop_removes_them_and_their_children(with_orphans):
    model = HMASynthesizer(hospital_metadata(), orphans="drop", random_state=0).fit(with_orphans)
    (found,) = [f for f in model.orphans_ if f["child_table_name"] == "visits"]
    assert found["examples"] == [10000] and found["action"] == "drop"
    kept_visits = model.get_plan().set_index("table").loc["visits", "rows"]
    assert kept_visits == int((with_orphans["visits"]["patient_id"] != 10_000).sum())
    # The labs of dropped visits were dropped too (they would be orphans now).
    assert model.get_plan().set_index("table").loc["labs", "rows"] < len(with_orphans["labs"])
    out = model.sample()
    assert out["visits"]["patient_id"].isin(out["patients"]["patient_id"]).all()


def test_orphans_keep_as_null_keeps_rows_with_an_empty_key():
    tables = make_hospital(150, seed=6)
    rx = tables["prescriptions"]
    tables["prescriptions"] = rx.assign(
        patient_id=np.where(np.arange(len(rx)) % 5 == 0, -1, rx["patient_id"])
    )
    model = HMASynthesizer(hospital_metadata(), orphans="keep_as_null", random_state=0)
    out = model.fit(tables).sample()
    fk = out["prescriptions"]["patient_id"]
    assert 0.05 < fk.isna().mean() < 0.4  # the parentless share is kept
    assert fk.dropna().isin(out["patients"]["patient_id"]).all()
    assert len(out["prescriptions"]) > 0.7 * len(rx)


def test_empty_columns_are_kept_empty_or_dropped():
    tables = make_hospital(100, seed=7)
    tables["visits"]["provider_id"] = np.nan
    tables["patients"]["death_date"] = None
    md = Metadata.detect_from_dataframes(tables)
    assert md.tables["visits"].columns["provider_id"]["sdtype"] == "unknown"
    with pytest.raises(MetadataError, match="could not be detected"):
        md.validate()
    out = HMASynthesizer(md, random_state=0).fit(tables).sample()
    assert out["visits"]["provider_id"].isna().all()
    assert out["patients"]["death_date"].isna().all()
    assert list(out["visits"].columns) == list(tables["visits"].columns)
    dropped = HMASynthesizer(md, empty_columns="drop", random_state=0).fit(tables).sample()
    assert "provider_id" not in dropped["visits"] and "death_date" not in dropped["patients"]


def _with_vocabulary(n: int = 120, seed: int = 8) -> tuple[dict[str, pd.DataFrame], Metadata]:
    tables = make_hospital(n, seed=seed)
    tests = pd.DataFrame({"test_code": [101, 102, 103], "label": ["glucose", "creatinine", "x"]})
    labs = tables["labs"]
    tables["labs"] = labs.assign(test_code=np.where(labs["test"] == "glucose", 101, 102))
    tables["test_codes"] = tests
    md = hospital_metadata()
    md.tables["test_codes"] = Metadata.detect_from_dataframe(tests).get_table()
    md.set_primary_key("test_code", table_name="test_codes")
    md.update_column("test_code", table_name="test_codes", sdtype="id")
    md.add_column("test_code", table_name="labs", sdtype="id")
    md.add_relationship("test_codes", "labs", "test_code", "test_code")
    return tables, md


def test_reference_tables_are_copied_and_their_keys_learned_as_categories():
    tables, md = _with_vocabulary()
    model = HMASynthesizer(md, reference_tables=["test_codes"], random_state=0).fit(tables)
    out = model.sample(scale=0.5)
    pd.testing.assert_frame_equal(out["test_codes"], tables["test_codes"])
    labs = out["labs"]
    assert set(labs["test_code"]) <= {101, 102}
    # The code still agrees with the test name, as in the real data (learned jointly).
    agree = ((labs["test_code"] == 101) == (labs["test"] == "glucose")).mean()
    assert agree > 0.9


def test_a_second_independent_parent_is_picked_by_weight():
    """Prescriptions point to a patient (primary) and to a prescriber (another parent)."""
    tables = make_hospital(200, seed=9)
    rng = np.random.default_rng(0)
    doctors = pd.DataFrame(
        {"doctor_id": np.arange(1, 21), "specialty": rng.choice(["gp", "endo"], 20)}
    )
    busy = np.r_[np.full(5, 10.0), np.ones(15)]
    rx = tables["prescriptions"]
    rx["doctor_id"] = rng.choice(doctors["doctor_id"], len(rx), p=busy / busy.sum())
    tables["doctors"] = doctors
    md = hospital_metadata()
    md.tables["doctors"] = Metadata.detect_from_dataframe(doctors).get_table()
    md.add_column("doctor_id", table_name="prescriptions", sdtype="id")
    md.add_relationship("doctors", "prescriptions", "doctor_id", "doctor_id")
    model = HMASynthesizer(md, random_state=0).fit(tables)
    plan = model.get_plan().set_index("table")
    assert plan.loc["prescriptions", "secondary"] == ["doctor_id -> doctors"]
    out = model.sample()
    assert out["prescriptions"]["doctor_id"].isin(out["doctors"]["doctor_id"]).all()
    per_doctor = out["prescriptions"].groupby("doctor_id").size()
    assert per_doctor.max() > 3 * per_doctor.median()  # busy prescribers stay busy


def test_a_table_can_point_to_itself():
    tables = make_hospital(100, seed=10)
    visits = tables["visits"]
    previous = visits.groupby("patient_id")["visit_id"].shift(1)
    tables["visits"] = visits.assign(previous_visit=previous)
    md = hospital_metadata()
    md.add_column("previous_visit", table_name="visits", sdtype="id")
    md.add_relationship("visits", "visits", "visit_id", "previous_visit")
    out = HMASynthesizer(md, random_state=0).fit(tables).sample()
    prev = out["visits"]["previous_visit"]
    assert prev.notna().any() and prev.isna().any()
    assert prev.dropna().isin(out["visits"]["visit_id"]).all()
