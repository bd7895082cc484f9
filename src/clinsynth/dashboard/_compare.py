"""Step 5, Compare: scores with verdicts, real vs synthetic plots per column, correlations."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import clinsynth
from clinsynth import Metadata
from clinsynth.dashboard import _figures, _state, _ui
from clinsynth.metadata import is_pii

_NO_TARGET = "(none)"
#: What each score measures, in plain words.
EXPLAIN = {
    "Diagnostic": "Is the synthetic table well formed (valid values, ranges, categories)?",
    "Fidelity": "How closely the synthetic data follows the real statistics, column by column "
    "and in pairs of columns.",
    "ML utility": "Does a model trained on synthetic patients predict real patients as well as "
    "one trained on real patients?",
    "Privacy": "Could someone learn about a real patient from the synthetic data? 1 means no "
    "measurable risk.",
}


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

    bar = st.progress(0.0, text="Starting...")
    metadata: Metadata = _state.get("metadata")
    try:
        result = evaluate(
            st.session_state["train"],
            _state.get("synthetic"),
            metadata,
            holdout=st.session_state.get("holdout"),
            target=target,
            model=_state.get("synth"),
            max_plot_columns=max(30, len(metadata.columns)),
            progress=_ui.progress_callback(bar, "Comparing"),
        )
    except Exception as exc:  # noqa: BLE001
        bar.empty()
        _ui.show_error(exc, where="The comparison failed.")
        return
    bar.empty()
    _state.put("evaluation", result)


def _scores(result) -> None:  # noqa: ANN001 - an EvaluationResult
    summary = result.summary()
    cells = st.columns(len(summary))
    for cell, (_, row) in zip(cells, summary.iterrows(), strict=True):
        score = row["Score"]
        value = "not measured" if score is None or math.isnan(score) else f"{score:.2f}"
        cell.metric(row["Section"], value, help=EXPLAIN.get(row["Section"]))
        verdict = str(row["Verdict"])
        cell.markdown(f":{_COLOURS.get(verdict, 'orange')}[**{verdict}**]")
    st.caption("Scores go from 0 to 1; 1 is best. Hover over a score's title for what it measures.")
    skipped = result.info.get("skipped", {})
    for section, why in skipped.items():
        st.caption(f"Not measured — {section}: {why}")
    if result.privacy is not None:
        with st.expander("Privacy risks in detail"):
            st.dataframe(result.privacy.risks, hide_index=True)


def _columns(result) -> None:  # noqa: ANN001
    per_column = result.figures.get("columns", {})
    if not per_column:
        st.caption("No column can be plotted (no number, category, yes/no or date column).")
        return
    st.subheader("Column by column")
    names = list(per_column)
    st.caption("Listed from the column that differs most to the one that differs least.")
    name = st.selectbox("Column", names, key="keep_compare_column")
    st.plotly_chart(_figures.column_figure(name, per_column[name]), key="column_chart")


def _correlations(result) -> None:  # noqa: ANN001
    corr = result.figures.get("correlation")
    if not corr:
        return
    st.subheader("How the numbers move together (correlations)")
    st.caption(
        "Red: two measurements rise together; blue: one rises when the other falls. The two "
        "maps should look alike."
    )
    left, right = st.columns(2)
    left.plotly_chart(
        _figures.heatmap_figure("Real", corr["columns"], corr["real"]), key="corr_real"
    )
    right.plotly_chart(
        _figures.heatmap_figure("Synthetic", corr["columns"], corr["synthetic"]),
        key="corr_synthetic",
    )


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


def render() -> None:
    """Draw the Compare step."""
    st.header("5. Compare real and synthetic data")
    if not _ui.needs("Generate", "synthetic", "First generate synthetic patients in step 4."):
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
    _columns(result)
    _correlations(result)
    _latent_space()
    _ui.next_step("Compare")
