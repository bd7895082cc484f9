"""HMASynthesizer: keys, cardinality, parent-child dependence, dates, persistence, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import Metadata
from clinsynth.errors import BundleError, DataError, NotFittedError, ParameterError
from clinsynth.multitable import HierarchicalSynthesizer, HMASynthesizer
from clinsynth.synthesizers import BaseSynthesizer

from .mt_data import hospital_metadata, make_hospital


@pytest.fixture(scope="module")
def fitted(hospital):
    return HMASynthesizer(hospital_metadata(), random_state=0).fit(hospital)


@pytest.fixture(scope="module")
def synthetic(fitted):
    return fitted.sample()


def test_fitted_state_ends_in_underscore(fitted, tmp_path):
    """Everything fit (or load) sets ends in ``_`` (CONVENTIONS), as in scikit-learn."""
    fresh = vars(HMASynthesizer(hospital_metadata(), random_state=0))
    loaded = clinsynth.load(fitted.save(tmp_path / "schema.zip"))
    for model in (fitted, loaded):
        assert sorted(k for k in vars(model) if k not in fresh and not k.endswith("_")) == []


def _children(parent: pd.DataFrame, pk: str, child: pd.DataFrame, fk: str) -> pd.Series:
    return child.groupby(fk).size().reindex(parent[pk], fill_value=0)


def assert_integrity(tables: dict[str, pd.DataFrame], md: Metadata) -> None:
    for name, table in md.tables.items():
        if table.primary_key:
            keys = tables[name][table.primary_key]
            assert keys.notna().all() and keys.is_unique, f"{name}.{table.primary_key}"
    for rel in md.relationships:
        child = tables[rel["child_table_name"]][rel["child_foreign_key"]]
        parent = tables[rel["parent_table_name"]][rel["parent_primary_key"]]
        assert child.dropna().isin(parent).all(), rel


def test_alias_and_sizes(fitted, synthetic, hospital):
    assert HMASynthesizer is HierarchicalSynthesizer
    assert list(synthetic) == list(hospital)
    assert len(synthetic["patients"]) == len(hospital["patients"])
    for name in ("visits", "labs", "prescriptions"):
        assert 0.8 < len(synthetic[name]) / len(hospital[name]) < 1.25
        assert list(synthetic[name].columns) == list(hospital[name].columns)


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_every_sample_has_unique_keys_and_no_orphan(fitted, scale):
    tables = fitted.sample(scale=scale)
    assert_integrity(tables, hospital_metadata())
    assert len(tables["patients"]) == round(400 * scale)


def test_multi_parent_keys_are_consistent(fitted, synthetic):
    """A lab result's patient is the patient of its visit (derived, never drawn apart)."""
    labs, visits = synthetic["labs"], synthetic["visits"]
    owner = labs["visit_id"].map(visits.set_index("visit_id")["patient_id"])
    assert (owner == labs["patient_id"]).all()
    plan = fitted.get_plan().set_index("table")
    assert plan.loc["labs", "derived"] == ["patient_id (via patients)"]


def _tiny_hospital() -> dict[str, pd.DataFrame]:
    return make_hospital(120, seed=3)


def test_children_per_parent_distribution_is_kept(synthetic, hospital):
    for parent, pk, child, fk in [
        ("patients", "patient_id", "visits", "patient_id"),
        ("visits", "visit_id", "labs", "visit_id"),
        ("patients", "patient_id", "prescriptions", "patient_id"),
    ]:
        real = _children(hospital[parent], pk, hospital[child], fk)
        synth = _children(synthetic[parent], pk, synthetic[child], fk)
        assert abs(synth.mean() - real.mean()) < 0.15 * real.mean() + 0.05, child
        assert abs(synth.std() - real.std()) < 0.2 * real.std(), child
        assert synth.min() >= real.min() and synth.max() <= real.max()


def test_parent_attributes_drive_children(synthetic, hospital):
    """Diabetic patients have more visits and higher glucose, in the real and synthetic data."""
    for tables, name in ((hospital, "real"), (synthetic, "synthetic")):
        patients = tables["patients"].set_index("patient_id")
        visits = _children(tables["patients"], "patient_id", tables["visits"], "patient_id")
        diabetic = patients["diabetic"].astype(bool).to_numpy()
        ratio = visits[diabetic].mean() / visits[~diabetic].mean()
        assert ratio > 1.5, name
        labs = tables["labs"]
        glucose = labs[labs["test"] == "glucose"]
        high = glucose["patient_id"].map(patients["diabetic"]).astype(bool)
        gap = glucose.loc[high, "value"].mean() - glucose.loc[~high, "value"].mean()
        assert gap > 20, name
        age_corr = np.corrcoef(patients["age"], visits)[0, 1]
        assert age_corr > 0.2, name


