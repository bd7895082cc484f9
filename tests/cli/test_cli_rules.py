"""``clinsynth detect`` shows the rules it found, with their support, and keeps them in the JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constraints"))
from logic_data import logic_table  # noqa: E402

from clinsynth.cli import main  # noqa: E402


def test_detect_prints_and_writes_the_rules(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    data = tmp_path / "visits.csv"
    logic_table(300).to_csv(data, index=False)
    code = main(["detect", str(data), "-o", str(tmp_path / "md.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "rules every row obeys" in out
    assert "dx determines dx_class" in out and "functional_dependency" in out
    assert "cd4_late is present exactly when followed is 1" in out
    rules = json.loads((tmp_path / "md.json").read_text())["tables"]["table"]["constraints"]
    assert {r["type"] for r in rules} >= {"functional_dependency", "skip_pattern", "formula"}
    assert all(r["discovered"] and r["support"]["informative"] >= 20 for r in rules)
