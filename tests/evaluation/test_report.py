import json
import re

import numpy as np
import pandas as pd
import pytest
from evaldata import splits

from clinsynth.evaluation import EvaluationResult, evaluate


class FakeModel:
    """A fitted model as the synthesizers expose it: losses per batch, several networks."""

    def get_loss_values(self) -> pd.DataFrame:
        epochs = np.repeat(np.arange(5), 4)
        return pd.DataFrame(
            {
                "Epoch": epochs,
                "Batch": np.tile(np.arange(4), 5),
                "Generator Loss": 2.0 / (1 + epochs),
                "Discriminator Loss": 1.0 - 0.1 * epochs,
            }
        )

    def get_params(self) -> dict:
        return {"epochs": np.int64(5), "lr": np.float64(1e-3)}


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    train, holdout, fresh, md = splits()
    return evaluate(
        train,
        fresh,
        md,
        holdout=holdout,
        target="risk",
        sensitive_columns=["smoker"],
        model=FakeModel(),
        max_plot_columns=4,
    )


def test_bundle_runs_every_section(result):
    assert set(result.reports) == {"diagnostic", "quality", "utility", "privacy"}
    summary = result.summary()
    assert list(summary["Section"]) == ["Diagnostic", "Fidelity", "ML utility", "Privacy"]
    assert summary["Score"].between(0, 1).all()
    assert result.privacy_verdict() == "low"
    assert set(result.info["timings_s"]) >= {"diagnostic", "quality", "utility", "privacy"}
    assert result.figures["loss"]["x"] == [0, 1, 2, 3, 4]
    assert result.figures["loss"]["series"]["Generator Loss"][0] == pytest.approx(2.0)
    assert len(result.figures["columns"]) == 4  # capped
    assert any("4 columns" in note for note in result.info["notes"])
    assert result.info["model"] == {"class": "FakeModel", "params": {"epochs": 5, "lr": 0.001}}


def test_json_round_trips(result, tmp_path):
    path = tmp_path / "out" / "report.json"
    result.save_json(path)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(result.to_dict()))
    assert (
        loaded["reports"]["privacy"]["metrics"]["dcr_share"] == result.privacy.metrics["dcr_share"]
    )
    assert "mia_auc" in loaded["reports"]["privacy"]["details"]["Membership Inference"][0]
    assert "tstr" in loaded["reports"]["utility"]["details"]["ML Efficacy"][0]
    assert loaded["figures"]["dcr_histogram"]
    json.dumps(loaded, allow_nan=False)  # no NaN anywhere


def test_html_is_self_contained_and_has_the_sections(result, tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old report")
    result.save_html(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js inline, nothing fetched
    assert text.count("Plotly.newPlot") >= 8
    for heading in (
        "Summary",
        "Diagnostic",
        "Fidelity",
        "ML utility",
        "Privacy risk",
        "Model training",
        "How this was computed",
    ):
        assert heading in text
    assert "Distance to closest record" in text and "Training loss" in text
    assert "differential privacy" not in text or "No action needed." in text
    assert len(text) < 8_000_000
    # the write is atomic: no temporary file is left beside the report
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_failed_write_keeps_the_old_file(result, tmp_path, monkeypatch):
    from clinsynth.evaluation import _html

    path = tmp_path / "report.html"
    path.write_text("old report")

    def boom(_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_html, "render_html", boom)
    with pytest.raises(RuntimeError):
        result.save_html(path)
    assert path.read_text() == "old report"


def test_only_what_inputs_allow():
    train, _, fresh, _ = splits()
    result = evaluate(train.drop(columns=["email"]), fresh.drop(columns=["email"]), detection=False)
    assert set(result.reports) == {"diagnostic", "quality"}
    assert "holdout" in result.info["skipped"]["privacy"]
    assert "loss" not in result.figures
    summary = result.summary().set_index("Section")
    assert summary.loc["Privacy", "Verdict"] == "not measured"
    html = result.to_dict()
    assert html["reports"].keys() == {"diagnostic", "quality"}


def test_progress_is_reported_to_the_callback():
    train, holdout, fresh, md = splits()
    calls = []
    evaluate(
        train,
        fresh,
        md,
        holdout=holdout,
        detection=False,
        progress=lambda total, done, message: calls.append((total, done, message)),
    )
    assert calls[0][1] == 0 and calls[-1][0] == calls[-1][1]
    assert all(isinstance(m, str) for _, _, m in calls)


def test_report_explains_the_detection_score_and_names_no_raw_dict(tmp_path):
    """Detection score 1.000 beside an AUC under 0.5 is explained; merged levels read "none"."""
    from clinsynth import GaussianCopulaSynthesizer

    train, holdout, fresh, md = splits()
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(train)
    assert model.get_privacy_report()["rare_levels_merged"] == {}
    result = evaluate(train, model.sample(len(train)), md, holdout=holdout, model=model)
    path = tmp_path / "report.html"
    result.save_html(path)
    text = path.read_text(encoding="utf-8")
    assert "score = 1 &minus; 2 &times; (AUC &minus; 0.5)" in text
    assert "AUC is 0.5 or below" in text
    assert "Rare categories merged: none." in text and "merged: {}" not in text


def test_merged_levels_in_words():
    from clinsynth.evaluation._html import _merged

    assert _merged({}) == "none" and _merged(None) == "none"
    assert _merged({"dx": 3, "ward": 1}) == "dx (3 levels), ward (1 level)"


def test_charts_keep_their_labels_apart():
    """Legend above the plot, margins that grow with the labels, long or many labels slanted."""
    from clinsynth.evaluation._plots import bars_figure, heatmap_figure

    names = [f"a_rather_long_column_name_{i}" for i in range(12)]
    fig = bars_figure("Column shapes", names, {"Real": [0.5] * 12}, "score")
    assert fig.layout.legend.y >= 1.0 and fig.layout.legend.yanchor == "bottom"
    assert fig.layout.xaxis.automargin is True and fig.layout.xaxis.tickangle == -45
    short = bars_figure("Two", ["F", "M"], {"Real": [0.5, 0.5]}, "share")
    assert short.layout.xaxis.tickangle is None  # a few short labels stay level
    heat = heatmap_figure("Correlation", names, np.eye(12).tolist(), zmin=-1, zmax=1, scale="RdBu")
    assert heat.layout.xaxis.tickangle == -45 and heat.layout.yaxis.automargin is True
