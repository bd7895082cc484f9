"""The self-contained HTML report, written for a data-protection officer.

One file: plotly.js is inlined once in the head (no internet needed to open it), each figure is a
small div with its pre-binned data, and each section opens with a plain explanation.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from clinsynth._version import __version__
from clinsynth.evaluation._fidelity import PAIR_COLUMNS
from clinsynth.evaluation._html_logic import giveaway_block, logic_block
from clinsynth.evaluation._plots import (
    bars_figure,
    column_figure,
    heatmap_figure,
    lines_figure,
)

if TYPE_CHECKING:
    from clinsynth.evaluation._evaluate import EvaluationResult
    from clinsynth.evaluation._reports import QualityReport

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:auto;
padding:0 1.2em 3em;color:#1d2733;line-height:1.45}
h1{color:#1f4e79;margin-bottom:.2em}h2{border-bottom:2px solid #1f4e79;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef3f8}.muted{color:#5c6773;font-size:.9em}
.explain{background:#f6f8fa;border-left:4px solid #1f4e79;padding:.6em 1em;margin:.8em 0}
.v-good,.v-low{background:#dff3e4}.v-fair,.v-medium{background:#fff4d6}
.v-poor,.v-high{background:#fde0dd}.grid{display:grid;grid-template-columns:1fr 1fr;gap:.5em}
.banner{padding:.7em 1em;margin:.8em 0;border-radius:4px;font-weight:600}
.pass{background:#dff3e4}.warn{background:#fff4d6}.fail{background:#fde0dd}
"""

_INTRO = {
    "summary": (
        "This report compares a synthetic (artificial) copy of a patient table with the real "
        "table. Four questions: is the synthetic data well formed (diagnostic)? Does it look like "
        "the real data (fidelity)? Is it as useful for analysis (ML utility)? Does it give away "
        "anything about the real patients it was made from (privacy)? The four scores run from 0 "
        "to 1; higher is better, and a privacy score of 1 means no measurable risk. The headline "
        "metrics below them keep their own scales: the arrow says which way is better."
    ),
    "diagnostic": (
        "Basic checks that the synthetic data is usable: values within the real ranges, "
        "categories that exist in the real data, the same columns and types, unique keys, and "
        "identifiers or personal data (names, record numbers...) that are not copied from the "
        "real data. Anything below 1 needs a look."
    ),
    "quality": (
        "How closely the synthetic data reproduces the real data. Column Shapes compares each "
        "column's distribution; Column Pair Trends compares how pairs of columns move together "
        "(correlations and cross-tabulations). Both are computed as in the open-source SDMetrics "
        "library, so the figures are comparable with other tools. The plots overlay real (blue) "
        "and synthetic (orange) data."
    ),
    "utility": (
        "Would an analysis on synthetic data reach the same conclusions? A model is trained on "
        "the synthetic data and tested on real patients it never saw (TSTR), and compared with the "
        "same model trained on real data (TRTR). A score near 1 means the synthetic data is about "
        "as useful as the real data for this prediction."
    ),
    "privacy": (
        "Could someone learn about the real patients from the synthetic data? Every test "
        "compares the patients the model was trained on with similar patients it never saw (the "
        "holdout). If the synthetic data is no closer to the training patients than to the "
        "holdout, it reveals nothing specific about them. Each risk has a verdict and what to do."
    ),
    "training": (
        "How the model's training loss evolved. A curve that flattens shows training converged; "
        "one that keeps falling steeply may need more epochs; a very long tail of tiny decreases "
        "can mean the model starts memorizing patients."
    ),
}


def _esc(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, float | np.floating):
        return f"{value:.3f}"
    return _esc(value)


