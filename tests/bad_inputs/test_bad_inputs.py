"""Every bad input of the corpus (``corpus.py``) is refused cleanly by the CLI: exit code 2, one
``Error:`` line saying what, where and how to fix it, no traceback, nothing written, inputs
untouched."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clinsynth.cli import main

from .corpus import CASES, build

_BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cases = [c for c in CASES if c.needs is None or importlib.util.find_spec(c.needs)]
    return build(tmp_path_factory.mktemp("bad_inputs"), cases)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) with the hash of its content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "folder"
        for p in sorted(folder.rglob("*"))
    }


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("Warning:")]


def check_refused(case_name: str, code: int, out: str, err: str) -> None:
    case = _BY_NAME[case_name]
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit code {code}; stderr: {err[-2000:]}"
    lines = error_lines(err)
    assert len(lines) == 1, f"expected one error line, got {len(lines)}: {lines[:5]}"
    assert lines[0].startswith("Error: ")
    assert re.search(case.expect, lines[0]), lines[0]
    assert len(lines[0]) < 800, "a value from the input was echoed in full"


@pytest.mark.parametrize("name", list(_BY_NAME))
def test_bad_input_is_refused_cleanly(corpus, name, capsys):
    if name not in corpus:
        pytest.skip(f"needs {_BY_NAME[name].needs}")
    folder = corpus[name]
    before = snapshot(folder)
    code = main(_BY_NAME[name].command(folder))
    captured = capsys.readouterr()
    check_refused(name, code, captured.out, captured.err)
    assert snapshot(folder) == before, "the inputs changed, or something was written"


@pytest.mark.parametrize(
    "name", ["nested_parquet", "model_zip_bomb", "ten_billion_rows", "metadata_nested_200000_deep"]
)
def test_bad_input_in_a_fresh_process_prints_no_traceback(corpus, name):
    folder = corpus[name]
    before = snapshot(folder)
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from clinsynth.cli import main; sys.exit(main())"]
        + _BY_NAME[name].command(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    check_refused(name, run.returncode, run.stdout, run.stderr)
    assert snapshot(folder) == before


def test_the_corpus_covers_every_case_of_the_issue():
    """Issue #21's list, by case name: a case removed from the corpus fails here."""
    issue = {
        "sql_table_name_traversal", "model_table_name_traversal", "fit_output_is_input",
        "model_zip_bomb", "metadata_10mb_string", "metadata_nested_200000_deep",
        "nested_parquet", "unknown_param", "output_under_a_file", "condition_syntax",
        "ten_billion_rows", "model_weights_wrong_shape", "model_weights_missing",
        "model_weights_huge", "model_huge_network_size", "model_copula_correlation_wrong_size",
        "model_trillion_training_rows", "condition_contradiction", "only_identifiers", "one_row",
        "condition_word_for_number", "condition_finer_than_data",
    }  # fmt: skip
    assert issue <= set(_BY_NAME)
    assert len(_BY_NAME) == len(CASES), "two cases share a name"
