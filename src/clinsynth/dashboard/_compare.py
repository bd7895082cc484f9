"""Step 5, Compare: scores with verdicts, real vs synthetic plots per column, correlations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import clinsynth
from clinsynth import Metadata
from clinsynth.dashboard import _longitudinal, _state, _ui
from clinsynth.evaluation import plots
from clinsynth.metadata import is_pii

_NO_TARGET = "(none)"


#: Colour of each verdict (Streamlit's markdown colours).
_COLOURS = {
    "excellent": "green",
    "good": "green",
    "low risk": "green",
    "poor": "red",
    "bad": "red",
    "high risk": "red",
    "not measured": "gray",
}


def _target_options(metadata: Metadata) -> list[str]:
    return [
        c
        for c, spec in metadata.columns.items()
        if not is_pii(spec) and spec["sdtype"] not in ("id", "unknown", "datetime")
    ]


def _evaluate(target: str | None) -> None:
    from clinsynth.evaluation import evaluate

    metadata: Metadata = _state.get("metadata")
    result = _ui.run_with_progress(
        lambda progress: evaluate(
            st.session_state["train"],
            _state.get("synthetic"),
            metadata,
            holdout=st.session_state.get("holdout"),
            target=target,
            model=_state.get("synth"),
            max_plot_columns=max(30, len(metadata.columns)),
            progress=progress,
        ),
        "Comparing",
        failed="The comparison failed.",
    )
    _keep(result)


def _keep(result: object | None) -> None:
    """Store a comparison that succeeded (a failed one has shown its message already)."""
    if result is not None:
        _state.put("evaluation", result)


def _scores(result) -> None:  # noqa: ANN001 - an EvaluationResult
    summary = result.summary()
    questions = result.questions()  # what each score measures, in plain words
    cells = st.columns(len(summary))
    for cell, (_, row) in zip(cells, summary.iterrows(), strict=True):
        score = row["Score"]
        cell.metric(row["Section"], _score_text(score), help=questions.get(row["Section"]))
        verdict = str(row["Verdict"])
        cell.markdown(f":{_COLOURS.get(verdict, 'orange')}[**{verdict}**]")
    st.caption("Scores go from 0 to 1; 1 is best. Hover over a score's title for what it measures.")
    skipped = result.info.get("skipped", {})
    for section, why in skipped.items():
        st.caption(f"Not measured — {section}: {why}")
    table = metrics_frame(result)
    if len(table):
        with st.expander("Headline metrics (each with which way is better)"):
            st.dataframe(table, hide_index=True)
    if result.privacy is not None:
        with st.expander("Privacy risks in detail"):
            st.dataframe(result.privacy.risks, hide_index=True)


def metrics_frame(result) -> pd.DataFrame:  # noqa: ANN001 - an EvaluationResult
    """The registered metrics of the comparison: words, value, which way is better, threshold
    (``clinsynth.evaluation.metrics``; the same rows as the HTML report's)."""
    return result.metric_table(text=True).drop(columns="Key")


def column_chart(name: str, data: dict) -> go.Figure:
    """The report's real-vs-synthetic figure of one column, with dates shown as dates.

    The figure data holds dates as days since 1970-01-01 (plain numbers in the JSON report);
    a clinician reads calendar dates.
    """
    fig = plots.column_figure(name, data)
    if data.get("sdtype") != "datetime" or data.get("kind") == "categorical":
        return fig

    def as_dates(values: object) -> list:
        days = np.asarray(values, dtype=float)
        return list(pd.to_datetime(days * 86_400e9).strftime("%Y-%m-%d"))

    for trace in fig.data:
        if trace.type == "bar":
            trace.x = as_dates(trace.x)
        elif trace.type == "box":
            for stat in ("q1", "median", "q3", "lowerfence", "upperfence"):
                setattr(trace, stat, as_dates(getattr(trace, stat)))
    fig.update_xaxes(type="date", row=1, col=1)
    fig.update_yaxes(type="date", row=1, col=2)
    fig.update_layout(title_text=f"{name} (date)")
    return fig


def _columns(figures: dict, table: str | None = None) -> None:
    per_column = figures.get("columns", {})
    if table is None:
        st.subheader("Column by column")
    if not per_column:
        st.caption("No column can be plotted (no number, category, yes/no or date column).")
        return
    names = list(per_column)
    st.caption("Listed from the column that differs most to the one that differs least.")
    suffix = f"_{table}" if table else ""
    name = st.selectbox("Column", names, key=f"keep_compare_column{suffix}")
    st.plotly_chart(column_chart(name, per_column[name]), key=f"column_chart{suffix}")
    if per_column[name].get("kind") == "categorical":
        st.caption("The share of rows in each category, real (blue) next to synthetic (orange).")
    else:
        st.caption(
            "Left: how the values are spread (share of rows in each range). Right: box plot — "
            "the line is the median, the box holds the middle half of the rows, the whiskers "
            "the usual range."
        )


def _correlations(figures: dict, table: str | None = None) -> None:
    corr = figures.get("correlation")
    if not corr:
        return
    where = f" in table {table}" if table else ""
    st.subheader(f"How the numbers move together{where} (correlations)")
    st.caption(
        "Blue: two measurements rise together; red: one rises when the other falls; white: "
        "unrelated. The two maps should look alike."
    )
    left, right = st.columns(2)
    for where, label in ((left, "Real"), (right, "Synthetic")):
        fig = plots.heatmap_figure(
            f"{label} data", corr["columns"], corr[label.lower()], zmin=-1, zmax=1, scale="RdBu"
        )
        fig.update_traces(colorbar={"title": {"text": "correlation"}})
        where.plotly_chart(fig, key=f"corr_{label.lower()}_{table or ''}")


def _latent_space() -> None:
    model = _state.get("synth")
    visualize = getattr(clinsynth, "visualize_latent_space", None)
    if visualize is None or not callable(getattr(model, "encode", None)):
        return
    st.subheader("What the model learned (latent space)")
    st.caption(
        "Each dot is a real patient as the model sees it; patients that look alike sit close."
    )
    train: pd.DataFrame = st.session_state["train"]
    options = [c for c in _target_options(_state.get("metadata")) if c in train.columns]
    first = "condition" if "condition" in options else _NO_TARGET
    color_by = st.selectbox(
        "Colour the patients by",
        [_NO_TARGET, *options],
        key=_ui.default("keep_latent_color", first),
    )
    try:
        fig = visualize(
            model, train, color_by=None if color_by == _NO_TARGET else color_by, method="pca"
        )
    except Exception as exc:  # noqa: BLE001
        _ui.show_error(exc, where="Could not draw the latent space.")
        return
    st.plotly_chart(fig, key="latent_chart")


#: The properties of the multi-table evaluation, in plain words.
TABLE_PROPERTIES = {
    "Column Shapes": "Each column's distribution, table by table (mean over the tables).",
    "Column Pair Trends": "How pairs of columns move together, table by table.",
    "Cardinality": "How many rows each parent row has (visits per patient, results per visit).",
    "Intertable Trends": "How a parent's columns go with its children (older patients, more "
    "visits).",
    "Primary Keys": "Every row has its own, unique key.",
    "Referential Integrity": "Every link points to an existing row (no visit without its patient).",
    "Cardinality Bounds": "The number of children per parent stays within the real range.",
}


def _evaluate_tables() -> None:
    from clinsynth.multitable import evaluate_multi_table

    report = _ui.run_with_progress(
        lambda progress: evaluate_multi_table(
            st.session_state["train"],
            _state.get("synthetic"),
            _state.get("metadata"),
            progress=progress,
        ),
        "Comparing",
        failed="The comparison failed.",
    )
    _keep(report)


def _children_per_parent(report) -> None:  # noqa: ANN001 - a MultiTableReport
    links = _ui.sort_links(
        report.figures.get("cardinality") or [],
        _state.get("metadata"),
        child="child",
        parent="parent",
    )
    if not links:
        return
    st.subheader("How many rows each parent has")
    st.caption(
        "For example the number of visits per patient: the share of patients with 0, 1, 2... "
        "visits, real next to synthetic."
    )
    labels = [f"{link['child']} per row of {link['parent']}" for link in links]
    label = st.selectbox("Link", labels, key="keep_compare_link")
    link = links[labels.index(label)]
    child, parent = link["child"], link["parent"]
    fig = plots.cardinality_figure(f"How many rows of {child} each row of {parent} has", link)
    fig.update_xaxes(title_text=f"rows of {child} per row of {parent}")
    st.plotly_chart(fig, key="cardinality_chart")


def _render_tables() -> None:
    st.write(
        "Do the synthetic tables look like the real ones, and are their links intact? "
        "Scores go from 0 to 1; 1 is best."
    )
    report = _state.get("evaluation")
    label = "Compare again" if report is not None else "Compare real and synthetic tables"
    if st.button(label, type="primary", key="compare_button"):
        _evaluate_tables()
        report = _state.get("evaluation")
    if report is None:
        st.caption("The comparison takes a few seconds to a few minutes, depending on the size.")
        return
    left, right = st.columns(2)
    left.metric(
        "Fidelity",
        _score_text(report.get_score()),
        help="How closely the synthetic tables follow the real statistics, within each table "
        "and across the links.",
    )
    right.metric(
        "Keys and links",
        _score_text(report.diagnostic.get_score()),
        help="Unique keys, no broken link (both always hold in clinsynth's copies) and numbers "
        "of children per parent within the real range.",
    )
    properties = report.get_properties()
    st.dataframe(
        pd.DataFrame(
            {
                "Measure": properties["Property"],
                "Score": properties["Score"].map(_score_text),
                "What it checks": properties["Property"].map(TABLE_PROPERTIES).fillna(""),
            }
        ),
        hide_index=True,
    )
    _children_per_parent(report)
    st.subheader("Table by table, column by column")
    table = _ui.table_picker(_state.get("synthetic"), "keep_compare_table")
    figures = report.figures.get("tables", {}).get(table)
    if figures is None:
        why = [note for note in report.notes if f"'{table}'" in note]
        st.caption(why[0] if why else f"Table {table} has no column to compare.")
    else:
        _columns(figures, table)
        _correlations(figures, table)
    _ui.next_step("Compare")


def _score_text(score: float | None) -> str:
    return "not measured" if score is None or math.isnan(score) else f"{score:.2f}"


def render() -> None:
    """Draw the Compare step."""
    st.header("5. Compare real and synthetic data")
    if not _ui.needs("Generate", "synthetic", "First generate synthetic patients in step 4."):
        return
    if isinstance(_state.get("synthetic"), dict):
        _render_tables()
        return
    metadata: Metadata = _state.get("metadata")
    options = _target_options(metadata)
    default = "condition" if "condition" in options else _NO_TARGET
    st.session_state.setdefault("keep_target", default)
    holdout = st.session_state.get("holdout")
    target = st.selectbox(
        "Column a prediction model should learn (for the usefulness score; optional)",
        [_NO_TARGET, *options],
        key="keep_target",
        disabled=holdout is None,
        help="Usefulness and privacy need the patients kept aside in step 3.",
    )
    if holdout is None:
        st.info(
            "No patients were kept aside in step 3, so privacy and usefulness are not measured. "
            "Tick 'Keep 20% of the patients aside' and train again to measure them.",
            icon=":material/info:",
        )
    result = _state.get("evaluation")
    label = "Compare again" if result is not None else "Compare real and synthetic data"
    if st.button(label, type="primary", key="compare_button"):
        _evaluate(None if target == _NO_TARGET else target)
        result = _state.get("evaluation")
    if result is None:
        st.caption("The comparison takes a few seconds to a few minutes, depending on the size.")
        return
    conditions = st.session_state.get("generated_with", {}).get("conditions")
    if conditions:
        st.info(
            "The synthetic patients were generated with conditions ("
            + _ui.describe_conditions(conditions)
            + "), so they differ from the real patients on purpose: generate without "
            "conditions to judge the model.",
            icon=":material/info:",
        )
    _scores(result)
    _longitudinal.evaluation_block(result.figures)
    _columns(result.figures)
    _correlations(result.figures)
    _latent_space()
    _ui.next_step("Compare")