def _table(df: pd.DataFrame, *, verdict_col: str | None = None, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "<p class='muted'>Nothing to show.</p>"
    shown = df.head(max_rows)
    head = "".join(f"<th>{_esc(c)}</th>" for c in shown.columns)
    body = []
    for _, row in shown.iterrows():
        cells = []
        for col in shown.columns:
            cls = ""
            if col == verdict_col:
                cls = f" class='v-{_esc(str(row[col]).split()[0])}'"
            cells.append(f"<td{cls}>{_fmt(row[col])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f"<p class='muted'>First {max_rows} of {len(df)} rows; all rows are in the JSON.</p>"
        if len(df) > max_rows
        else ""
    )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _fig(fig) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _section(key: str, title: str, body: str) -> str:
    intro = _INTRO.get(key)
    explain = f"<div class='explain'>{_esc(intro)}</div>" if intro else ""
    return f"<section id='{key}'><h2>{_esc(title)}</h2>{explain}{body}</section>"


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>"


def _quality_body(result: EvaluationResult) -> str:
    q = result.quality
    if q is None:
        return f"<p>{_esc(result.info['skipped'].get('quality', 'Not measured.'))}</p>"
    column_notes = [n for n in result.info.get("notes", []) if "Per-column" in n]
    return quality_block(q, result.figures, column_notes)


def quality_block(q: QualityReport, figs: dict, column_notes: list[str]) -> str:
    """The fidelity section of one table: its properties, least reproduced pairs, detection,
    correlation heatmaps, per-column plots and statistical tests (also used per table by the
    multi-table report)."""
    parts = [_table(q.get_properties()), _notes(q.notes)]
    pairs = q.get_details("Column Pair Trends")
    counted = pairs[pairs["Meets Threshold?"].astype(bool)].sort_values("Score").head(10)
    if len(counted):
        parts.append("<h3>Relationships reproduced least well</h3>")
        parts.append(_table(counted[PAIR_COLUMNS[:6]]))
    m = q.metrics
    if "detection_score" in m:
        parts.append(
            "<h3>Can a classifier tell them apart?</h3><p>A model tried to tell real rows from "
            "synthetic rows. An ROC AUC of 0.5 means it could not (ideal); 1.0 means it always "
            f"could. Detection score: <b>{_fmt(m['detection_score'])}</b>, from the better of "
            "the two classifiers below: score = 1 &minus; 2 &times; (AUC &minus; 0.5), and 1 "
            "when the AUC is 0.5 or below (an AUC under 0.5 is chance, not a sign of "
            "difference: the classifier did no better than guessing). Alpha-precision (are "
            f"synthetic rows realistic?): <b>{_fmt(m['alpha_precision'])}</b>; beta-recall (is "
            f"the variety of real patients covered?): <b>{_fmt(m['beta_recall'])}</b>.</p>"
        )
        parts.append(_table(q.get_details("Detection")))
        parts.append(giveaway_block(q))
    parts.append(logic_block(q))
    if "column_shapes" in figs:
        cs = figs["column_shapes"]
        parts.append(
            _fig(
                bars_figure(
                    "Column Shapes score per column",
                    cs["columns"],
                    {"Score": cs["scores"]},
                    "score",
                )
            )
        )
    if "correlation" in figs:
        c = figs["correlation"]
        parts.append("<h3>Correlations between numeric columns</h3><div class='grid'>")
        for key, title in (("real", "Real"), ("synthetic", "Synthetic")):
            parts.append(
                _fig(
                    heatmap_figure(
                        f"{title} correlations", c["columns"], c[key], zmin=-1, zmax=1, scale="RdBu"
                    )
                )
            )
        parts.append("</div>")
        parts.append(
            _fig(
                heatmap_figure(
                    "Difference (synthetic - real)",
                    c["columns"],
                    c["difference"],
                    zmin=-1,
                    zmax=1,
                    scale="RdBu",
                )
            )
        )
    if "pair_trends" in figs:
        p = figs["pair_trends"]
        parts.append(
            _fig(
                heatmap_figure(
                    "Column Pair Trends similarity (1 = same relationship)",
                    p["columns"],
                    p["scores"],
                    zmin=0,
                    zmax=1,
                    scale="RdYlGn",
                )
            )
        )
    if "alpha_precision" in figs and figs["alpha_precision"]:
        ap = pd.DataFrame(figs["alpha_precision"])
        parts.append(
            _fig(
                lines_figure(
                    "Alpha-precision and beta-recall curves (ideal: the diagonal)",
                    list(ap["Alpha"]),
                    {
                        "Precision": list(ap["Precision"]),
                        "Recall": list(ap["Recall"]),
                        "Ideal": list(ap["Alpha"]),
                    },
                    "alpha / beta",
                    "share inside",
                )
            )
        )
    parts.append("<h3>Each column, real vs synthetic</h3>")
    parts.append(_notes(column_notes))
    for name, data in figs.get("columns", {}).items():
        parts.append(_fig(column_figure(name, data)))
    if "Statistical Tests" in q.detail_names:  # not computed on Dask
        parts.append(
            "<h3>Statistical tests</h3><p class='muted'>With many rows, tests flag even tiny "
            "differences: read p-values with the effect sizes (KS statistic, Cramér's V, "
            "standardized Wasserstein distance).</p>"
        )
        parts.append(_table(q.get_details("Statistical Tests")))
    return "".join(parts)


def _utility_body(result: EvaluationResult) -> str:
    u = result.utility
    if u is None:
        return f"<p>{_esc(result.info['skipped'].get('utility', 'Not measured.'))}</p>"
    imp = u.get_details("Feature Importance")
    rho = u.metrics.get("feature_importance_spearman")
    return "".join(
        [
            f"<p>Target: <b>{_esc(u.metrics['target'])}</b> ({_esc(u.metrics['task'])}).</p>",
            _table(u.get_details("ML Efficacy")),
            _notes(u.notes),
            "<p>Agreement of the columns' importance (Spearman, 1 = same order): "
            f"<b>{_fmt(rho)}</b>.</p>",
            _fig(
                bars_figure(
                    "Permutation importance of each column",
                    list(imp["Column"]),
                    {
                        "Trained on real": list(imp["Importance (real)"]),
                        "Trained on synthetic": list(imp["Importance (synthetic)"]),
                    },
                    "drop in score when shuffled",
                )
            ),
        ]
    )


def _privacy_body(result: EvaluationResult) -> str:
    p = result.privacy
    if p is None:
        return f"<p>{_esc(result.info['skipped'].get('privacy', 'Not measured.'))}</p>"
    risks = p.get_details("Risks")[
        ["Risk", "Verdict", "Value", "Measure", "CI Low", "CI High", "Explanation", "Advice"]
    ]
    parts = [
        f"<p>Overall: <b>{_esc(result.privacy_verdict())} risk</b> (privacy score "
        f"{_fmt(p.get_score())}).</p>",
        f"<div class='explain'><b>Statement.</b> {_esc(p.statement)}</div>" if p.statement else "",
        _table(risks, verdict_col="Verdict"),
        _notes(p.notes),
    ]
    if "Re-identification Attacks" in p.detail_names:
        parts.append(
            "<h3>Re-identification attacks (Giomi et al. 2023)</h3><p>How often each attack "
            "succeeds on training patients, on patients the model never saw, and by guessing; "
            "the risk is the first beyond the second, out of what the second leaves to win.</p>"
        )
        parts.append(_table(p.get_details("Re-identification Attacks")))
    hist = result.figures.get("dcr_histogram")
    if hist:
        h = pd.DataFrame(hist)
        x = list((h["Bin Start"] + h["Bin End"]) / 2)
        parts.append(
            "<h3>How close are synthetic rows to real patients?</h3><p>Distance of each synthetic "
            "row to the nearest training patient (blue) and to the nearest holdout patient "
            "(orange). If the blue bars pile up at zero, the synthetic data copies patients.</p>"
        )
        parts.append(
            _fig(
                bars_figure(
                    "Distance to closest record",
                    x,
                    {
                        "To training patients": list(h["To Train"]),
                        "To holdout patients": list(h["To Holdout"]),
                    },
                    "synthetic rows",
                )
            )
        )
    return "".join(parts)


def _merged(merged: object) -> str:
    """``{"column": count}`` in words: "none", or "stage (2 levels), site (5 levels)"."""
    if not isinstance(merged, dict) or not merged:
        return "none"
    return ", ".join(
        f"{col} ({n} level{'s' if n != 1 else ''})" if isinstance(n, int) else f"{col} ({n})"
        for col, n in merged.items()
    )


def _privacy_budget(result: EvaluationResult) -> str:
    """The model's own protection: its DP budget, or a plain statement that it has none."""
    privacy = (result.info.get("model") or {}).get("privacy")
    if not privacy:
        return ""
    if not privacy.get("differential_privacy"):
        return (
            "<h3>Formal guarantee</h3><p>This model was trained without differential privacy: "
            "there is no formal guarantee, only the measured risks in the privacy section. "
            f"Rare categories merged: {_esc(_merged(privacy.get('rare_levels_merged')))}.</p>"
        )
    keys = (
        "guarantee",
        "epsilon",
        "epsilon_spent",
        "delta",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "consumers",
        "not_covered",
    )
    rows = [(k, privacy[k]) for k in keys if k in privacy]
    return "<h3>Formal guarantee (differential privacy)</h3>" + _table(
        pd.DataFrame([(k, str(v)) for k, v in rows], columns=["Item", "Value"])
    )


def _training_body(result: EvaluationResult) -> str:
    loss = result.figures.get("loss")
    board = (result.info.get("model") or {}).get("leaderboard")
    leaderboard = (
        "<h3>Model choice (leaderboard)</h3><p class='muted'>Candidates scored on a validation "
        "split; among those that passed the privacy checks, the best one was chosen (a "
        "near-tie in score, within the noise, goes to the lower privacy risk) and refitted.</p>"
        + _table(pd.DataFrame(board).dropna(axis=1, how="all"))
        if board
        else ""
    )
    leaderboard = _privacy_budget(result) + leaderboard
    if not loss:
        note = next((n for n in result.info.get("notes", []) if "loss" in n), None)
        return (
            f"<p>{_esc(note or 'No model was given, so there is no training curve.')}</p>"
            + leaderboard
        )
    return leaderboard + _fig(
        lines_figure("Training loss", loss["x"], loss["series"], loss["x_label"], "loss")
    )


def _methods(result: EvaluationResult) -> str:
    rows = []
    for section, notes in result.info.get("sampling", {}).items():
        for metric, sizes in notes.items():
            rows.append({"Section": section, "Metric": metric, **sizes})
    sampling = (
        _table(pd.DataFrame(rows)) if rows else "<p class='muted'>Every metric used every row.</p>"
    )
    timings = pd.DataFrame(
        [{"Section": k, "Seconds": v} for k, v in result.info.get("timings_s", {}).items()]
    )
    return (
        "<p>Large tables are subsampled where a metric allows (with a fixed seed, "
        f"random_state={_esc(result.info.get('random_state'))}):</p>"
        + sampling
        + _table(timings)
        + "<p class='muted'>Definitions: see the docstrings of clinsynth.evaluation. Column "
        "Shapes and Column Pair Trends follow SDMetrics' QualityReport, including its rule that "
        "only pairs associated in the real data (|r| &gt; 0.5, Cramér's V &gt; 0.3) count.</p>"
    )


def _sequences_section(result: EvaluationResult) -> str:
    """Sequences of events per patient (a table with a sequence key and index)."""
    from clinsynth.evaluation._html_sequences import sequence_block

    data = result.figures.get("sequences")
    if not data:
        return ""
    return _section("sequences", "2b. Sequences over time", sequence_block(data))


def _metrics_block(result: EvaluationResult) -> str:
    """The registered metrics of the sections that ran (``clinsynth.evaluation.metrics``)."""
    table = result.metric_table(text=True)
    if table.empty:
        return ""
    return "<h3>Headline metrics</h3>" + _table(table.drop(columns="Key"))


def render_html(result: EvaluationResult) -> str:
    """The whole report as one HTML string."""
    info = result.info
    summary = result.summary()
    summary["Question"] = summary["Section"].map(result.questions())
    rows = info["rows"]
    model = info.get("model") or {}
    header = (
        f"<p class='muted'>Created {_esc(info['created'])} with clinsynth {_esc(__version__)}. "
        f"Real rows: {rows['real']}; synthetic rows: {rows['synthetic']}; holdout rows: "
        f"{_fmt(rows['holdout'])}; columns: {info['columns']}"
        + (f"; model: {_esc(model.get('class'))}" if model else "")
        + ".</p>"
    )
    skipped = [f"{k}: {v}" for k, v in info.get("skipped", {}).items()]
    body = [
        header,
        _section(
            "summary",
            "Summary",
            _table(summary, verdict_col="Verdict") + _notes(skipped) + _metrics_block(result),
        ),
        _section(
            "diagnostic",
            "1. Diagnostic",
            _table(result.diagnostic.get_properties())
            + _notes(result.diagnostic.notes)
            + _table(result.diagnostic.get_details("Data Validity")),
        ),
        _section("quality", "2. Fidelity", _quality_body(result)),
        _sequences_section(result),
        _section("utility", "3. ML utility", _utility_body(result)),
        _section("privacy", "4. Privacy risk", _privacy_body(result)),
        _section("training", "5. Model training", _training_body(result)),
        _section("methods", "6. How this was computed", _methods(result)),
    ]
    return page("Synthetic data evaluation report", "".join(body))


def page(title: str, body: str) -> str:
    """A whole HTML document: the style and plotly.js inlined in the head, then ``body``."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_esc(title)}</title>"
        f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body><h1>{_esc(title)}</h1>" + body + "</body></html>\n"
    )
