"""SequentialSynthesizer: sequences per patient, temporal logic by construction, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import Metadata, SequentialSynthesizer, load
from clinsynth.constraints import Inequality
from clinsynth.errors import DataError, MetadataError, ParameterError
from clinsynth.simulate import simulate_lab_trajectories

FAST = {"epochs": 3, "batch_size": 16, "hidden_dim": 16, "latent_dim": 4}


@pytest.fixture(scope="module")
def visits():
    return simulate_lab_trajectories(40, mean_visits=5, seed=0)


@pytest.fixture(scope="module")
def fitted(visits):
    df, md = visits
    return SequentialSynthesizer(md, random_state=0, **FAST).fit(df)


def _increasing(df: pd.DataFrame, key: str, index: str) -> bool:
    return bool((df.groupby(key, sort=False)[index].diff().dropna() > 0).all())


def test_sequences_shape_types_and_temporal_logic(fitted, visits):
    real, _ = visits
    syn = fitted.sample(25)
    assert list(syn.columns) == list(real.columns)
    assert syn["patient_id"].nunique() == 25
    assert not syn["patient_id"].isin(real["patient_id"]).any()
    for column in real.columns:
        assert syn[column].dtype == real[column].dtype, column
    assert fitted._context_ == ["sex", "age", "arm", "followup_days"]
    assert (syn.groupby("patient_id")[fitted._context_].nunique() == 1).all().all()
    assert _increasing(syn, "patient_id", "day")
    assert (syn["day"] < syn["followup_days"]).all()  # the discovered end of follow-up
    assert fitted._bounds_.upper == [("followup_days", True)]
    assert set(syn["ckd_stage"]) <= set(real["ckd_stage"])
    # every patient's rows are contiguous and sorted by time
    assert syn["patient_id"].ne(syn["patient_id"].shift()).sum() == 25


def test_fitted_state_ends_in_underscore(fitted, visits, tmp_path):
    """Everything fit (or load) sets ends in ``_`` (CONVENTIONS), as in scikit-learn."""
    _, md = visits
    fresh = vars(SequentialSynthesizer(md, random_state=0, **FAST))
    loaded = load(fitted.save(tmp_path / "seq.zip"))
    for model in (fitted, loaded):
        assert sorted(k for k in vars(model) if k not in fresh and not k.endswith("_")) == []


def test_same_seed_same_sequences_and_reset(fitted, visits):
    df, md = visits
    again = SequentialSynthesizer(md, random_state=0, **FAST).fit(df)
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(again.sample(6), fitted.sample(6))


def test_unsorted_rows_give_the_same_model(fitted, visits):
    df, md = visits
    shuffled = df.sample(frac=1.0, random_state=3)
    before = shuffled.copy()
    again = SequentialSynthesizer(md, random_state=0, **FAST).fit(shuffled)
    pd.testing.assert_frame_equal(shuffled, before)  # the input is not modified
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(again.sample(5), fitted.sample(5))


@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_save_load_same_rows_and_no_training_row(fitted, visits, tmp_path, name):
    real, _ = visits
    path = fitted.save(tmp_path / name)
    back = load(path)
    assert isinstance(back, SequentialSynthesizer)
    assert back.get_privacy_report() == fitted.get_privacy_report()
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(back.sample(7), fitted.sample(7))
    if name == "model":
        text = " ".join(p.read_text() for p in Path(path).glob("*.json"))
        assert not any(pid in text for pid in real["patient_id"].unique())
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        assert manifest["model"] == "sequential"


def test_context_conditions(fitted):
    syn = fitted.sample(context=pd.DataFrame({"arm": ["B", "B", "A"], "sex": ["F", None, "M"]}))
    first = syn.groupby("patient_id", sort=False).first()
    assert first["arm"].tolist() == ["B", "B", "A"]
    assert first["sex"].iloc[0] == "F" and first["sex"].iloc[2] == "M"
    with pytest.raises(ParameterError, match="not context columns"):
        fitted.sample(2, context=pd.DataFrame({"creatinine": [1.0, 2.0]}))
    with pytest.raises(ParameterError, match="num_sequences=3 but context has 1 rows"):
        fitted.sample(3, context=pd.DataFrame({"arm": ["A"]}))


def test_registry_names_and_single_table_listing():
    assert clinsynth.get_synthesizer("par") is SequentialSynthesizer
    assert clinsynth.get_synthesizer("sequential") is SequentialSynthesizer
    assert "sequential" not in clinsynth.list_synthesizers()
    assert clinsynth.list_synthesizers(sequential=True)["sequential"] is SequentialSynthesizer


def _two_patients() -> tuple[pd.DataFrame, Metadata]:
    df = pd.DataFrame(
        {
            "pid": ["a", "a", "a", "b", "b", "c", "c"],
            "sex": ["F", "F", "F", "M", "M", "F", "F"],
            "t": [0, 3, 9, 0, 5, 0, 2],
            "lab": [1.0, 1.2, 1.1, 2.0, 2.5, 0.5, 0.7],
        }
    )
    md = Metadata.detect_from_dataframe(df)
    md.update_column("pid", sdtype="id")
    md.update_column("t", sdtype="numerical", computer_representation="Int64")
    md.update_column("lab", sdtype="numerical")
    md.set_sequence_key("pid")
    md.set_sequence_index("t")
    return df, md


def test_bad_input_each_gets_a_clear_error():
    df, md = _two_patients()
    no_key = md.copy()
    no_key.set_sequence_key(None)
    no_key.set_sequence_index(None)
    with pytest.raises(MetadataError, match="needs the table's sequence_key"):
        SequentialSynthesizer(no_key, **FAST).fit(df)
    single = df.drop_duplicates("pid")
    with pytest.raises(DataError, match="exactly one event"):
        SequentialSynthesizer(md, **FAST).fit(single)
    ties = df.assign(t=[0, 3, 3, 0, 5, 0, 2])
    with pytest.raises(DataError, match=r"ties: 2 rows of 1 patients .*pid='a', t=3"):
        SequentialSynthesizer(md, **FAST).fit(ties)
    nulls = df.assign(t=[0, 3, None, 0, 5, 0, 2])
    with pytest.raises(DataError, match=r"index 't' is empty .* in 1 rows \(first rows: 3\)"):
        SequentialSynthesizer(md, **FAST).fit(nulls)
    no_patient = df.assign(pid=["a", None, "a", "b", "b", "c", "c"])
    with pytest.raises(DataError, match="sequence key 'pid' is empty in 1 rows"):
        SequentialSynthesizer(md, **FAST).fit(no_patient)
    with pytest.raises(DataError, match=r"change: 'lab' in 3 patients \(first: pid='a'\)"):
        SequentialSynthesizer(md, context_columns=["sex", "lab"], **FAST).fit(df)
    with pytest.raises(MetadataError, match="context_columns \\['nope'\\]"):
        SequentialSynthesizer(md, context_columns=["nope"], **FAST).fit(df)
    with pytest.raises(ParameterError, match="'epochs' parameter of SequentialSynthesizer"):
        SequentialSynthesizer(md, epochs=0).fit(df)


def test_metadata_words_round_trip_and_validation():
    df, md = _two_patients()
    table = Metadata.from_dict(md.to_dict()).get_table()
    assert (table.sequence_key, table.sequence_index) == ("pid", "t")
    bad = md.copy()
    bad.update_column("t", sdtype="categorical")
    with pytest.raises(MetadataError, match="sequence_index 't' has sdtype 'categorical'"):
        bad.validate()
    with pytest.raises(MetadataError, match="'nope' is not a column"):
        md.set_sequence_key("nope")
    dropped = md.copy()
    dropped.remove_column("t")
    assert dropped.get_table().sequence_index is None


def _dated_visits(n: int = 30, seed: int = 0) -> tuple[pd.DataFrame, Metadata]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 6, n)
    who = np.repeat(np.arange(n), counts)
    first = np.cumsum(counts) - counts
    birth = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 9000, n), unit="D")
    entry = birth + pd.to_timedelta(rng.integers(7000, 20000, n), unit="D")
    gaps = rng.integers(5, 200, len(who))
    gaps[first] = 0
    offsets = np.cumsum(gaps) - np.cumsum(gaps)[first][who]
    dates = entry[who] + pd.to_timedelta(offsets, unit="D")
    death = dates[first + counts - 1] + pd.to_timedelta(rng.integers(1, 400, n), unit="D")
    df = pd.DataFrame(
        {
            "pid": np.char.add("p", who.astype(str)),
            "birth": birth[who].strftime("%Y-%m-%d"),
            "death": death[who].strftime("%Y-%m-%d"),
            "visit": dates.strftime("%Y-%m-%d"),
            "sbp": rng.normal(130, 10, len(who)).round(),
            "dbp": rng.normal(80, 5, len(who)).round(),
        }
    )
    md = Metadata.detect_from_dataframe(df)
    md.update_column("pid", sdtype="id")
    md.get_table().constraints = []
    md.set_sequence_key("pid")
    md.set_sequence_index("visit")
    return df, md


def test_dates_bounds_and_rules_hold_by_construction():
    df, md = _dated_visits()
    rule = Inequality(low="dbp", high="sbp")
    model = SequentialSynthesizer(md, random_state=1, constraints=[rule], **FAST).fit(df)
    assert model._bounds_.upper == [("death", True)]
    assert model._bounds_.lower == [("birth", True)]
    syn = model.sample(40)
    assert syn["visit"].str.match(r"^\d{4}-\d{2}-\d{2}$").all()
    visit, death, birth = (pd.to_datetime(syn[c]) for c in ("visit", "death", "birth"))
    assert (visit < death).all() and (visit > birth).all()
    assert (
        syn.groupby("pid")["visit"].apply(lambda s: pd.to_datetime(s).diff().dropna())
        > pd.Timedelta(0)
    ).all()
    assert (syn["dbp"] <= syn["sbp"]).all()
    assert model._n_event_rules_ == 1  # reparametrized for the event network


def test_rule_across_context_and_events_is_checked_on_every_row():
    df, md = _two_patients()
    df = pd.concat([df.assign(pid=df["pid"] + str(i)) for i in range(4)], ignore_index=True)
    df["cap"] = df.groupby("pid")["lab"].transform("max") + 0.5
    df["visit_id"] = np.arange(len(df)) + 1000
    md.add_column("cap", sdtype="numerical")
    md.add_column("visit_id", sdtype="id")
    model = SequentialSynthesizer(
        md, random_state=0, constraints=[Inequality(low="lab", high="cap")], **FAST
    ).fit(df)
    assert "cap" in model._context_ and model._n_event_rules_ == 0
    syn = model.sample(60)
    assert (syn["lab"] <= syn["cap"]).all()
    assert syn["pid"].nunique() == 60
    assert syn["visit_id"].is_unique and not syn["visit_id"].isin(df["visit_id"]).any()


def test_tampered_bundle_is_a_bundle_error(fitted, tmp_path):
    from clinsynth.errors import BundleError

    path = fitted.save(tmp_path / "model")
    model_json = Path(path) / "model.json"
    state = json.loads(model_json.read_text())
    state["gap_knots"] = [3.0, 1.0]
    model_json.write_text(json.dumps(state))
    with pytest.raises(BundleError, match="gap_knots must be increasing"):
        load(path)
    state["gap_knots"] = [1.0, 3.0]
    state["event_columns"] = "creatinine"
    model_json.write_text(json.dumps(state))
    with pytest.raises(BundleError, match="'event_columns' must be a list"):
        load(path)


def test_privacy_report_says_no_dp(fitted):
    report = fitted.get_privacy_report()
    assert report["differential_privacy"] is False
    assert "no differential privacy (use epsilon=" in report["guarantee"]
    assert "patient_id" in report["generated_columns"]
