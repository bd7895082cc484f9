import json

from evaldata import splits

from clinsynth.cli import main


def test_evaluate_command_writes_reports(tmp_path, capsys):
    train, holdout, fresh, md = splits()
    paths = {}
    for name, df in (("real", train), ("synth", fresh), ("holdout", holdout)):
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    md_path = tmp_path / "metadata.json"
    md.save_to_json(md_path)
    out, js = tmp_path / "out" / "report.html", tmp_path / "out" / "report.json"
    code = main(
        [
            "evaluate",
            str(paths["real"]),
            str(paths["synth"]),
            "--metadata",
            str(md_path),
            "--holdout",
            str(paths["holdout"]),
            "--target",
            "risk",
            "--sensitive",
            "smoker",
            "--no-detection",
            "-q",
            "-o",
            str(out),
            "--json",
            str(js),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert out.exists() and js.exists()
    assert "Privacy" in printed and "DCR share" in printed
    data = json.loads(js.read_text())
    assert set(data["reports"]) == {"diagnostic", "quality", "utility", "privacy"}
    assert data["info"]["sensitive_columns"] == ["smoker"]


def test_missing_file_is_one_line_and_code_2(tmp_path, capsys):
    code = main(
        [
            "evaluate",
            str(tmp_path / "nope.csv"),
            str(tmp_path / "x.csv"),
            "-o",
            str(tmp_path / "r.html"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "nope.csv" in err
    assert not (tmp_path / "r.html").exists()


def test_evaluate_with_a_saved_model(tmp_path, capsys):
    from clinsynth import GaussianCopulaSynthesizer

    train, holdout, _, md = splits()
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(train)
    model.save(tmp_path / "model")
    synthetic = model.sample(300)
    train.to_csv(tmp_path / "real.csv", index=False)
    synthetic.to_csv(tmp_path / "synth.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    md.save_to_json(tmp_path / "md.json")
    out = tmp_path / "report.html"
    code = main(
        [
            "evaluate",
            str(tmp_path / "real.csv"),
            str(tmp_path / "synth.csv"),
            "-m",
            str(tmp_path / "md.json"),
            "--holdout",
            str(tmp_path / "holdout.csv"),
            "--model",
            str(tmp_path / "model"),
            "--no-detection",
            "-q",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert "GaussianCopulaSynthesizer" in text
    assert "no training losses" in text  # a copula has no loss curve: said, not crashed


def _schema_folders(tmp_path):
    """The hospital simulator (50 patients) and its synthetic copy, as folders of CSVs."""
    from clinsynth.io import write_tables
    from clinsynth.multitable import HMASynthesizer
    from clinsynth.simulate import simulate_hospital

    tables, md = simulate_hospital(50, seed=0)
    synthetic = HMASynthesizer(md, random_state=0).fit(tables).sample()
    real_dir = write_tables(tables, tmp_path / "real")
    synth_dir = write_tables(synthetic, tmp_path / "synthetic")
    md_path = tmp_path / "metadata.json"
    md.save_to_json(md_path)
    return real_dir, synth_dir, md_path


def test_evaluate_folders_writes_the_multi_table_report(tmp_path, capsys):
    real_dir, synth_dir, md_path = _schema_folders(tmp_path)
    out, js = tmp_path / "out" / "schema.html", tmp_path / "out" / "schema.json"
    args = [str(real_dir), str(synth_dir), "-m", str(md_path), "-q", "-o", str(out)]
    code = main(["evaluate", *args, "--json", str(js)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Keys and links: PASS (0 orphan foreign keys in 3 relationships)" in printed
    text = out.read_text(encoding="utf-8")
    for heading in ("Children per parent", "Parent-child trends", "Table lab_results"):
        assert heading in text
    data = json.loads(js.read_text())
    assert data["report"] == "multi_table" and data["diagnostic_passed"] is True
    assert len(data["figures"]["cardinality"]) == 3
    assert sorted(data["info"]["rows"]) == ["lab_results", "patients", "visits"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["schema.html", "schema.json"]


def test_evaluate_folders_rejects_single_table_options(tmp_path, capsys):
    real_dir, synth_dir = tmp_path / "real", tmp_path / "synthetic"
    real_dir.mkdir()
    synth_dir.mkdir()
    out = tmp_path / "r.html"
    code = main(["evaluate", str(real_dir), str(synth_dir), "--target", "age", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--target apply to a single table" in err
    assert err.strip().count("\n") == 0 and not out.exists()


def test_evaluate_on_dask_reads_parquet_parts(tmp_path, capsys):
    """--dask: the fidelity report of a folder of Parquet parts, computed partition by
    partition; the single-table options that need rows in memory are refused in one line."""
    import pytest

    pytest.importorskip("dask.dataframe")
    train, _, fresh, md = splits()
    real = tmp_path / "real.parquet"
    train.to_parquet(real)
    parts = tmp_path / "parts"
    parts.mkdir()
    half = len(fresh) // 2
    fresh.iloc[:half].to_parquet(parts / "part-00000.parquet")
    fresh.iloc[half:].to_parquet(parts / "part-00001.parquet")
    md_path = tmp_path / "metadata.json"
    md.save_to_json(md_path)
    out, js = tmp_path / "fidelity.html", tmp_path / "fidelity.json"
    args = ["evaluate", str(real), str(parts), "--dask", "-m", str(md_path), "-o", str(out)]
    code = main([*args, "--no-detection", "--json", str(js), "-q"])
    printed = capsys.readouterr().out
    assert code == 0 and out.exists()
    assert f"{len(fresh):,} synthetic rows" in printed
    saved = json.loads(js.read_text())
    assert 0.5 < saved["reports"]["quality"]["score"] <= 1.0
    assert "Computed on Dask" in out.read_text()
    out.unlink()
    code = main([*args, "--target", "risk"])
    err = capsys.readouterr().err
    assert code == 2 and "--target cannot be used with --dask" in err
    assert err.strip().count("\n") == 0 and not out.exists()
