"""A new metric is its function and one registry entry: it then appears in the evaluation
result, the JSON and HTML reports, the dashboard's comparison and ``clinsynth evaluate``'s
summary, with no other file touched."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest
from evaldata import splits

from clinsynth.cli import main
from clinsynth.evaluation import (
    Metric,
    evaluate,
    evaluate_privacy,
    get_metric,
    metric_table,
    metrics,
    register_metric,
    unregister_metric,
)
from clinsynth.evaluation._html import render_html
from clinsynth.evaluation._metrics import TABLE_COLUMNS, import_metric_modules

TEXT = "The share of numerical columns whose synthetic mean is within 0.1 real SD of the real one."


def mean_match(real: pd.DataFrame, synthetic: pd.DataFrame, table) -> float | None:
    """The toy metric: the share of numerical columns whose means agree within 0.1 SD."""
    columns = [c for c, spec in table.columns.items() if spec["sdtype"] == "numerical"]
    if not columns:
        return None
    r, s = real[columns].astype(float), synthetic[columns].astype(float)
    return float(((r.mean() - s.mean()).abs() <= 0.1 * r.std()).mean())


@pytest.fixture
def toy():
    """The toy metric in the registry for one test, and out of it afterwards."""
    metric = register_metric(
        Metric(
            "mean_match",
            "fidelity",
            "higher",
            "Mean match",
            TEXT,
            threshold=0.5,
            threshold_text="toy limit",
            compute=mean_match,
        )
    )
    yield metric
    unregister_metric("mean_match")
    assert "mean_match" not in [m.name for m in metrics()]


def _shifted(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with age and bmi moved by one standard deviation: of the three numerical
    columns, only sbp still matches."""
    out = df.copy()
    for col in ("age", "bmi"):
        out[col] = out[col] + out[col].std()
    return out


def test_the_toy_metric_is_computed_into_the_result_and_the_reports(toy):
    train, _, fresh, md = splits()
    synthetic = _shifted(fresh)
    result = evaluate(train, synthetic, md, detection=False)
    expected = mean_match(train, synthetic, md.get_table())
    assert expected == pytest.approx(1 / 3)  # sbp only
    assert result.quality.metrics["mean_match"] == expected
    table = result.metric_table()
    assert list(table.columns) == TABLE_COLUMNS
    row = table.set_index("Key").loc["mean_match"]
    assert row["Value"] == expected and row["Metric"] == "Mean match"
    assert row["Better"] == "↑ higher is better" and row["Threshold"] == "≥ 0.5 (toy limit)"
    assert row["What it measures"] == TEXT and row["Family"] == "fidelity"
    records = {r["Key"]: r for r in result.to_dict()["metrics"]}
    assert records["mean_match"]["Value"] == expected
    page = render_html(result)
    summary = page[page.index("<section id='summary'>") : page.index("<section id='diagnostic'>")]
    assert "Headline metrics" in summary
    assert f"<td>Mean match</td><td>fidelity</td><td>{expected:.3f}</td>" in summary
    assert "↑ higher is better" in summary and "≥ 0.5 (toy limit)" in summary
    # the sections' questions are the report classes' (the dashboard's hover help too)
    assert all(html.escape(q) in summary for q in result.questions().values())


def test_the_toy_metric_is_in_the_dashboards_comparison(toy):
    pytest.importorskip("streamlit")
    from clinsynth.dashboard._compare import metrics_frame

    train, holdout, fresh, md = splits()
    result = evaluate(train, fresh, md, holdout=holdout, target="risk", detection=False)
    frame = metrics_frame(result)
    assert "Key" not in frame.columns
    shown = frame.set_index("Metric")
    assert shown.loc["Mean match", "Value"] == f"{mean_match(train, fresh, md.get_table()):.3f}"
    assert shown.loc["Mean match", "What it measures"] == TEXT
    # every registered metric of the three families that ran, in the registry's words
    assert list(frame["Metric"]) == [m.label for m in metrics()]
    assert shown.loc["Exact copies", "Value"] == "0.00%"
    assert shown.loc["DCR share", "Better"] == "↓ lower is better (0.5 ideal)"


def test_the_toy_metric_is_in_the_cli_summary_and_the_json(toy, tmp_path, capsys):
    train, _, fresh, md = splits()
    synthetic = _shifted(fresh)
    paths = {"real": tmp_path / "real.csv", "synth": tmp_path / "synth.csv"}
    train.to_csv(paths["real"], index=False)
    synthetic.to_csv(paths["synth"], index=False)
    md.save_to_json(tmp_path / "metadata.json")
    out, js = tmp_path / "report.html", tmp_path / "report.json"
    args = [str(paths["real"]), str(paths["synth"]), "-m", str(tmp_path / "metadata.json")]
    code = main(["evaluate", *args, "--no-detection", "-q", "-o", str(out), "--json", str(js)])
    printed = capsys.readouterr().out
    assert code == 0
    line = next(line for line in printed.splitlines() if "Mean match" in line)
    assert "0.333" in line and "↑ higher" in line and "≥ 0.5" in line
    data = json.loads(js.read_text())
    assert data["reports"]["quality"]["metrics"]["mean_match"] == pytest.approx(1 / 3)
    assert "Mean match" in out.read_text()


