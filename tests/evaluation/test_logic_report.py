"""The report's logic kept and what gives the synthetic rows away."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constraints"))
from logic_data import logic_table  # noqa: E402

from clinsynth import GaussianCopulaSynthesizer, Metadata  # noqa: E402
from clinsynth.evaluation import evaluate, evaluate_quality  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    df = logic_table(600, seed=5)
    train, holdout = df.iloc[:420].reset_index(drop=True), df.iloc[420:].reset_index(drop=True)
    md = Metadata.detect_from_dataframe(train)
    synthetic = GaussianCopulaSynthesizer(md, random_state=0).fit(train).sample(420)
    return train, holdout, synthetic, md


def test_logic_kept_per_rule_beside_holdout_and_training(frames):
    train, holdout, synthetic, md = frames
    result = evaluate(train, synthetic, md, holdout=holdout, detection=False)
    logic = result.quality.get_details("Logic Kept")
    assert len(logic) == len(md.get_table().constraints)
    assert list(logic.columns) == [
        "Rule",
        "Kind",
        "Discovered",
        "Support",
        "Synthetic",
        "Holdout",
        "Training",
    ]
    assert (logic["Synthetic"] == 1.0).all() and (logic["Training"] == 1.0).all()
    metrics = result.quality.metrics
    assert metrics["logic_rows_kept"] == 1.0 and metrics["logic_rules"] == len(logic)
    assert 0.9 <= metrics["logic_rows_kept_holdout"] <= 1.0
    assert "100.0% of the synthetic rows obey all" in metrics["logic_summary"]


def test_broken_rows_are_counted_and_rules_found_without_metadata(frames):
    train, _, synthetic, md = frames
    broken = synthetic.copy()
    broken.loc[:41, "dx_class"] = "kidney"  # breaks the dependency on some of these rows
    broken.loc[:41, "total"] = broken.loc[:41, "total"] + 1.0  # breaks the formula on 42 rows
    report = evaluate_quality(train, broken, md.get_table().copy(), detection=False, logic=True)
    logic = report.get_details("Logic Kept").set_index("Rule")
    assert logic.loc["total = `fee_a` + `fee_b`", "Synthetic"] == pytest.approx(1 - 42 / 420)
    assert logic.loc["dx determines dx_class", "Synthetic"] < 1.0
    assert "The rule broken most often" in report.metrics["logic_summary"]
    # Metadata without rules: discovered on the real rows for the check.
    bare = Metadata.detect_from_dataframe(train, discover_rules=False)
    report = evaluate_quality(train, broken, bare, detection=False, logic=True)
    assert "Logic Kept" not in evaluate_quality(train, broken, bare, detection=False).detail_names
    assert "total = `fee_a` + `fee_b`" in set(report.get_details("Logic Kept")["Rule"])


def test_what_gives_it_away_names_the_giveaway_column(frames, tmp_path):
    train, holdout, synthetic, md = frames
    shifted = synthetic.copy()
    shifted["weight"] = shifted["weight"] + 25.0  # an obvious tell
    result = evaluate(train, shifted, md, holdout=holdout)
    importance = result.quality.get_details("Detection Importance")
    assert importance.iloc[0]["Column"] in ("weight", "bmi")
    assert np.all(np.diff(importance["AUC Drop"].to_numpy()) <= 0)
    sentence = result.quality.metrics["giveaway"]
    assert "mostly by 'weight'" in sentence or "mostly by 'bmi'" in sentence
    path = tmp_path / "report.html"
    result.save_html(path)
    text = path.read_text(encoding="utf-8")
    assert "Logic kept" in text and "What gives it away" in text
    result.save_json(tmp_path / "report.json")  # JSON-able
