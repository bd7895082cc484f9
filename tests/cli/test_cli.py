import json

import numpy as np
import pandas as pd
import pytest

from clinsynth.cli import main, parse_conditions


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    age = rng.integers(20, 90, n)
    df = pd.DataFrame(
        {
            "patient_id": np.arange(n),
            "age": age,
            "sbp": (100 + age * 0.5 + rng.normal(0, 5, n)).round(1),
            "sex": rng.choice(["F", "M"], n),
            "condition": rng.choice(["healthy", "diabetes", "hypertension"], n),
        }
    )
    path = tmp_path / "patients.csv"
    df.to_csv(path, index=False)
    return path


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_detect_fit_sample_info_models(tmp_path, csv, capsys):
    md_path = tmp_path / "metadata.json"
    code, out, _ = run(["detect", csv, "-o", md_path], capsys)
    assert code == 0 and md_path.exists()
    assert json.loads(md_path.read_text())["tables"]["table"]["primary_key"] == "patient_id"
    code, out, _ = run(["fit", csv, "-m", md_path, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 0 and (tmp_path / "model" / "manifest.json").exists()
    for suffix in ("csv", "xlsx", "parquet"):
        out_path = tmp_path / f"syn.{suffix}"
        code, _, err = run(["sample", tmp_path / "model", "-n", 40, "-o", out_path], capsys)
        assert code == 0, err
        assert out_path.exists()
    syn = pd.read_csv(tmp_path / "syn.csv")
    assert syn.shape == (40, 5)
    code, out, _ = run(
        [
            "sample",
            tmp_path / "model",
            "-n",
            25,
            "-c",
            "condition=diabetes",
            "-c",
            "age>=60",
            "-o",
            tmp_path / "dm.csv",
        ],
        capsys,
    )
    assert code == 0
    dm = pd.read_csv(tmp_path / "dm.csv")
    assert len(dm) == 25 and (dm["condition"] == "diabetes").all() and (dm["age"] >= 60).all()
    code, out, _ = run(["info", tmp_path / "model"], capsys)
    assert code == 0 and "gaussian_copula" in out and "training rows" in out
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "gaussian_copula" in out


def test_help_everywhere_has_examples(capsys):
    for command in ("fit", "sample", "detect"):
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0 and "clinsynth " + command in out


def write(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


BAD_DATA = {
    "empty file": (b"", "is empty"),
    "not a table": (b"\x00\x01PK\x03\x04binary junk\x00\x00", "binary"),
    "duplicate columns": (b"a,b,a\n1,2,3\n4,5,6\n", "duplicate column names"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_gives_one_line_exit_2_and_no_output(tmp_path, capsys, case):
    content, message = BAD_DATA[case]
    data = write(tmp_path, "data.csv", content)
    code, out, err = run(["fit", data, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 2
    assert err.startswith("Error: ")
    assert message in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_detected_metadata_fits_its_own_data(tmp_path, capsys):
    """An empty column, a '.' for missing, stray text among numbers: warnings, not errors."""
    rows = "".join(
        f"{i},,{i * 2 if i % 9 else '.'},{i if i != 7 else 'see notes'}\n" for i in range(40)
    )
    data = write(tmp_path, "data.csv", ("a,empty,dotted,mixed\n" + rows).encode())
    code, _, err = run(["fit", data, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 0, err
    assert "column 'empty' is empty" in err
    assert "column 'dotted'" in err and "read as missing" in err
    assert "column 'mixed' is mostly numbers" in err and "'see notes'" in err
    # Declared numerical by hand, the stray text is still an error that names it.
    md = {"columns": {"a": {"sdtype": "numerical"}, "empty": {"sdtype": "numerical"}}}
    md["columns"] |= {"dotted": {"sdtype": "numerical"}, "mixed": {"sdtype": "numerical"}}
    (tmp_path / "md.json").write_text(json.dumps(md))
    code, _, err = run(["fit", data, "-m", tmp_path / "md.json", "-o", tmp_path / "m2"], capsys)
    assert code == 2 and "not numbers" in err and "'see notes'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m2").exists()


def test_holdout_is_kept_beside_the_model_and_found_by_evaluate(tmp_path, csv, capsys):
    model = tmp_path / "model"
    code, out, err = run(["fit", csv, "--holdout", 0.2, "-o", model, "-q"], capsys)
    assert code == 0, err
    held = tmp_path / "model.holdout.csv"
    assert held.exists() and "do not share it" in out
    inside = [p.name for p in model.iterdir()]
    assert "manifest.json" in inside and not any(n.endswith(".csv") for n in inside)
    real, kept = pd.read_csv(csv), pd.read_csv(held)
    assert len(kept) == 60 and kept["patient_id"].isin(real["patient_id"]).all()
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["fit"]["num_training_rows"] == 240
    code, _, err = run(["sample", model, "-n", 240, "-o", tmp_path / "syn.csv"], capsys)
    assert code == 0, err
    report = tmp_path / "report.html"
    args = ["evaluate", csv, tmp_path / "syn.csv", "--model", model, "--target", "condition"]
    code, out, err = run([*args, "-o", report, "--json", tmp_path / "r.json", "-q"], capsys)
    assert code == 0, err
    assert "model.holdout.csv" in out and "Took the 60 held-out rows out of REAL" in out
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["info"]["skipped"] == {} or "privacy" not in summary["info"]["skipped"]
    assert "ML utility" in out and "Privacy" in out and "not measured" not in out
    assert "DCR share" in out
    # The training part as REAL works the same; a REAL of another size is refused.
    pd.read_csv(csv)[~real["patient_id"].isin(kept["patient_id"])].to_csv(
        tmp_path / "train.csv", index=False
    )
    code, out, err = run([*args[:1], tmp_path / "train.csv", *args[2:], "-o", report, "-q"], capsys)
    assert code == 0, err
    real.head(100).to_csv(tmp_path / "part.csv", index=False)
    code, _, err = run([*args[:1], tmp_path / "part.csv", *args[2:], "-o", report, "-q"], capsys)
    assert code == 2 and "has 100 rows" in err


@pytest.mark.parametrize("share", ["0", "0.9", "half"])
def test_bad_holdout_share_is_one_line(tmp_path, csv, capsys, share):
    code, _, err = run(["fit", csv, "--holdout", share, "-o", tmp_path / "m", "-q"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_sample_shows_progress_and_quiet_hides_it(tmp_path, csv, capsys):
    assert run(["fit", csv, "-o", tmp_path / "model", "-q"], capsys)[0] == 0
    code, out, _ = run(["sample", tmp_path / "model", "-n", 30, "-o", tmp_path / "a.csv"], capsys)
    assert code == 0 and "sampling" in out and "done" in out
    code, out, _ = run(
        ["sample", tmp_path / "model", "-n", 30, "-o", tmp_path / "b.csv", "-q"], capsys
    )
    assert code == 0 and "sampling" not in out and "Generated 30 rows" in out


def test_fit_progress_has_steps_and_one_eta(tmp_path, csv, capsys):
    code, out, _ = run(["fit", csv, "-o", tmp_path / "model"], capsys)
    assert code == 0 and "4/4" in out  # checking, learning the columns, encoding, fitting
    code, out, _ = run(
        ["fit", csv, "--model", "tvae", "--epochs", 2, "-o", tmp_path / "tvae"], capsys
    )
    bar = [line for line in out.splitlines() if "fitting tvae" in line]
    assert bar and all(line.count("ETA") == 1 for line in bar), out


def test_flags_have_no_type_in_help(capsys):
    code, out, _ = run(["fit", "--help"], capsys)
    assert code == 0 and "--quiet" in out and "<bool>" not in out and "BOOLEAN" not in out


def test_unknown_encoding_is_read_or_refused_clearly(tmp_path, capsys):
    data = write(tmp_path, "latin.csv", "name,city\nJos\xe9,M\xfcnchen\n".encode("latin-1") * 1)
    code, _, err = run(["detect", data, "-o", tmp_path / "m.json"], capsys)
    assert code == 0, err


def test_constant_column_is_a_warning_not_an_error(tmp_path, csv, capsys):
    df = pd.read_csv(csv).assign(site="A")
    df.to_csv(csv, index=False)
    code, _, err = run(["fit", csv, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 0
    assert "constant" in err and "'site'" in err


def test_metadata_errors(tmp_path, csv, capsys):
    md = json.loads(
        '{"columns": {"patient_id": {"sdtype": "id"}, "age": {"sdtype": "numerical"},'
        ' "missing_col": {"sdtype": "categorical"}}, "primary_key": "patient_id"}'
    )
    (tmp_path / "md.json").write_text(json.dumps(md))
    code, _, err = run(["fit", csv, "-m", tmp_path / "md.json", "-o", tmp_path / "m"], capsys)
    assert code == 2 and "missing_col" in err and "not in the data" in err
    df = pd.read_csv(csv)
    df.loc[5, "patient_id"] = 0
    df.to_csv(csv, index=False)
    md = {
        "columns": {c: {"sdtype": "categorical"} for c in df.columns},
        "primary_key": "patient_id",
    }
    md["columns"]["patient_id"] = {"sdtype": "id"}
    md["columns"]["age"] = {"sdtype": "numerical"}
    md["columns"]["sbp"] = {"sdtype": "numerical"}
    (tmp_path / "md.json").write_text(json.dumps(md))
    code, _, err = run(["fit", csv, "-m", tmp_path / "md.json", "-o", tmp_path / "m"], capsys)
    assert code == 2 and "primary key 'patient_id' has 1 duplicated values" in err
    assert not (tmp_path / "m").exists()


def test_bad_models(tmp_path, csv, capsys):
    code, _, _ = run(["fit", csv, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 0
    manifest = tmp_path / "model" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 1000
    manifest.write_text(json.dumps(data))
    code, _, err = run(["sample", tmp_path / "model", "-n", 5, "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and "Upgrade clinsynth" in err
    (tmp_path / "model" / "manifest.json").write_text("{")
    code, _, err = run(["sample", tmp_path / "model", "-n", 5, "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and "corrupt" in err
    assert not (tmp_path / "o.csv").exists()
    code, _, err = run(["fit", csv, "--model", "nope", "-o", tmp_path / "x"], capsys)
    assert code == 2 and "Unknown model 'nope'" in err


def test_condition_parsing():
    assert parse_conditions(["condition=diabetes", "age>=60", "age<=80", "x=1.5"]) == {
        "condition": "diabetes",
        "age": (60, 80),
        "x": 1.5,
    }


def test_demo_writes_everything(tmp_path, capsys):
    code, out, err = run(["demo", "--rows", 400, "--output", tmp_path / "demo"], capsys)
    assert code == 0, err
    for name in ("real.csv", "synthetic.csv", "metadata.json", "report.html", "report.json"):
        assert (tmp_path / "demo" / name).exists(), name
    assert (tmp_path / "demo" / "model" / "manifest.json").exists()
    assert "Fidelity" in out and "Privacy" in out


def test_multi_table_folder_and_duckdb(tmp_path, capsys):
    code, _, err = run(
        ["simulate", "hospital", "-n", 150, "-o", tmp_path / "hosp", "--seed", 2], capsys
    )
    assert code == 0, err
    code, _, err = run(
        [
            "fit",
            tmp_path / "hosp",
            "-m",
            tmp_path / "hosp" / "metadata.json",
            "-o",
            tmp_path / "model",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    code, _, err = run(
        ["sample", tmp_path / "model", "--scale", 0.5, "-o", tmp_path / "syn"], capsys
    )
    assert code == 0, err
    patients = pd.read_csv(tmp_path / "syn" / "patients.csv")
    visits = pd.read_csv(tmp_path / "syn" / "visits.csv")
    labs = pd.read_csv(tmp_path / "syn" / "lab_results.csv")
    assert visits["patient_id"].isin(patients["patient_id"]).all()
    assert labs["visit_id"].isin(visits["visit_id"]).all()
    url = f"duckdb:///{tmp_path / 'syn.duckdb'}"
    code, _, err = run(["sample", tmp_path / "model", "--scale", 0.5, "--sql", url], capsys)
    assert code == 0, err
    code, _, err = run(["fit", "--sql", url, "-o", tmp_path / "model2", "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "model2" / "manifest.json").exists()


def test_sample_precision_option(tmp_path, csv, capsys):
    model = tmp_path / "tvae"
    code, _, err = run(
        ["fit", csv, "--model", "tvae", "--epochs", 1, "-o", model, "-q", "--seed", 0], capsys
    )
    assert code == 0, err
    code, out, _ = run(["info", model], capsys)
    assert code == 0 and "trained precision" in out and "float32" in out
    out_path = tmp_path / "bf16.csv"
    code, _, err = run(
        ["sample", model, "-n", 50, "--precision", "bfloat16", "-o", out_path], capsys
    )
    assert code == 0, err
    assert pd.read_csv(out_path).shape == (50, 5)
    for precision in ("auto", "float32"):
        code, _, err = run(
            ["sample", model, "-n", 20, "--precision", precision, "-o", tmp_path / "p.csv"],
            capsys,
        )
        assert code == 0, err
    code, _, err = run(
        ["sample", model, "-n", 5, "--precision", "half", "-o", tmp_path / "x.csv"], capsys
    )
    assert code != 0 and "sample_precision" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    copula = tmp_path / "copula"
    assert run(["fit", csv, "-o", copula, "-q"], capsys)[0] == 0
    code, _, err = run(
        ["sample", copula, "-n", 5, "--precision", "bfloat16", "-o", tmp_path / "y.csv"], capsys
    )
    assert code != 0 and "--precision" in err and len(err.strip().splitlines()) == 1


USAGE_ERRORS = {
    "unknown sub-command": (["fitt"], "No such command 'fitt'"),
    "bad choice": (["simulate", "cohrt", "-o", "x.csv"], "'cohrt' is not one of"),
    "unknown option": (["sample", "model", "--rows", "5", "-o", "x.csv"], "--rows"),
    "missing required option": (["fit", "data.csv"], "Missing option '--output'"),
    "bad value type": (["sample", "model", "-n", "abc", "-o", "x.csv"], "'--num-rows'"),
    "bad value type of a count": (["simulate", "cohort", "-n", "1.5", "-o", "x.csv"], "-n"),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, case):
    """Whatever typer the range allows (click's exceptions, or typer's own copy of them)."""
    args, message = USAGE_ERRORS[case]
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2
    assert message in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "--help" in lines[0]  # says where to look
    assert "Traceback" not in err + out and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_help_and_no_arguments_exit_0(capsys):
    assert run(["--help"], capsys)[0] == 0
    code, out, err = run([], capsys)
    assert code == 0 and "fit" in out + err


def test_a_many_problem_error_is_one_line(tmp_path, capsys):
    """Validation collects every problem; the CLI joins them into its one line."""
    n = 40
    df = pd.DataFrame({f"c{i}": ["x"] * (n - 1) + ["oops"] for i in range(8)})
    md = {"columns": {c: {"sdtype": "numerical"} for c in df.columns}}
    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "md.json").write_text(json.dumps(md))
    code, out, err = run(
        ["fit", tmp_path / "d.csv", "-m", tmp_path / "md.json", "-o", tmp_path / "m", "-q"],
        capsys,
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "(8 problems)" in lines[0] and "; and 3 more" in lines[0]
    assert lines[0].count("'c") == 5  # the first five columns named
    assert not (tmp_path / "m").exists()


def test_one_line_joins_problems():
    from clinsynth.cli import one_line
    from clinsynth.errors import DataError, ParameterError

    assert one_line(ParameterError("Bad.\nSecond line.")) == "Bad. Second line."
    err = DataError.from_problems("Bad data", [f"p{i}" for i in range(7)])
    assert one_line(err) == "Bad data (7 problems): p0; p1; p2; p3; p4; and 2 more"
    assert one_line(DataError.from_problems("Bad data", ["only"])) == "Bad data: only"


def test_cli_start_imports_no_heavy_module():
    """`clinsynth --help` must start fast: no torch, pandas, scikit-learn or streamlit."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from clinsynth.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['fit', '--help']) == 0\n"
        "heavy = ('torch', 'pandas', 'sklearn', 'scipy', 'streamlit', 'plotly', 'sqlalchemy')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out, out


def test_a_misspelt_condition_column_gets_a_suggestion(tmp_path, capsys):
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({f"lab_{i:02d}": rng.normal(size=200) for i in range(56)})
    wide["condition"] = rng.choice(["healthy", "diabetes"], 200)
    wide.to_csv(tmp_path / "wide.csv", index=False)
    assert run(["fit", tmp_path / "wide.csv", "-o", tmp_path / "model", "-q"], capsys)[0] == 0
    args = ["sample", tmp_path / "model", "-n", 5, "-o", tmp_path / "o.csv"]
    code, _, err = run([*args, "-c", "conditon=diabetes"], capsys)
    assert code == 2 and "Did you mean 'condition'?" in err
    assert "lab_30" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run([*args, "-c", "zzz=1"], capsys)
    assert code == 2 and "Columns: lab_00" in err and "and 49 more" in err


def test_budget_skips_are_said_in_words(capsys):
    from clinsynth.cli._core import _print_leaderboard
    from clinsynth.synthesizers._auto_board import rank_leaderboard

    rows = [
        {"model": "gaussian_copula", "score": 0.8, "dcr_share": 0.5, "mia_auc": 0.5,
         "passes_privacy": True, "fit_seconds": 1.2},
        {"model": "tvae", "status": "skipped", "note": "needs ~400 s for a tenth of its epochs"},
        {"model": "ctgan", "status": "skipped", "note": "no time left (3 s)"},
    ]  # fmt: skip
    _print_leaderboard(rank_leaderboard(rows), "3m")
    out = capsys.readouterr().out
    assert "the time budget (3m) left no time for tvae, ctgan" in " ".join(out.split())
    assert "chosen" in out and max(len(line) for line in out.splitlines()) <= 80


def test_info_shows_the_trees_leaf_size_and_its_search(tmp_path, csv, capsys):
    model = tmp_path / "cart"
    code, _, err = run(["fit", csv, "--model", "cart", "-o", model, "-q", "--seed", 0], capsys)
    assert code == 0, err
    code, out, _ = run(["info", model], capsys)
    assert code == 0 and "leaf size (rows)" in out and "held-out DCR share by size" in out
