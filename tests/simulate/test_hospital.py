"""simulate_hospital: keys, dates, children counts, condition effects, metadata."""

from __future__ import annotations

import pandas as pd
import pytest

from clinsynth.errors import ParameterError
from clinsynth.simulate import HOSPITAL_ORDER_RULES, simulate_hospital


@pytest.fixture(scope="module")
def hospital():
    return simulate_hospital(2000, seed=7)


def test_metadata_describes_the_tables(hospital):
    tables, md = hospital
    md.validate()
    md.validate_data(tables)
    assert set(md.table_names) == set(tables) == {"patients", "visits", "lab_results"}
    for name, df in tables.items():
        assert list(df.columns) == list(md.tables[name].columns), name
        for col, spec in md.tables[name].columns.items():
            if spec["sdtype"] == "datetime":
                assert df[col].dtype == "datetime64[ns]", (name, col)
    links = {(r["parent_table_name"], r["child_table_name"], r["child_foreign_key"])
             for r in md.relationships}  # fmt: skip
    assert links == {
        ("patients", "visits", "patient_id"),
        ("visits", "lab_results", "visit_id"),
        ("patients", "lab_results", "patient_id"),
    }


def test_keys_are_valid(hospital):
    tables, md = hospital
    for name, df in tables.items():
        pk = md.tables[name].primary_key
        assert df[pk].is_unique and df[pk].notna().all(), name
    for rel in md.relationships:
        parent = tables[rel["parent_table_name"]][rel["parent_primary_key"]]
        child = tables[rel["child_table_name"]][rel["child_foreign_key"]]
        assert child.isin(parent).all(), rel
    labs = tables["lab_results"].merge(
        tables["visits"][["visit_id", "patient_id"]], on="visit_id", suffixes=("", "_of_visit")
    )
    assert (labs["patient_id"] == labs["patient_id_of_visit"]).all()


def test_dates_are_consistent(hospital):
    tables, _ = hospital
    patients, visits, labs = tables["patients"], tables["visits"], tables["lab_results"]
    for table, earlier, later in HOSPITAL_ORDER_RULES:
        assert (tables[table][earlier] <= tables[table][later]).all()
    stay = (visits["discharge_date"] - visits["admission_date"]).dt.days
    assert (stay == visits["length_of_stay"]).all()
    # A patient's visits are in date order and never overlap.
    ordered = visits.sort_values(["patient_id", "visit_id"])
    previous_discharge = ordered.groupby("patient_id")["discharge_date"].shift()
    later = previous_discharge.notna()
    assert (ordered.loc[later, "admission_date"] > previous_discharge[later]).all()
    # Visits come after birth (adults), results within their visit.
    v = visits.merge(patients[["patient_id", "birth_date"]], on="patient_id")
    assert ((v["admission_date"] - v["birth_date"]).dt.days >= 18 * 365).all()
    lv = labs.merge(visits, on="visit_id", suffixes=("", "_v"))
    assert lv["VISITDATE"].between(lv["admission_date"], lv["discharge_date"]).all()


def test_children_counts_vary(hospital):
    tables, _ = hospital
    per_patient = tables["visits"].groupby("patient_id").size()
    assert per_patient.min() >= 1 and per_patient.nunique() >= 5 and per_patient.max() >= 8
    per_visit = (
        tables["lab_results"].groupby("visit_id").size()
        .reindex(tables["visits"]["visit_id"], fill_value=0)
    )  # fmt: skip
    assert (per_visit == 0).any() and per_visit.nunique() >= 8
    assert 2.0 < per_patient.mean() < 5.0


def test_results_depend_on_conditions(hospital):
    tables, _ = hospital
    labs = tables["lab_results"].merge(tables["patients"], on="patient_id")

    def mean(test, condition):
        part = labs[labs["test_name"] == test]
        return part.groupby(condition)["RESULTNUMERIC"].mean()

    glucose = mean("Glucose", "diabetes")
    assert glucose[True] > glucose[False] + 30
    hba1c = mean("HbA1c", "diabetes")
    assert hba1c[True] > hba1c[False] + 1.0
    creatinine = mean("Creatinine", "chronic_kidney_disease")
    assert creatinine[True] > 1.5 * creatinine[False]
    bnp = mean("NT-proBNP", "heart_failure")
    assert bnp[True] > 3 * bnp[False]
    assert (tables["lab_results"]["RESULTNUMERIC"] > 0).all()


def test_test_catalogue_is_consistent(hospital):
    labs = hospital[0]["lab_results"]
    per_id = labs.groupby("TESTTYPEID")[["test_name", "units", "normal_low", "normal_high"]]
    assert (per_id.nunique() == 1).all().all()
    assert labs["TESTTYPEID"].nunique() == 10
    assert (labs["normal_low"] < labs["normal_high"]).all()


def test_same_seed_same_tables():
    a, _ = simulate_hospital(100, seed=3)
    b, _ = simulate_hospital(100, seed=3)
    c, _ = simulate_hospital(100, seed=4)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["visits"].equals(c["visits"])


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_bad_num_patients(bad):
    with pytest.raises(ParameterError, match="num_patients"):
        simulate_hospital(bad)