def test_dates_follow_parents_within_and_across_tables(synthetic):
    patients, visits, labs = synthetic["patients"], synthetic["visits"], synthetic["labs"]
    birth = pd.to_datetime(visits["patient_id"].map(patients.set_index("patient_id")["birth_date"]))
    assert (visits["admission"] >= birth).all()
    assert (visits["discharge"] >= visits["admission"]).all()
    stay = visits.set_index("visit_id")
    lab_visit = labs["visit_id"]
    assert (labs["lab_date"] >= lab_visit.map(stay["admission"])).all()
    assert (labs["lab_date"] <= lab_visit.map(stay["discharge"])).all()
    # Dates keep their resolution and type: whole days, text in the real format.
    assert (visits["admission"] == visits["admission"].dt.normalize()).all()
    assert patients["birth_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_plan_names_what_was_learned(fitted):
    plan = fitted.get_plan().set_index("table")
    assert plan.loc["patients", "role"] == "root"
    assert plan.loc["labs", "parent"] == "visits.visit_id <- visit_id"
    assert "lab_date: fraction" in plan.loc["labs", "date_rules"]
    assert "discharge: offset" in plan.loc["visits", "date_rules"]
    assert any("diabetic" in c for c in plan.loc["labs", "context"])


def test_same_seed_same_sample_and_stream_moves_on(hospital, fitted):
    fitted.reset_sampling()
    first = fitted.sample(0.3)
    again = HMASynthesizer(hospital_metadata(), random_state=0).fit(hospital).sample(0.3)
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    second = fitted.sample(0.3)
    assert not first["visits"]["cost"].equals(second["visits"]["cost"])
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(fitted.sample(0.3)["labs"], first["labs"])
    fitted.reset_sampling()


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_save_load_round_trip(fitted, tmp_path, suffix):
    path = tmp_path / f"schema_model{suffix}"
    fitted.reset_sampling()
    expected = fitted.sample(0.5)
    fitted.save(path)
    if not suffix:
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["kind"] == "multi_table" and manifest["model"] == "hma"
        assert set(manifest["tables"]) == {"patients", "visits", "labs", "prescriptions"}
        text = " ".join(p.read_text() for p in path.glob("*.json"))
        assert "V000001" not in text  # no real key value in the bundle
    loaded = clinsynth.load(path)
    assert isinstance(loaded, HierarchicalSynthesizer)
    got = loaded.sample(0.5)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name])
    fitted.reset_sampling()


def test_progress_reports_each_table(hospital):
    calls = []
    HMASynthesizer(hospital_metadata(), random_state=1, progress=lambda *a: calls.append(a)).fit(
        hospital
    )
    total = calls[0][0]
    assert calls[0][1] == 0 and calls[-1][:2] == (total, total)
    assert all(t == total for t, _, _ in calls)
    assert [c for _, c, _ in calls] == sorted(c for _, c, _ in calls)  # never goes back
    assert any("labs" in message for _, _, message in calls)


def test_progress_forwards_each_table_models_rounds(hospital):
    """A deep table model's epochs reach the caller, prefixed with the table's name."""
    calls = []
    HMASynthesizer(
        hospital_metadata(),
        table_synthesizers="tvae",
        epochs=2,
        batch_size=50,
        random_state=1,
        progress=lambda *a: calls.append(a),
    ).fit(hospital)
    rounds = [m for _, _, m in calls if "epoch" in m]
    assert any(m.startswith("Table 'labs': epoch 2/2") for m in rounds), rounds
    assert [c for _, c, _ in calls] == sorted(c for _, c, _ in calls)


class _Bootstrap(BaseSynthesizer):
    """A model without native conditioning (resamples training rows): exercises the generic
    path that matches generated rows to parent contexts."""

    def _fit(self, encoded):
        self._rows = encoded

    def _sample(self, num_rows, rng):
        return self._rows[rng.integers(0, len(self._rows), num_rows)]

    def _get_state(self):
        return {}, {}

    def _set_state(self, state, tensors):
        pass


def test_any_table_model_can_be_chosen(hospital):
    model = HMASynthesizer(
        hospital_metadata(), table_synthesizers={"labs": _Bootstrap}, random_state=0
    ).fit(hospital)
    assert model.get_plan().set_index("table").loc["visits", "model"] == "gaussian_copula"
    out = model.sample()
    assert_integrity(out, hospital_metadata())
    labs = out["labs"].merge(out["patients"][["patient_id", "diabetic"]], on="patient_id")
    glucose = labs[labs["test"] == "glucose"].groupby("diabetic")["value"].mean()
    assert glucose[True] > glucose[False] + 10  # rank matching keeps the main dependence
    with pytest.raises(BundleError, match="registry"):
        model.save("never_written")


def test_parameters_are_checked(hospital):
    with pytest.raises(ParameterError, match="orphans"):
        HMASynthesizer(hospital_metadata(), orphans="ignore").fit(hospital)
    with pytest.raises(ParameterError, match="Unknown model 'nope'"):
        HMASynthesizer(hospital_metadata(), table_synthesizers="nope").fit(hospital)
    with pytest.raises(ParameterError, match="table_synthesizers"):
        HMASynthesizer(hospital_metadata(), table_synthesizers={"wards": "copula"}).fit(hospital)
    with pytest.raises(ParameterError, match="Metadata"):
        HMASynthesizer({"tables": {}}).fit(hospital)
    with pytest.raises(NotFittedError):
        HMASynthesizer(hospital_metadata()).sample()


def test_bad_scale_and_missing_tables(fitted, hospital):
    with pytest.raises(ParameterError, match="scale"):
        fitted.sample(scale=-1)
    with pytest.raises(DataError, match="'labs' is in the metadata but not in the data"):
        HMASynthesizer(hospital_metadata()).fit({k: v for k, v in hospital.items() if k != "labs"})


def test_fit_leaves_the_callers_tables_alone(hospital):
    before = {k: v.copy() for k, v in hospital.items()}
    HMASynthesizer(hospital_metadata(), random_state=0, orphans="keep_as_null").fit(hospital)
    for name in hospital:
        pd.testing.assert_frame_equal(hospital[name], before[name])


def test_synthesizer_params_reach_the_models_that_accept_them(hospital):
    model = HMASynthesizer(
        hospital_metadata(), random_state=0, default_distribution="norm", stratify_by=None
    ).fit(_tiny_hospital())
    visits = model.get_table_synthesizer("visits")
    assert visits.get_learned_distributions()["cost"]["distribution"] == "norm"
    assert visits.stratified_by_ is None
    with pytest.raises(ParameterError, match="wards"):
        model.get_table_synthesizer("wards")
