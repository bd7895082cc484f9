"""The CLI's checks before work (issue #21) refuse what would destroy or misuse an input, and
let through what is legitimate: overwriting a model, a previous output folder, a chosen sheet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"age": rng.integers(20, 90, 120), "sex": rng.choice(["F", "M"], 120)}
    ).assign(bmi=lambda d: np.round(rng.normal(27, 4, len(d)), 1))


def test_two_sheet_workbook_names_the_other_sheet_and_reads_the_chosen_one(
    tmp_path, table, capsys, caplog
):
    from clinsynth.io import read_table

    path = tmp_path / "data.xlsx"
    with pd.ExcelWriter(path) as writer:
        table.to_excel(writer, sheet_name="patients", index=False)
        pd.DataFrame({"visit_id": range(30), "cost": np.arange(30) * 2.5}).to_excel(
            writer, sheet_name="visits", index=False
        )
    with caplog.at_level("WARNING", logger="clinsynth"):
        assert list(read_table(path).columns) == list(table.columns)
    assert "2 sheets (patients, visits)" in caplog.text and "--sheet" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="clinsynth"):
        code, out, _ = run(["detect", path, "--sheet", "visits", "-o", tmp_path / "v.json"], capsys)
    assert code == 0 and "cost" in out and "sheets" not in caplog.text
    code, _, _ = run(["fit", path, "--sheet", "visits", "-o", tmp_path / "m", "-q"], capsys)
    assert code == 0


def test_a_previous_model_and_an_empty_folder_may_be_overwritten(tmp_path, table, capsys):
    table.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "empty").mkdir()
    for output in ("m", "m", "m.zip", "m.zip", "empty"):
        code, _, err = run(["fit", tmp_path / "data.csv", "-o", tmp_path / output, "-q"], capsys)
        assert code == 0, err


def test_a_previous_table_folder_may_be_overwritten(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "tables"
    data.mkdir()
    pd.DataFrame({"patient_id": range(40), "age": rng.integers(20, 90, 40)}).to_csv(
        data / "patients.csv", index=False
    )
    pd.DataFrame({"visit_id": range(90), "patient_id": rng.integers(0, 40, 90)}).to_csv(
        data / "visits.csv", index=False
    )
    fit = ["fit", data, "-o", tmp_path / "m", "-q", "--param", "max_context_columns=2"]
    code, _, err = run(fit, capsys)
    assert code == 0, err
    for _ in range(2):
        code, _, err = run(["sample", tmp_path / "m", "-o", tmp_path / "out"], capsys)
        assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["patients.csv", "visits.csv"]


def test_detect_refuses_to_write_over_its_input(tmp_path, table, capsys):
    table.to_csv(tmp_path / "data.csv", index=False)
    before = (tmp_path / "data.csv").read_bytes()
    code, _, err = run(["detect", tmp_path / "data.csv", "-o", tmp_path / "data.csv"], capsys)
    assert code == 2 and "also an input" in err
    assert (tmp_path / "data.csv").read_bytes() == before


def test_mixed_utc_offsets_fit_and_sample(tmp_path, table, capsys):
    stamps = [
        f"2020-01-{1 + i % 28:02d}T10:00:00{'+01:00' if i % 2 else '+02:00'}" for i in range(120)
    ]
    table.assign(ts=stamps).to_csv(tmp_path / "data.csv", index=False)
    code, _, err = run(["fit", tmp_path / "data.csv", "-o", tmp_path / "m", "-q"], capsys)
    assert code == 0, err
    code, _, err = run(["sample", tmp_path / "m", "-n", 20, "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "s.csv")["ts"].str.endswith("+0000").all()
