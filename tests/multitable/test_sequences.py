"""A child table with a sequence_index inside a schema: learned as sequences under its parents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata, load
from clinsynth.constraints import Inequality
from clinsynth.errors import DataError, MetadataError
from clinsynth.evaluation import evaluate_sequences
from clinsynth.multitable import HMASynthesizer
from clinsynth.simulate import simulate_lab_trajectories

FAST = {"epochs": 2, "batch_size": 32, "hidden_dim": 16, "latent_dim": 4}
CONTEXT = ["patient_id", "sex", "age", "arm", "followup_days"]


def _schema(n: int = 150, seed: int = 0) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """patients (the context columns, plus 20 patients without visits) -> visits (the
    events, FK + day) -> labs (0-2 extra results per visit)."""
    visits, _ = simulate_lab_trajectories(n, mean_visits=5, seed=seed)
    patients = visits[CONTEXT].drop_duplicates("patient_id").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    extra = patients.sample(20, random_state=seed).reset_index(drop=True)
    extra["patient_id"] = [f"Q{i:04d}" for i in range(20)]
    patients = pd.concat([patients, extra], ignore_index=True)
    events = visits.drop(columns=CONTEXT[1:]).reset_index(drop=True)
    events.insert(0, "visit_id", np.arange(len(events)) + 1000)
    per_visit = rng.integers(0, 3, len(events))
    labs = pd.DataFrame(
        {
            "lab_id": np.arange(per_visit.sum()),
            "visit_id": np.repeat(events["visit_id"].to_numpy(), per_visit),
            "potassium": np.round(rng.normal(4.2, 0.4, per_visit.sum()), 1),
        }
    )
    tables = {"patients": patients, "visits": events, "labs": labs}
    md = Metadata.detect_from_dataframes(tables)
    md.set_sequence_key("patient_id", table_name="visits")
    md.set_sequence_index("day", table_name="visits")
    return tables, md


@pytest.fixture(scope="module")
def schema():
    return _schema()


@pytest.fixture(scope="module")
def fitted(schema):
    tables, md = schema
    return HMASynthesizer(md, random_state=0, **FAST).fit(tables)


def _ordered(visits: pd.DataFrame) -> bool:
    return bool((visits.groupby("patient_id", sort=False)["day"].diff().dropna() > 0).all())


def test_sequence_child_is_learned_as_sequences(fitted, schema):
    tables, md = schema
    plan = fitted.get_plan().set_index("table")
    assert plan.loc["visits", "model"] == "sequential"
    assert plan.loc["patients", "model"] == "gaussian_copula"
    model = fitted.get_table_synthesizer("visits")
    # the parent's end of follow-up bounds every real visit: kept as a bound
    assert model._bounds_.upper == [("__parent__followup_days", True)]
    assert any(c.startswith("__ctx__patients__") for c in model._context_)
    # the parent's count of visits is the number of events, not also a context score
    assert "__ctx__patients__n__visits__patient_id" not in model._context_
    syn = fitted.sample()
    patients, visits, labs = syn["patients"], syn["visits"], syn["labs"]
    assert list(visits.columns) == list(tables["visits"].columns)
    assert visits["patient_id"].isin(patients["patient_id"]).all()
    assert labs["visit_id"].isin(visits["visit_id"]).all()
    assert visits["visit_id"].is_unique
    # each parent's events are contiguous and strictly ordered in time
    assert (
        visits["patient_id"].ne(visits["patient_id"].shift()).sum()
        == visits["patient_id"].nunique()
    )
    assert _ordered(visits)
    counts = visits.groupby("patient_id").size()
    assert (counts > 1).mean() > 0.5
    # some synthetic parents have no visit, as 20 real ones
    assert 0 < (~patients["patient_id"].isin(visits["patient_id"])).sum() < len(patients)
    joined = visits.merge(patients, on="patient_id")
    assert (joined["day"] < joined["followup_days"]).all()
    table = md.tables["visits"]
    real = tables["visits"].merge(tables["patients"], on="patient_id")
    seq_md = Metadata(
        {
            "visits": type(table)(
                {**table.columns, "followup_days": {"sdtype": "numerical"}},
                sequence_key="patient_id",
                sequence_index="day",
            )
        }
    )
    measures = evaluate_sequences(real, joined, seq_md, upper_bounds=["followup_days"])
    assert measures["violations"] == {"not_increasing": 0, "after_followup_days": 0}
    assert measures["events_per_patient_ks"] < 0.3


def test_each_parent_gets_its_count_of_events(fitted):
    model = fitted.get_table_synthesizer("visits")
    context = [c for c in model._context_ if c.startswith("__ctx__")]
    parents = pd.DataFrame({c: np.zeros(5) for c in context})
    fixed = pd.DataFrame({"__parent__followup_days": [5000, 5000, 5000, 5000, 3]})
    counts = np.array([0, 3, 2, 5, 9])
    events, ppos = model.sample_given_parents(
        parents, counts, np.random.default_rng(0), fixed=fixed
    )
    assert len(events) == len(ppos)
    assert np.bincount(ppos, minlength=5)[:4].tolist() == [0, 3, 2, 5]
    # a window of 3 days holds at most 3 events (days 0, 1, 2), all before the bound
    assert 1 <= (ppos == 4).sum() <= 3
    assert (events["day"].to_numpy()[ppos == 4] < 3).all()
    assert (np.diff(ppos) >= 0).all()


def test_save_load_gives_the_same_rows(fitted, tmp_path):
    fitted.reset_sampling()
    first = fitted.sample()
    path = fitted.save(tmp_path / "schema")
    again = load(path)
    assert type(again.get_table_synthesizer("visits")).__name__ == "SequentialSynthesizer"
    second = again.sample()
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_same_seed_same_schema(schema, fitted):
    tables, md = schema
    other = HMASynthesizer(md, random_state=0, **FAST).fit(tables)
    fitted.reset_sampling()
    a, b = fitted.sample(scale=0.3), other.sample(scale=0.3)
    pd.testing.assert_frame_equal(a["visits"], b["visits"])


def test_rules_on_the_sequence_child_hold():
    tables, md = _schema(60, seed=1)
    visits = tables["visits"]
    visits["cap"] = visits["creatinine"] + 1.0
    md = Metadata.detect_from_dataframes(tables)
    md.set_sequence_key("patient_id", table_name="visits")
    md.set_sequence_index("day", table_name="visits")
    md.tables["visits"].constraints = [Inequality(low="creatinine", high="cap").to_dict()]
    syn = HMASynthesizer(md, random_state=0, **FAST).fit(tables).sample()
    assert (syn["visits"]["creatinine"] <= syn["visits"]["cap"]).all()
    assert _ordered(syn["visits"])


def test_sequence_key_must_be_the_foreign_key(schema):
    tables, md = schema
    bad = md.copy()
    bad.set_sequence_key("visit_id", table_name="visits")
    with pytest.raises(MetadataError, match="foreign key to the parent"):
        HMASynthesizer(bad, random_state=0, **FAST).fit(tables)


def test_orphans_kept_as_null_are_refused(schema):
    tables, md = schema
    visits = tables["visits"].copy()
    visits.loc[:2, "patient_id"] = "nobody"
    with pytest.raises(DataError, match="no parent row"):
        HMASynthesizer(md, orphans="keep_as_null", random_state=0, **FAST).fit(
            {**tables, "visits": visits}
        )


def test_a_row_model_named_for_the_table_learns_rows(schema):
    tables, md = schema
    model = HMASynthesizer(
        md, table_synthesizers={"visits": "gaussian_copula"}, random_state=0
    ).fit(tables)
    assert model.get_plan().set_index("table").loc["visits", "model"] == "gaussian_copula"
    assert len(model.sample(scale=0.2)["visits"])


def _two_tables(n: int = 150) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """patients -> visits (a sequence child) from the lab-trajectory simulator."""
    tables, _ = _schema(n)
    tables = {"patients": tables["patients"], "visits": tables["visits"]}
    md = Metadata.detect_from_dataframes(tables)
    md.set_sequence_key("patient_id", table_name="visits")
    md.set_sequence_index("day", table_name="visits")
    return tables, md


def test_patient_level_privacy_with_a_sequence_child(tmp_path):
    tables, md = _two_tables()
    model = HMASynthesizer(
        md,
        table_synthesizers={"patients": "dp_marginal"},
        epsilon=3.0,
        max_rows_per_patient={"visits": 4},
        random_state=0,
        **FAST,
    ).fit(tables)
    report = model.get_privacy_report()
    assert report["differential_privacy"] is True
    assert report["privacy_unit"] == "patients.patient_id"
    share = report["shares"]["visits"]
    assert share["rows_per_patient"] == 4
    assert 0 < share["epsilon_spent"] <= share["epsilon"]
    assert report["epsilon_spent"] <= 3.0
    inner = report["tables"]["visits"]
    assert "each patient of the schema, with up to 1 sequence(s)" in inner["guarantee"]
    assert any("DP-SGD" in m["name"] for m in inner["ledger"])
    syn = model.sample()
    assert _ordered(syn["visits"])
    assert syn["visits"].groupby("patient_id").size().max() <= 4
    merged = syn["visits"].merge(syn["patients"], on="patient_id")
    assert (merged["day"] <= merged["followup_days"]).all()
    model.save(tmp_path / "schema")
    assert load(tmp_path / "schema").get_privacy_report() == report


def test_sequence_cap_keeps_the_first_events():
    from clinsynth.multitable._patient import _time_order, _within_cap

    tables, md = _two_tables(30)
    visits = tables["visits"]
    codes = pd.factorize(visits["patient_id"])[0]
    time = _time_order(md, "visits", visits)
    keep = _within_cap(codes, np.ones(len(visits), bool), 2, np.random.default_rng(0), time)
    first_two = visits.groupby("patient_id").cumcount().to_numpy() < 2
    np.testing.assert_array_equal(keep, first_two)
