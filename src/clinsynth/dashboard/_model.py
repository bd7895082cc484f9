"""Step 3, Model: choose a synthesizer from the registry, set it up, train it with live progress."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from clinsynth import Metadata, list_synthesizers
from clinsynth.dashboard import _state, _ui

#: Share of the patients kept out of training to measure privacy risk and usefulness.
HOLDOUT_SHARE = 0.2
_MIN_HOLDOUT_ROWS = 50
#: The model selected at first: fast, and good on most tables.
_DEFAULT_MODEL = "gaussian_copula"


def describe(name: str) -> str:
    """The model's name and the first line of its docstring."""
    cls = list_synthesizers()[name]
    doc = (cls.__doc__ or "").strip().splitlines()
    return f"{name} — {doc[0].rstrip('.')}" if doc else name


def split_holdout(data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and the holdout rows kept aside (a random ``HOLDOUT_SHARE``)."""
    holdout = data.sample(frac=HOLDOUT_SHARE, random_state=seed)
    train = data.drop(index=holdout.index)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def settings_form(name: str, metadata: Metadata) -> dict[str, Any]:
    """Widgets for the model's main parameters; returns the constructor arguments."""
    defaults = list_synthesizers()[name](metadata).get_params()
    params: dict[str, Any] = {}
    left, right = st.columns(2)
    if "epochs" in defaults:
        params["epochs"] = int(
            left.number_input(
                "Training rounds (epochs): more learns better but takes longer",
                min_value=1,
                max_value=10_000,
                step=10,
                key=_ui.default(f"keep_epochs_{name}", int(defaults["epochs"] or 300)),
            )
        )
    if "batch_size" in defaults:
        params["batch_size"] = int(
            right.number_input(
                "Batch size (rows per training step)",
                min_value=2,
                max_value=100_000,
                step=10,
                key=_ui.default(f"keep_batch_{name}", int(defaults["batch_size"] or 500)),
            )
        )
    if "epsilon" in defaults:
        use_dp = st.checkbox(
            "Add differential privacy (a formal, mathematical privacy guarantee)",
            key=_ui.default(f"keep_dp_{name}", defaults["epsilon"] is not None),
        )
        if use_dp:
            params["epsilon"] = float(
                st.number_input(
                    "Privacy budget ε (smaller is more private and less accurate; 1 is common)",
                    min_value=0.01,
                    max_value=100.0,
                    step=0.5,
                    key=_ui.default(f"keep_epsilon_{name}", float(defaults["epsilon"] or 1.0)),
                )
            )
        else:
            params["epsilon"] = None
    return params


def loss_figure(losses: pd.DataFrame) -> go.Figure | None:
    """The training loss per epoch (None when the model recorded none)."""
    if losses is None or losses.empty:
        return None
    x = "epoch" if "epoch" in losses.columns else None
    values = [
        c
        for c in losses.columns
        if c != x and c not in ("batch", "step") and pd.api.types.is_numeric_dtype(losses[c])
    ]
    if not values:
        return None
    frame = losses.groupby(x)[values].mean() if x else losses[values]
    fig = go.Figure()
    for column in values:
        fig.add_scatter(x=list(frame.index), y=frame[column], mode="lines", name=str(column))
    fig.update_layout(
        title="Training loss (lower means the model fits the data better)",
        xaxis_title=x or "step",
        yaxis_title="loss",
        height=320,
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig


def _train(name: str, params: dict[str, Any], seed: int, keep_holdout: bool) -> None:
    data: pd.DataFrame = _state.get("real")
    metadata: Metadata = _state.get("metadata")
    if keep_holdout:
        train, holdout = split_holdout(data, seed)
    else:
        train, holdout = data, None
    bar = st.progress(0.0, text="Starting...")
    cls = list_synthesizers()[name]
    try:
        model = cls(
            metadata.copy(),
            random_state=seed,
            progress=_ui.progress_callback(bar, "Training"),
            **params,
        )
        model.fit(train)
    except Exception as exc:  # noqa: BLE001 - shown in the page; the previous model is kept
        bar.empty()
        _ui.show_error(exc, where="Training failed.")
        return
    bar.empty()  # the success message below says how long it took
    model.progress = None  # the bar belongs to this page run; do not call it again later
    _state.put("synth", model)
    st.session_state["train"] = train
    st.session_state["holdout"] = holdout
    st.session_state["trained_with"] = {"model": name, **params, "seed": seed}


def render() -> None:
    """Draw the Model step."""
    st.header("3. Model")
    if not _ui.needs("Data", "real", "First choose the data in step 1."):
        return
    metadata: Metadata = _state.get("metadata")
    data: pd.DataFrame = _state.get("real")
    st.write(
        "The model learns the statistics of the real table; it then makes new rows that follow "
        "them. Start with the default model: it is fast and works well for most tables."
    )
    names = list(list_synthesizers())
    fast = _DEFAULT_MODEL if _DEFAULT_MODEL in names else names[0]
    name = st.selectbox("Model", names, format_func=describe, key=_ui.default("keep_model", fast))
    params = settings_form(name, metadata)
    seed = int(
        st.number_input(
            "Seed (the same seed gives the same model)",
            min_value=0,
            step=1,
            key=_ui.default("keep_train_seed", 0),
        )
    )
    can_hold = len(data) >= _MIN_HOLDOUT_ROWS
    if not can_hold:
        st.session_state["keep_holdout"] = False
    keep_holdout = st.checkbox(
        f"Keep {HOLDOUT_SHARE:.0%} of the patients aside to measure privacy and usefulness "
        "(recommended)",
        disabled=not can_hold,
        key=_ui.default("keep_holdout", can_hold),
        help=f"Needs at least {_MIN_HOLDOUT_ROWS} rows. These patients are not used for training; "
        "step 5 compares them with the synthetic data.",
    )
    label = "Train the model again" if _state.get("synth") is not None else "Train the model"
    st.caption("Training stops if you leave this page or click elsewhere while it runs.")
    if st.button(label, type="primary", key="train_button"):
        _train(name, params, seed, keep_holdout and can_hold)

    model = _state.get("synth")
    if model is not None:
        used = st.session_state.get("trained_with", {})
        rows = len(st.session_state["train"])
        st.success(
            f"Model **{used.get('model')}** trained on {rows:,} patients in "
            f"{model.fit_seconds_:.1f} s.",
            icon=":material/check_circle:",
        )
        if st.session_state.get("holdout") is not None:
            st.caption(f"{len(st.session_state['holdout']):,} patients kept aside for step 5.")
        fig = loss_figure(model.get_loss_values())
        if fig is not None:
            st.plotly_chart(fig, key="loss_chart")
        else:
            st.caption("This model learns in one pass, so there is no training curve.")
    _ui.next_step("Model")
