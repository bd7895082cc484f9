"""The multi-table report's files: self-contained HTML with every section, JSON with the
figures' data, both written atomically."""

from __future__ import annotations

import json
import re

import pytest
from plotly.offline import get_plotlyjs

from clinsynth.multitable import HMASynthesizer, evaluate_multi_table

from .mt_data import hospital_metadata, make_hospital


@pytest.fixture(scope="module")
def report():
    real = make_hospital(150, seed=3)
    md = hospital_metadata()
    synthetic = HMASynthesizer(md, random_state=0).fit(real).sample()
    return evaluate_multi_table(real, synthetic, md, max_plot_columns=4)


def _outside_plotlyjs(text: str) -> str:
    return text.replace(get_plotlyjs(), "")


def test_html_has_every_section_and_fetches_nothing(report, tmp_path):
    path = tmp_path / "schema.html"
    path.write_text("old report")
    report.save_html(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["schema.html"]  # atomic, no temp left
    rest = _outside_plotlyjs(text)
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", rest)
    assert "PASS: 4 primary key(s) present and unique; 4 relationship(s)" in rest
    for heading in (
        "Keys and links (diagnostic)",
        "Referential integrity, per relationship",
        "Children per parent (cardinality)",
        "visits per patients row (patient_id)",
        "labs per visits row (visit_id)",
        "Parent-child trends",
        "patients -&gt; visits",
        "Table patients",
        "Table labs",
        "Column Shapes score per column",
    ):
        assert heading in rest, heading
    # one bar chart per relationship, two trend heatmaps per relationship, per-table plots
    assert rest.count("Plotly.newPlot") >= 4 + 2 * 4 + 4


def test_html_banner_fails_on_broken_keys(tmp_path):
    real = make_hospital(80, seed=4)
    broken = {k: v.copy() for k, v in real.items()}
    broken["labs"].loc[:2, "visit_id"] = "nowhere"
    report = evaluate_multi_table(real, broken, hospital_metadata(), per_table=False)
    assert not report.diagnostic_passed()
    report.save_html(tmp_path / "r.html")
    text = _outside_plotlyjs((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "FAIL: 0 missing or duplicated primary key value(s), 3 orphan foreign key(s)" in text
    assert "Per-table fidelity was not measured" in text


def test_json_holds_the_figures(report, tmp_path):
    path = tmp_path / "schema.json"
    report.save_json(path)
    data = json.loads(path.read_text())
    json.dumps(data, allow_nan=False)
    assert data["diagnostic_passed"] is True
    diag = {p["property"]: p["score"] for p in data["diagnostic"]["properties"]}
    assert diag["Primary Keys"] == diag["Referential Integrity"] == 1.0
    cards = {(f["parent"], f["child"]): f for f in data["figures"]["cardinality"]}
    assert set(cards) == {
        ("patients", "visits"),
        ("visits", "labs"),
        ("patients", "labs"),
        ("patients", "prescriptions"),
    }
    visits = cards[("patients", "visits")]
    assert visits["bins"][0] == "0"
    assert sum(visits["real"]) == pytest.approx(1.0) and sum(visits["synthetic"]) == 1.0
    assert visits["real"][0] == 0.0  # every real patient has a visit
    trends = {(m["parent"], m["child"]): m for m in data["figures"]["intertable_trends"]}
    m = trends[("patients", "visits")]
    assert "(number of children)" in m["child_aggregates"] and "age" in m["parent_columns"]
    assert len(m["real"]) == len(m["parent_columns"])
    assert len(m["real"][0]) == len(m["child_aggregates"])
    tables = data["figures"]["tables"]
    assert set(tables) == {"patients", "visits", "labs", "prescriptions"}
    assert 0 < len(tables["visits"]["columns"]) <= 4
    assert set(data["tables"]) == set(tables)
    card_rows = data["details"]["Cardinality"]
    assert {"Real Max", "KS Statistic"} <= set(card_rows[0])
