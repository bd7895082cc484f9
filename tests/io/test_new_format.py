"""The architecture's promise for a new file format: one entry in the table of formats, its test.

A JSON Lines format is added here as one ``FileFormat`` entry (for the test only); reading,
writing, the CLI's input and output checks, ``clinsynth simulate`` (``-o`` and ``--format``) and
a folder of tables must take it without any other file naming it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth.cli import main
from clinsynth.io import _formats, read_table, write_table, write_tables


def _read_jsonl(path, sheet_name=None) -> pd.DataFrame:
    return pd.read_json(path, lines=True)


def _write_jsonl(df: pd.DataFrame, path) -> None:
    df.to_json(path, orient="records", lines=True, date_format="iso")


@pytest.fixture
def jsonl():
    entry = _formats.FileFormat(
        "jsonl", "JSON Lines", (".jsonl",), (".jsonl",), _read_jsonl, _write_jsonl, folder=True
    )
    _formats.FORMATS.append(entry)
    yield entry
    _formats.FORMATS.remove(entry)


@pytest.fixture
def patients() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"age": rng.integers(20, 90, 200), "sex": rng.choice(["F", "M"], 200)},
    )


def test_read_and_write(jsonl, patients, tmp_path):
    path = tmp_path / "patients.jsonl"
    write_table(patients, path)
    pd.testing.assert_frame_equal(read_table(path), patients)
    assert "JSON Lines" in _formats.listed_names(labels=True)
    write_tables({"patients": patients}, tmp_path / "folder", file_format="jsonl")
    assert (tmp_path / "folder" / "patients.jsonl").is_file()


def test_the_cli_reads_and_writes_it(jsonl, patients, tmp_path):
    data = tmp_path / "patients.jsonl"
    write_table(patients, data)
    bundle = tmp_path / "m"
    assert main(["fit", str(data), "-o", str(bundle)]) == 0
    out = tmp_path / "synthetic.jsonl"
    assert main(["sample", str(bundle), "-n", "30", "-o", str(out)]) == 0
    assert len(read_table(out)) == 30


def test_simulate_writes_it(jsonl, tmp_path):
    single = tmp_path / "cohort.jsonl"
    assert main(["simulate", "cohort", "-n", "50", "-o", str(single), "--seed", "1"]) == 0
    assert len(read_table(single)) == 50
    folder = tmp_path / "hospital"
    assert main(["simulate", "hospital", "-n", "20", "-o", str(folder), "--format", "jsonl"]) == 0
    assert (folder / "patients.jsonl").is_file()


def test_without_the_entry_it_is_refused(patients, tmp_path, capsys):
    path = tmp_path / "patients.jsonl"
    _write_jsonl(patients, path)
    assert main(["fit", str(path), "-o", str(tmp_path / "m")]) == 2
    assert "unsupported type '.jsonl'" in capsys.readouterr().err
    assert main(["simulate", "cohort", "-n", "5", "-o", str(tmp_path / "c"), "--format", "x"]) == 2
    assert "--format 'x' is not a format clinsynth writes" in capsys.readouterr().err
