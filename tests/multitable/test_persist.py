"""A schema bundle is a manifest of table bundles: each table keeps its rules, dtypes and
privacy ledger through save and load, as a table model saved alone does."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import Metadata
from clinsynth.cli import main
from clinsynth.constraints import Inequality
from clinsynth.errors import BundleError
from clinsynth.multitable import HierarchicalSynthesizer, HMASynthesizer
from clinsynth.synthesizers import BaseSynthesizer


def _schema(n: int = 80, seed: int = 0) -> tuple[dict[str, pd.DataFrame], Metadata]:
    rng = np.random.default_rng(seed)
    dbp = rng.integers(60, 90, n)
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(n),
            "age": rng.integers(20, 90, n),
            "sex": rng.choice(["F", "M"], n),
            "dbp": dbp,
            "sbp": dbp + rng.integers(10, 50, n),
        }
    )
    visits = pd.DataFrame(
        {
            "visit_id": np.arange(2 * n),
            "patient_id": rng.integers(0, n, 2 * n),
            "ward": rng.choice(["A", "B", "C"], 2 * n),
        }
    )
    tables = {"patients": patients, "visits": visits}
    return tables, Metadata.detect_from_dataframes(tables)


def test_dp_schema_keeps_its_privacy_report(tmp_path, capsys):
    """The patient-level figures (issue 18) are exactly the same after save and load, in
    get_privacy_report() and in `clinsynth info`."""
    tables, md = _schema()
    model = HMASynthesizer(
        md, table_synthesizers="dp_marginal", epsilon=1.0, max_rows_per_patient=3, random_state=0
    )
    model.fit(tables)
    before = model.get_privacy_report()
    assert before["differential_privacy"] is True
    assert before["privacy_unit"] == "patients.patient_id"
    model.save(tmp_path / "schema.zip")
    loaded = clinsynth.load(tmp_path / "schema.zip")
    assert isinstance(loaded, HierarchicalSynthesizer)
    after = loaded.get_privacy_report()
    assert after == before  # every figure: the patient's, the shares, each table's ledger
    assert set(after["tables"]) == {"patients", "visits"}
    for name, report in after["tables"].items():
        assert report["differential_privacy"] is True
        assert report["epsilon"] == after["shares"][name]["epsilon"] < 1.0
    assert main(["info", str(tmp_path / "schema.zip")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "privacy privacy_unit │ patients.patient_id" in out and "(1.0, " in out
    spent = after["shares"]["visits"]["epsilon_spent"]
    assert f"(spent {spent:.4g})" in out and "no differential privacy" not in out
    model.reset_sampling()
    expected = model.sample()
    got = loaded.sample()
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name])


def test_schema_tables_keep_rules_and_dtypes(tmp_path):
    tables, md = _schema()
    md.tables["patients"].constraints.append(Inequality("dbp", "sbp").to_dict())
    model = HMASynthesizer(md, random_state=0).fit(tables)
    table = model.get_table_synthesizer("patients")
    assert table._rules_
    model.save(tmp_path / "schema")
    entry = json.loads((tmp_path / "schema" / "manifest.json").read_text())["tables"]["patients"]
    assert entry["kind"] == "single_table" and entry["prefix"] == "t0"
    assert entry["constraints"] and entry["fit"]["dtypes"]
    loaded = clinsynth.load(tmp_path / "schema")
    again = loaded.get_table_synthesizer("patients")
    assert [r.describe() for r in again._rules_] == [r.describe() for r in table._rules_]
    assert again._dtypes_ == table._dtypes_
    rows = loaded.sample()["patients"]
    assert (rows["dbp"] <= rows["sbp"]).all()
    assert loaded.get_privacy_report()["differential_privacy"] is False


def test_kinds_are_checked_by_each_loader(tmp_path):
    tables, md = _schema(40)
    HMASynthesizer(md, random_state=0).fit(tables).save(tmp_path / "schema")
    with pytest.raises(BundleError, match="multi-table model"):
        BaseSynthesizer.load(tmp_path / "schema")
    table = tables["patients"]
    single = clinsynth.GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(table))
    single.fit(table).save(tmp_path / "table")
    with pytest.raises(BundleError, match="single-table model"):
        HierarchicalSynthesizer.load(tmp_path / "table")
