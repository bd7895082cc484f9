import pandas as pd
import pytest
from evaldata import splits

from clinsynth.evaluation import run_diagnostic


def test_identical_data_is_valid_but_flags_every_copy():
    train, _, _, md = splits()
    report = run_diagnostic(train, train.copy(), md)
    props = report.get_properties().set_index("Property")["Score"]
    assert props["Data Structure"] == pytest.approx(1.0)
    assert report.metrics["exact_copy_share"] == pytest.approx(1.0)
    # the id and e-mail values are all found in the real data
    assert report.metrics["identifier_copy_share"] == {"pid": 1.0, "email": 1.0}
    validity = report.get_details("Data Validity").set_index(["Column", "Metric"])
    assert validity.loc[("email", "NotCopied"), "Score"] == 0.0
    assert props["Data Validity"] < 1.0
    synthesis = report.get_details("Synthesis").set_index("Metric")["Value"]
    assert synthesis["Exact copies of real rows (share)"] == pytest.approx(1.0)


def test_fresh_data_passes():
    train, _, fresh, md = splits()
    report = run_diagnostic(train, fresh, md)
    assert report.get_score() > 0.98
    assert report.metrics["exact_copy_share"] == 0.0
    assert report.metrics["identifier_copy_share"] == {"pid": 0.0, "email": 0.0}


def test_invalid_values_and_structure_are_flagged():
    train, _, fresh, md = splits()
    bad = fresh.copy()
    bad.loc[:99, "age"] = 500.0  # 100 of 500 outside the real range
    bad.loc[:49, "sex"] = "X"  # unseen category
    bad["pid"] = "same"  # duplicated primary key
    bad["smoker"] = None  # a column left entirely empty
    bad = bad.drop(columns=["bmi"]).assign(extra=1)
    report = run_diagnostic(train, bad, md)
    validity = report.get_details("Data Validity").set_index(["Column", "Metric"])["Score"]
    assert validity[("age", "BoundaryAdherence")] == pytest.approx(0.8)
    assert validity[("sex", "CategoryAdherence")] == pytest.approx(0.9)
    assert validity[("pid", "KeyUniqueness")] == pytest.approx(1 / 500)
    assert validity[("smoker", "NullOnly")] == 0.0
    structure = report.get_details("Data Structure").set_index("Metric")
    assert structure.loc["ColumnExistence", "Score"] == pytest.approx(8 / 10)
    assert report.metrics["missing_columns"] == ["bmi"]
    assert report.metrics["extra_columns"] == ["extra"]
    assert report.get_score() < 0.9
    assert any("bmi" in note for note in report.notes)


def test_type_compatibility():
    train, _, fresh, md = splits()
    bad = fresh.assign(age=["old"] * 250 + ["61"] * 250, admitted="not a date")
    structure = run_diagnostic(train, bad, md).get_details("Data Structure").set_index("Column")
    assert structure.loc["age", "Score"] == pytest.approx(0.5)
    assert structure.loc["admitted", "Score"] == 0.0
    assert structure.loc["sex", "Score"] == 1.0


def test_integer_keys_are_shown_not_scored():
    train, _, fresh, md = splits()
    real = train.assign(pid=range(500))
    synth = fresh.assign(pid=range(500))
    validity = run_diagnostic(real, synth, md).get_details("Data Validity")
    row = validity[validity["Metric"].str.startswith("IdOverlap")].iloc[0]
    assert pd.isna(row["Score"]) and row["Share Copied"] == 1.0


def test_copied_personal_data_is_a_finding_in_the_summary():
    from clinsynth.evaluation import evaluate

    train, _, fresh, md = splits()
    leaked = fresh.assign(email=train["email"].to_numpy())
    result = evaluate(train, leaked, md, detection=False)
    assert any("'email'" in note and "100%" in note for note in result.diagnostic.notes)
    verdict = result.summary().set_index("Section").loc["Diagnostic", "Verdict"]
    assert verdict == "poor (identifiers copied)"
