"""``clinsynth simulate``: files written, metadata beside them, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
import yaml

from clinsynth import Metadata
from clinsynth.cli import main
from clinsynth.io import load_csvs, read_table


def test_population_to_csv(tmp_path, capsys):
    out = tmp_path / "pop.csv"
    assert main(["simulate", "population", "-n", "150", "-o", str(out), "--seed", "1"]) == 0
    df = read_table(out)
    md = Metadata.load_from_json(tmp_path / "pop.metadata.json")
    assert len(df) == 150 and list(df.columns) == list(md.columns)
    md.validate_data(df)
    assert "150 rows" in capsys.readouterr().out


def test_same_seed_same_file(tmp_path):
    for name in ("a.csv", "b.csv"):
        main(["simulate", "population", "-n", "80", "-o", str(tmp_path / name), "--seed", "9"])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_population_with_diseases_and_config(tmp_path):
    graph = {
        "nodes": [
            {"id": "flu", "type": "disease", "prevalence": 0.2},
            {"id": "temp", "type": "lab", "mean": 36.8, "sd": 0.3},
        ],
        "edges": [{"source": "flu", "target": "temp", "type": "shift", "shift": 1.5}],
    }
    config = tmp_path / "graph.yaml"
    config.write_text(yaml.safe_dump(graph))
    out = tmp_path / "flu.csv"
    rc = main(["simulate", "population", "-n", "50", "-o", str(out), "--config", str(config),
               "--diseases", "flu"])  # fmt: skip
    assert rc == 0
    assert list(read_table(out).columns) == ["patient_id", "age", "sex", "ancestry", "flu", "temp"]


def test_cohort_format_without_suffix(tmp_path):
    out = tmp_path / "cohort"
    rc = main(["simulate", "cohort", "-n", "40", "-o", str(out), "--format", "parquet",
               "--conditions", "healthy,diabetes"])  # fmt: skip
    assert rc == 0
    df = read_table(tmp_path / "cohort.parquet")
    assert set(df["condition"]) <= {"healthy", "diabetes"} and len(df) == 40
    Metadata.load_from_json(tmp_path / "cohort.metadata.json").validate_data(df)


def test_hospital_to_folder(tmp_path):
    out = tmp_path / "hospital"
    assert main(["simulate", "hospital", "-n", "30", "-o", str(out), "--seed", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["lab_results.csv", "metadata.json", "patients.csv", "visits.csv"]
    tables = load_csvs(out)
    md = Metadata.load_from_json(out / "metadata.json")
    md.validate_data(tables)
    assert len(tables["patients"]) == 30
    # Running again replaces the previous simulation.
    assert main(["simulate", "hospital", "-n", "20", "-o", str(out)]) == 0
    assert len(read_table(out / "patients.csv")) == 20


def test_case_control_to_folder_and_fitted_with_its_sets(tmp_path):
    out = tmp_path / "matched"
    assert main(["simulate", "case-control", "-n", "60", "-o", str(out), "--seed", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "subjects.csv"]
    subjects = read_table(out / "subjects.csv")
    md = Metadata.load_from_json(out / "metadata.json")
    md.validate_data({"subjects": subjects})
    assert md.relationships[0]["child_foreign_key"] == "case.id"
    assert int((subjects["case.id"] == subjects["id"]).sum()) == 60


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: ")
    return err


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    graph = {
        "nodes": [{"id": "flu", "type": "disease", "prevalence": 0.2}],
        "edges": [{"source": "virus", "target": "flu", "type": "risk", "odds_ratio": 3}],
    }
    config = tmp_path / "graph.json"
    config.write_text(json.dumps(graph))
    out = tmp_path / "x.csv"
    rc = main(["simulate", "population", "-o", str(out), "--config", str(config)])
    assert rc == 2
    assert "node 'virus' is not defined" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["population", "-o", "x.csv", "--diseases", "scurvy"], "scurvy"),
        (["population", "-o", "x.txt"], "unsupported type '.txt'"),
        (["population", "-o", "x.csv", "--format", "parquet"], "disagrees"),
        (["cohort", "-o", "x.csv", "--config", "g.yaml"], "--config does not apply"),
        (["hospital", "-o", "h", "--format", "xlsx"], "CSV or Parquet"),
        (["cohort", "-o", "x.csv", "-n", "0"], "num_rows"),
    ],
)
def test_bad_options(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", *args]) == 2
    assert message in _error_line(capsys)


def test_refuses_to_replace_a_folder_with_other_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["simulate", "hospital", "-n", "5", "-o", str(tmp_path)]) == 2
    assert "other files" in _error_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
