"""Keys found from the data: artefacts, composite keys, links by inclusion, ambiguity, cycles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.errors import MetadataError
from clinsynth.simulate import simulate_hospital


def _links(md: Metadata) -> set[tuple[str, str, str, str]]:
    return {
        (
            r["parent_table_name"],
            r["parent_primary_key"],
            r["child_table_name"],
            r["child_foreign_key"],
        )
        for r in md.relationships
    }


def _candidate(md: Metadata, child: str, column: str) -> list[dict]:
    return [
        c
        for c in md.detection["links"]
        if c["child_table_name"] == child and c["child_foreign_key"] == column
    ]


def test_r_export_rownames_are_flagged_and_the_named_keys_kept(tmp_path):
    """The hospital simulator written as R does (a rownames column 1..n first in every file)."""
    tables, truth = simulate_hospital(120, seed=1)
    for name, frame in tables.items():
        frame.insert(0, "rownames", np.arange(1, len(frame) + 1))
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    md = Metadata.detect_from_csvs(tmp_path)
    for name, table in truth.tables.items():
        assert md.tables[name].primary_key == table.primary_key
        evidence = md.detection["tables"][name]
        assert evidence["how"] == "named"
        assert evidence["artefacts"] == [{"column": "rownames", "kind": "rownames"}]
        assert md.tables[name].columns["rownames"] == {"sdtype": "id"}  # never learned
    assert _links(md) == _links(truth)
    for rel in truth.relationships:
        (found,) = _candidate(md, rel["child_table_name"], rel["child_foreign_key"])
        assert found["status"] == "linked" and found["inclusion"] == 1.0
        assert found["orphans"] == 0 and found["rows"] == len(tables[rel["child_table_name"]])


def test_a_child_id_holding_the_parents_rownames_is_linked_by_its_values():
    rng = np.random.default_rng(0)
    patients = pd.DataFrame(
        {"rownames": np.arange(1, 301), "age": rng.integers(20, 80, 300), "sex": ["F", "M"] * 150}
    )
    labs = pd.DataFrame(
        {
            "rownames": np.arange(1, 2001),
            "id": np.r_[np.arange(1, 301), rng.integers(1, 301, 1700)],
            "value": rng.normal(size=2000),
        }
    )
    md = Metadata.detect_from_dataframes({"patients": patients, "labs": labs})
    assert _links(md) == {("patients", "rownames", "labs", "id")}
    assert md.detection["tables"]["patients"]["how"] == "artefact"
    (found,) = _candidate(md, "labs", "id")
    assert (found["match"], found["status"], found["inclusion"]) == ("values", "linked", 1.0)
    md.validate()


def test_pandas_index_and_counters_are_artefacts_not_keys():
    n = 60
    df = pd.DataFrame(
        {
            "Unnamed: 0": np.arange(n),
            "X": np.arange(1, n + 1),
            "mrn_id": [f"P{1000 + 7 * i}" for i in range(n)],
            "age": np.arange(n) % 40 + 30,
        }
    )
    md = Metadata.detect_from_dataframe(df, discover_rules=False)
    assert md.primary_key == "mrn_id"
    assert md.columns["X"] == {"sdtype": "id"} and md.columns["Unnamed: 0"] == {"sdtype": "id"}
    # A key-named column 1..n is a named key, not an artefact.
    ids = pd.DataFrame({"patient_id": np.arange(1, n + 1), "age": np.arange(n) % 40 + 30})
    assert Metadata.detect_from_dataframe(ids, discover_rules=False).primary_key == "patient_id"


def test_composite_key_broken_link_and_keys_that_are_not_the_key(caplog):
    weeks = np.repeat(np.arange(1, 11), 3)
    services = pd.DataFrame(
        {"week": weeks, "service": ["icu", "surgery", "medicine"] * 10, "beds": np.arange(30) % 7}
    )
    staff = pd.DataFrame(
        {
            "staff_id": [f"STF-{i:03d}" for i in range(12)],
            "staff_name": [f"Name {i}" for i in range(12)],
            "service": ["icu", "surgery", "medicine"] * 4,
        }
    )
    schedule = pd.DataFrame(
        {
            "week": np.repeat(np.arange(1, 11), 12),
            "staff_id": [f"STF-{i:03d}x" for i in range(12)] * 10,  # shipped broken
            "staff_name": list(staff["staff_name"]) * 10,
        }
    )
    tables = {"services_weekly": services, "staff": staff, "staff_schedule": schedule}
    with caplog.at_level("WARNING", logger="clinsynth"):
        md = Metadata.detect_from_dataframes(tables)
    assert "NO RELATIONSHIP was found between the 3 tables" in caplog.text
    assert md.relationships == []
    assert md.detection["tables"]["services_weekly"]["composite_key"] == ["week", "service"]
    assert md.detection["tables"]["staff_schedule"]["composite_key"] == ["staff_id", "week"]
    (broken,) = _candidate(md, "staff_schedule", "staff_id")
    assert (broken["status"], broken["inclusion"], broken["orphans"]) == ("broken", 0.0, 120)
    (by_name,) = _candidate(md, "staff_schedule", "staff_name")
    assert by_name["status"] == "not a key" and "make it the key of 'staff'" in by_name["note"]
    (service,) = _candidate(md, "staff", "service")
    assert service["status"] == "not a key" and "composite key (week, service)" in service["note"]


def test_ambiguous_links_are_asked_not_guessed(tmp_path):
    """Two parents whose keys both hold every value of the child column: nothing linked, and
    validation (so every fit) asks the user to choose."""
    rng = np.random.default_rng(3)
    wards = pd.DataFrame({"rownames": np.arange(1, 41), "beds": rng.integers(5, 30, 40)})
    doctors = pd.DataFrame({"rownames": np.arange(1, 41), "grade": rng.integers(1, 5, 40)})
    stays = pd.DataFrame(
        {"stay_id": np.arange(500), "ref_id": np.resize(np.arange(1, 41), 500), "los": 1.5}
    )
    tables = {"wards": wards, "doctors": doctors, "stays": stays}
    md = Metadata.detect_from_dataframes(tables, discover_rules=False)
    assert md.relationships == []
    (item,) = md.detection["ambiguous"]
    assert (item["child_table_name"], item["child_foreign_key"]) == ("stays", "ref_id")
    assert {o["parent_table_name"] for o in item["options"]} == {"wards", "doctors"}
    with pytest.raises(MetadataError, match=r"'ref_id' could point to 'wards.rownames' \(100%"):
        md.validate()
    md.add_relationship("doctors", "stays", "rownames", "ref_id")  # the user's choice
    md.validate()
    # The evidence travels with the JSON, as counts and shares only (never a value).
    path = tmp_path / "metadata.json"
    md.save_to_json(path)
    again = Metadata.load_from_json(path)
    assert again.detection == md.detection
    text = json.dumps(again.detection)
    assert "STF" not in text and "inclusion" in text


def test_a_link_that_closes_a_cycle_is_left_out_and_reported():
    patients = pd.DataFrame(
        {"patient_id": np.arange(1, 51), "last_visit_id": np.arange(1001, 1051)}
    )
    visits = pd.DataFrame(
        {"visit_id": np.arange(1001, 1101), "patient_id": np.resize(np.arange(1, 51), 100)}
    )
    md = Metadata.detect_from_dataframes({"patients": patients, "visits": visits})
    assert _links(md) == {("patients", "patient_id", "visits", "patient_id")}
    (cycle,) = _candidate(md, "patients", "last_visit_id")
    assert cycle["status"] == "cycle" and "cycle" in cycle["note"]
    md.validate()


def test_small_codes_do_not_link_by_values_and_named_keys_link_by_similarity():
    people = pd.DataFrame({"patient_id": np.arange(1, 201), "sex": ["F", "M"] * 100})
    events = pd.DataFrame(
        {
            "event_id": np.arange(1000),
            "pt_id": np.resize(np.arange(1, 201), 1000),  # an abbreviation of "patient"
            "source_id": np.resize([1, 2, 3], 1000),  # a code that falls inside the keys
        }
    )
    md = Metadata.detect_from_dataframes({"patients": people, "events": events})
    assert _links(md) == {("patients", "patient_id", "events", "pt_id")}
    (found,) = _candidate(md, "events", "pt_id")
    assert found["match"] == "similar"
    assert md.tables["events"].columns["source_id"]["sdtype"] == "categorical"


def test_keys_into_the_tables_own_rows_need_evidence_beyond_chance():
    rng = np.random.default_rng(5)
    n = 400
    head = np.repeat(np.arange(1, n + 1, 5), 5)  # sets of 5 led by their first row
    cc = pd.DataFrame({"id": np.arange(1, n + 1), "case.id": head, "age": rng.integers(30, 80, n)})
    md = Metadata.detect_from_dataframes({"subjects": cc}, discover_rules=False)
    assert _links(md) == {("subjects", "id", "subjects", "case.id")}
    (found,) = _candidate(md, "subjects", "case.id")
    assert found["match"] == "self" and "20% of the rows point to themselves" in found["note"]
    # A small code: rows 1, 2, 3 meet keys 1, 2, 3 by chance, not a self-reference.
    codes = cc.assign(**{"case.id": np.resize([1, 2, 3], n)}).rename(columns={"case.id": "ward_id"})
    md = Metadata.detect_from_dataframes({"subjects": codes}, discover_rules=False)
    assert md.relationships == []


def test_a_role_named_key_missing_from_the_vocabulary_is_reported_broken():
    """OMOP's ``*_TYPE_CONCEPT_ID`` values are not in a vocabulary extract: broken, not linked."""
    concept = pd.DataFrame(
        {"CONCEPT_ID": np.arange(100, 160), "name": [f"c{i}" for i in range(60)]}
    )
    events = pd.DataFrame(
        {
            "EVENT_ID": np.arange(500),
            "EVENT_CONCEPT_ID": np.resize(np.arange(100, 160), 500),
            "EVENT_TYPE_CONCEPT_ID": np.resize([32020, 32817], 500),
        }
    )
    md = Metadata.detect_from_dataframes(
        {"concept": concept, "events": events}, discover_rules=False
    )
    assert _links(md) == {("concept", "CONCEPT_ID", "events", "EVENT_CONCEPT_ID")}
    (broken,) = _candidate(md, "events", "EVENT_TYPE_CONCEPT_ID")
    assert broken["status"] == "broken" and broken["match"] == "role"
    assert broken["inclusion"] == 0.0 and "0% of its values" in broken["note"]