def test_without_its_entry_the_metric_is_nowhere(toy):
    unregister_metric("mean_match")
    try:
        train, _, fresh, md = splits()
        result = evaluate(train, fresh, md, detection=False)
        assert "mean_match" not in result.quality.metrics
        assert "mean_match" not in set(result.metric_table()["Key"])
    finally:
        register_metric(toy)


def test_privacy_and_utility_hooks_get_the_holdout():
    seen = {}

    def holdout_rows(real, synthetic, table, *, holdout):
        seen["rows"] = (len(real), len(synthetic), len(holdout))
        return float(len(holdout)) / 1000

    register_metric(
        Metric("holdout_rows", "privacy", "lower", "Holdout", "x", compute=holdout_rows)
    )
    try:
        train, holdout, fresh, md = splits()
        report = evaluate_privacy(train, fresh, md, holdout=holdout.iloc[:300], n_attacks=20)
        assert seen["rows"] == (500, 500, 300)
        assert get_metric("holdout_rows").value(report) == 0.3
        table = metric_table({"privacy": report}, text=True).set_index("Key")
        assert table.loc["holdout_rows", "Value"] == "0.300"
        assert set(table["Family"]) == {"privacy"}  # no quality report: no fidelity rows
    finally:
        unregister_metric("holdout_rows")


def test_a_metric_module_registers_on_import(tmp_path, monkeypatch):
    package = tmp_path / "toy_metrics"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "toy.py").write_text(
        "from clinsynth.evaluation import Metric, register_metric\n"
        "def half(real, synthetic, table):\n"
        "    return 0.5\n"
        "register_metric(Metric('toy_half', 'utility', 'higher', 'Half', 'x', compute=half))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert import_metric_modules("toy_metrics") == ["toy_metrics.toy"]
        assert get_metric("toy_half").compute(None, None, None) == 0.5
    finally:
        unregister_metric("toy_half")


def test_thresholds_are_the_ones_the_verdicts_and_auto_apply():
    from clinsynth.evaluation._common import score_verdict
    from clinsynth.synthesizers import AutoSynthesizer

    for name in ("fidelity", "utility"):
        limit = get_metric(name).threshold
        assert score_verdict(limit) == "fair" and score_verdict(np.nextafter(limit, 0)) == "poor"
    params = AutoSynthesizer.__init__.__kwdefaults__
    assert get_metric("dcr_share").threshold == params["max_dcr_share"]
    assert get_metric("mia_auc").threshold == params["max_mia_auc"]
    assert get_metric("exact_copy_share").threshold_words == ""


def test_on_dask_a_hooked_metric_is_named_as_not_computed(toy):
    dd = pytest.importorskip("dask.dataframe")
    from clinsynth.evaluation import evaluate_quality_dask

    train, _, fresh, md = splits()
    columns = ["age", "bmi", "sex", "sbp", "risk"]
    md = md.from_dict({"columns": {c: md.get_table().columns[c] for c in columns}})
    report = evaluate_quality_dask(
        dd.from_pandas(train[columns], npartitions=2),
        dd.from_pandas(fresh[columns], npartitions=2),
        md,
        detection=False,
    )
    assert "mean_match" not in report.metrics
    assert any("Not computed on Dask" in n and "mean_match" in n for n in report.notes)
    row = metric_table({"quality": report}, text=True).set_index("Key").loc["mean_match"]
    assert row["Value"] == "—"


def _schema(patients: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Patients and two visits each (a weight per visit)."""
    rng = np.random.default_rng(seed)
    patients = patients[["pid", "age", "bmi", "sex", "sbp"]].reset_index(drop=True)
    visits = pd.DataFrame(
        {
            "visit_id": np.arange(2 * len(patients)),
            "pid": np.repeat(patients["pid"].to_numpy(), 2),
            "weight": rng.normal(80, 10, 2 * len(patients)).round(1),
        }
    )
    return {"patients": patients, "visits": visits}


def test_the_toy_metric_is_in_each_table_of_the_multi_table_report(toy, tmp_path):
    from clinsynth import Metadata
    from clinsynth.multitable import evaluate_multi_table

    train, _, fresh, _ = splits()
    real, synthetic = _schema(train, 0), _schema(_shifted(fresh), 1)
    md = Metadata.detect_from_dataframes(real)
    report = evaluate_multi_table(real, synthetic, md)
    assert report.table_reports["visits"].metrics["mean_match"] == 1.0
    patients = report.table_reports["patients"].metrics["mean_match"]
    assert patients == mean_match(real["patients"], synthetic["patients"], md.get_table("patients"))
    report.save_html(tmp_path / "schema.html")
    page = (tmp_path / "schema.html").read_text()
    visits = page[page.index("<section id='table-visits'>") :]
    assert "<tr><td>Mean match</td><td>1.000</td><td>↑ higher is better</td>" in visits
