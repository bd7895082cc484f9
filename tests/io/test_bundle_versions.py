"""Bundles written by earlier clinsynth versions still load and sample (the versioned reader).

The fixtures in ``tests/fixtures/bundles`` were written in bundle format 1, by clinsynth before
the architecture redesign (``make_v1_bundles.py`` there says how): a Gaussian copula with a
rule, a TVAE, a differentially private TVAE and a two-table schema.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import clinsynth
from clinsynth.multitable import HierarchicalSynthesizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"


def _format_version(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))["format_version"]


@pytest.mark.parametrize("name", ["copula_v1.zip", "tvae_v1.zip", "tvae_dp_v1.zip"])
def test_v1_table_bundles_load_and_sample(name):
    path = FIXTURES / name
    assert _format_version(path) == 1
    model = clinsynth.load(path)
    rows = model.sample(40)
    assert list(rows.columns) == ["pid", "age", "sbp", "dbp", "sex"]
    assert rows["pid"].is_unique
    assert rows["age"].between(20, 89).all()
    assert set(rows["sex"].dropna()) <= {"F", "M", "Other"}
    model.reset_sampling()
    assert model.sample(40).equals(rows)  # the saved seed: the same rows again
    kept = model.sample(10, conditions={"sex": "M"})
    assert (kept["sex"] == "M").all()


def test_v1_copula_keeps_its_rule():
    model = clinsynth.load(FIXTURES / "copula_v1.zip")
    rows = model.sample(200)
    assert (rows["dbp"] <= rows["sbp"]).all()
    assert model.get_privacy_report()["differential_privacy"] is False


def test_v1_dp_bundle_reports_its_budget():
    report = clinsynth.load(FIXTURES / "tvae_dp_v1.zip").get_privacy_report()
    assert report["differential_privacy"] is True
    assert report["epsilon"] == 5.0
    assert report["epsilon_spent"] == pytest.approx(4.996856631324964)
    assert report["delta"] == pytest.approx(1 / 600)
    assert report["steps"] == 6
    assert [m["consumer"] for m in report["ledger"]].count("training") == 1


def test_v1_schema_bundle_loads_and_samples():
    path = FIXTURES / "schema_v1.zip"
    assert _format_version(path) == 1
    model = clinsynth.load(path)
    assert isinstance(model, HierarchicalSynthesizer)
    tables = model.sample(scale=1.0)
    assert set(tables) == {"patients", "visits"}
    assert len(tables["patients"]) == 60
    assert tables["visits"]["patient_id"].isin(tables["patients"]["patient_id"]).all()
    assert tables["patients"]["patient_id"].is_unique
