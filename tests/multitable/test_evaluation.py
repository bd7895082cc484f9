"""evaluate_multi_table: diagnostic (keys, orphans, cardinality bounds) and quality."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinsynth.errors import DataError
from clinsynth.multitable import HMASynthesizer, MultiTableReport, evaluate_multi_table

from .mt_data import hospital_metadata, make_hospital


@pytest.fixture(scope="module")
def real():
    return make_hospital(250, seed=11)


def test_real_against_itself_is_perfect(real):
    report = evaluate_multi_table(real, real, hospital_metadata())
    assert isinstance(report, MultiTableReport)
    assert report.get_score() == pytest.approx(1.0)
    assert report.diagnostic.get_score() == 1.0
    props = report.get_properties()
    assert list(props.columns) == ["Section", "Property", "Score"]
    assert set(props["Property"]) == {
        "Column Shapes",
        "Column Pair Trends",
        "Cardinality",
        "Intertable Trends",
        "Primary Keys",
        "Referential Integrity",
        "Cardinality Bounds",
    }
    json.dumps(report.to_dict())
    assert set(report.table_reports) == {"patients", "visits", "labs", "prescriptions"}


def test_broken_keys_lower_the_diagnostic(real):
    broken = {k: v.copy() for k, v in real.items()}
    broken["visits"].loc[:9, "patient_id"] = 99_999
    broken["labs"].loc[:4, "lab_id"] = broken["labs"]["lab_id"].iloc[5]
    report = evaluate_multi_table(real, broken, hospital_metadata(), per_table=False)
    diag = report.diagnostic.get_properties().set_index("Property")["Score"]
    assert diag["Referential Integrity"] < 1.0 and diag["Primary Keys"] < 1.0
    integrity = report.get_details("Referential Integrity").set_index("Child")
    assert integrity.loc["visits", "Orphans"] == 10
    keys = report.get_details("Primary Keys").set_index("Table")
    assert keys.loc["labs", "Duplicated"] == 6


def test_cardinality_and_intertable_trends_see_lost_dependence(real):
    """Children given to random parents keep the table shapes but lose who has how many."""
    shuffled = {k: v.copy() for k, v in real.items()}
    rng = np.random.default_rng(0)
    shuffled["visits"]["patient_id"] = rng.choice(
        real["patients"]["patient_id"], len(real["visits"])
    )
    md = hospital_metadata()
    bad = evaluate_multi_table(real, shuffled, md, per_table=False)
    good = evaluate_multi_table(
        real, HMASynthesizer(md, random_state=0).fit(real).sample(), md, per_table=False
    )
    card = lambda r: r.get_details("Cardinality").set_index("Child").loc["visits", "Score"]  # noqa: E731
    assert card(bad) < card(good)
    bounds = bad.get_details("Cardinality Bounds").set_index("Child").loc["visits", "Score"]
    assert bounds < 1.0  # patients without a visit, which never happens in the real data
    trends = lambda r: r.get_details("Intertable Trends").query("Child == 'visits'")  # noqa: E731
    assert trends(good)["Score"].mean() > trends(bad)["Score"].mean() + 0.05


def test_missing_tables_are_reported(real):
    with pytest.raises(DataError, match="synthetic_tables lacks tables \\['labs'\\]"):
        evaluate_multi_table(
            real, {k: v for k, v in real.items() if k != "labs"}, hospital_metadata()
        )


def test_progress(real):
    calls = []
    evaluate_multi_table(real, real, hospital_metadata(), progress=lambda *a: calls.append(a))
    assert calls[-1][0] == calls[-1][1]
    assert isinstance(calls[0][2], str) and pd.notna(calls[0][0])
