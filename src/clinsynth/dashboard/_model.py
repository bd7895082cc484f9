"""Step 3, Model: choose a synthesizer from the registry, set it up, train it with live progress."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from clinsynth import Metadata, list_synthesizers
from clinsynth.dashboard import _longitudinal, _state, _ui
from clinsynth.evaluation import plots

#: Share of the patients kept out of training to measure privacy risk and usefulness.
HOLDOUT_SHARE = 0.2
_MIN_HOLDOUT_ROWS = 50
#: The model selected at first: fast, and good on most tables.
_DEFAULT_MODEL = "gaussian_copula"


def describe(name: str) -> str:
    """The model's name and the first line of its docstring."""
    cls = list_synthesizers(sequential=True)[name]
    doc = (cls.__doc__ or "").strip().splitlines()
    return f"{name} — {doc[0].rstrip('.')}" if doc else name


def split_holdout(data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and the holdout rows kept aside (a random ``HOLDOUT_SHARE``)."""
    holdout = data.sample(frac=HOLDOUT_SHARE, random_state=seed)
    train = data.drop(index=holdout.index)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


#: The training settings offered when the model has them: parameter, session key, label,
#: value when the model's default is None, minimum, maximum, step.
_SETTINGS = (
    (
        "epochs",
        "keep_epochs",
        "Training rounds (epochs): more learns better but takes longer",
        300,
        1,
        10_000,
        10,
    ),
    ("batch_size", "keep_batch", "Batch size (rows per training step)", 500, 2, 100_000, 10),
)


def settings_form(name: str, metadata: Metadata, *, patients: int | None = None) -> dict[str, Any]:
    """Widgets for the model's main parameters; returns the constructor arguments.

    ``patients``: the number of sequences of a longitudinal table, whose model picks its
    epochs from it (shown as the first value).
    """
    defaults = list_synthesizers(sequential=True)[name](metadata).get_params()
    params: dict[str, Any] = {}
    offered = [setting for setting in _SETTINGS if setting[0] in defaults]
    # Columns only when there is something to put in them: empty ones leave a gap.
    places = st.columns(len(_SETTINGS)) if offered else []
    for (param, key, label, fallback, low, high, step), where in zip(
        offered,
        places,
        strict=False,  # fewer settings than columns: fill from the left
    ):
        first = int(defaults[param] or fallback)
        if param == "epochs" and defaults[param] is None and patients:
            from clinsynth.synthesizers._sequence_data import auto_epochs

            first = auto_epochs(patients, int(defaults.get("batch_size") or 128))
        if param == "batch_size" and name not in list_synthesizers():  # a model of sequences
            label = "Batch size (patients per training step)"
        params[param] = _ui.number(
            where, label, f"{key}_{name}", first, min_value=low, max_value=high, step=step
        )
    if "epsilon" in defaults:
        use_dp = st.checkbox(
            "Add differential privacy (a formal, mathematical privacy guarantee)",
            key=_ui.default(f"keep_dp_{name}", defaults["epsilon"] is not None),
        )
        params["epsilon"] = None
        if use_dp:
            params["epsilon"] = _ui.number(
                st,
                "Privacy budget ε (smaller is more private and less accurate; 1 is common)",
                f"keep_epsilon_{name}",
                float(defaults["epsilon"] or 1.0),
                min_value=0.01,
                max_value=100.0,
                step=0.5,
            )
    return params


_LOSS_TITLE = "Training loss (lower means the model fits the data better)"
#: ``name value`` pairs in a training progress message ("epoch 3/10 loss 1.2 ETA 4s").
_LOSS_PAIR = re.compile(r"([A-Za-z_]+) (-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)")
_EPOCH = re.compile(r"epoch (\d+)/(\d+)")
#: Linked tables: HMASynthesizer prefixes each table model's messages ("Table 'visits': ...").
_TABLE = re.compile(r"Table '([^']*)': ")


def loss_figure(model: object, table: str | None = None) -> go.Figure | None:
    """The fitted model's training loss per epoch (None when it recorded none)."""
    data, _ = plots.loss_data(model)
    if data is None:
        return None
    title = f"Table {table}: {_LOSS_TITLE[0].lower()}{_LOSS_TITLE[1:]}" if table else _LOSS_TITLE
    return plots.lines_figure(title, data["x"], data["series"], data["x_label"], "loss")


class LiveLoss:
    """Draws the loss curve in a placeholder while a model trains, at most every ``interval`` s.

    The model's loss history (``get_loss_values()``) exists only once ``fit`` returns, so the
    losses are read from the training engine's progress messages
    (``"epoch 3/10 generator_loss 0.71 discriminator_loss -0.01 ETA 4s"``). The first and the
    last epoch are always drawn; ``draws`` counts the redraws. For linked tables the messages
    come prefixed with the table (``"Table 'visits': epoch 3/10 ..."``): the curve of the table
    in training is shown, and starts again with the next table.
    """

    def __init__(self, placeholder: Any, *, interval: float = 0.5) -> None:
        self.placeholder = placeholder
        self.interval = interval
        self.epochs: list[int] = []
        self.series: dict[str, list[float]] = {}
        self.draws = 0
        self.table: str | None = None
        self._last = -math.inf

    def __call__(self, total: int, completed: int, message: str = "") -> None:
        message = message or ""
        table = _TABLE.match(message)
        if table is not None:  # linked tables: one curve per table, the current one shown
            message = message[table.end() :]
            if table.group(1) != self.table:
                self.table = table.group(1)
                self.epochs, self.series = [], {}
        epoch = _EPOCH.match(message)
        if epoch is None:
            return  # "fitting", "done": not a training round
        pairs = [(k, float(v)) for k, v in _LOSS_PAIR.findall(message[epoch.end() :])]
        values = {k: v for k, v in pairs if k != "ETA"}
        if not values:
            return
        self.epochs.append(int(epoch.group(1)))
        for name, value in values.items():
            self.series.setdefault(name, [math.nan] * (len(self.epochs) - 1)).append(value)
        now = time.monotonic()
        last_epoch = completed >= total or epoch.group(1) == epoch.group(2)
        if len(self.epochs) == 1 or last_epoch or now - self._last >= self.interval:
            self._last = now
            self.draws += 1
            title = _LOSS_TITLE + " — training..."
            if self.table is not None:
                title = f"Table {self.table}: {title[0].lower()}{title[1:]}"
            fig = plots.lines_figure(title, self.epochs, self.series, "epoch", "loss")
            self.placeholder.plotly_chart(fig)


def _fit(fit: Callable[[Callable], Any], what: str) -> Any:
    """Run ``fit(progress)`` under a progress bar and a live loss curve.

    Returns the fitted model, or None after showing the error in the page.
    """
    bar = st.empty()  # the bar above the curve
    live = LiveLoss(st.empty())
    model = _ui.run_with_progress(fit, what, failed="Training failed.", then=live, where=bar)
    live.placeholder.empty()  # the final curve is drawn from the model's own history
    st.session_state["live_loss_draws"] = live.draws
    if model is not None:
        model.progress = None  # the bar belongs to this page run; do not call it again later
    return model


def _train(name: str, params: dict[str, Any], seed: int, keep_holdout: bool) -> None:
    data: pd.DataFrame | dict[str, pd.DataFrame] = _state.get("real")
    metadata: Metadata = _state.get("metadata")
    if isinstance(data, dict):  # linked tables: one model per table, parents first
        from clinsynth.multitable import HMASynthesizer

        train, holdout = data, None
        cls: Callable = partial(HMASynthesizer, table_synthesizers=name)
    else:
        train, holdout = split_holdout(data, seed) if keep_holdout else (data, None)
        cls = list_synthesizers(sequential=True)[name]

    def fit(progress: Callable) -> Any:
        return cls(metadata.copy(), random_state=seed, progress=progress, **params).fit(train)

    model = _fit(fit, "Training")
    if model is None:
        return
    _state.put("synth", model)
    st.session_state["train"] = train
    st.session_state["holdout"] = holdout
    st.session_state["trained_with"] = {"model": name, **params, "seed": seed}


def _holdout_choice(data: pd.DataFrame) -> bool:
    can_hold = len(data) >= _MIN_HOLDOUT_ROWS
    if not can_hold:
        st.session_state["keep_holdout"] = False
    keep = st.checkbox(
        f"Keep {HOLDOUT_SHARE:.0%} of the patients aside to measure privacy and usefulness "
        "(recommended)",
        disabled=not can_hold,
        key=_ui.default("keep_holdout", can_hold),
        help=f"Needs at least {_MIN_HOLDOUT_ROWS} rows. These patients are not used for training; "
        "step 5 compares them with the synthetic data.",
    )
    return keep and can_hold


def _trained(model: Any, multi: bool) -> None:
    used = st.session_state.get("trained_with", {})
    train = st.session_state["train"]
    if multi:
        rows = sum(len(df) for df in train.values())
        what = f"{_ui.tables_label(len(train))}, {rows:,} rows in all,"
    elif _longitudinal.is_longitudinal(_state.get("metadata"), train):
        key = _state.get("metadata").get_table().sequence_key
        what = f"{train[key].nunique():,} patients ({len(train):,} events)"
    else:
        what = f"{len(train):,} patients"
    st.success(
        f"Model **{used.get('model')}** trained on {what} in {model.fit_seconds_:.1f} s.",
        icon=":material/check_circle:",
    )
    if st.session_state.get("holdout") is not None:
        st.caption(f"{len(st.session_state['holdout']):,} patients kept aside for step 5.")
    models = {t: model.get_table_synthesizer(t) for t in train} if multi else {None: model}
    figures = {t: loss_figure(m, t) for t, m in models.items() if m is not None}
    for table, fig in figures.items():
        if fig is not None:
            st.plotly_chart(fig, key=f"loss_chart_{table}" if table else "loss_chart")
    if not any(fig is not None for fig in figures.values()):
        st.caption("This model learns in one pass, so there is no training curve.")


def _time_estimate(
    name: str, params: dict[str, Any], metadata: Metadata, data: pd.DataFrame | dict
) -> None:
    """Say how long training will take, measured on a sample of the data (kept in the session
    until the model, its settings or the data change)."""
    from clinsynth.dashboard._estimate import describe, estimate_seconds

    key = (name, repr(sorted(params.items())), id(data), id(metadata))
    cached = st.session_state.get("_time_estimate")
    if cached is None or cached[0] != key:
        with st.spinner("Estimating the training time on a sample of your data..."):
            try:
                seconds = estimate_seconds(name, params, metadata, data)
            except Exception:  # noqa: BLE001 - an estimate must never block training
                seconds = None
        cached = (key, seconds)
        st.session_state["_time_estimate"] = cached
    seconds = cached[1]
    if seconds is None:
        st.caption("The training time could not be estimated; training will say it as it runs.")
        return
    tables = data.values() if isinstance(data, dict) else [data]
    rows = sum(len(df) for df in tables)
    text = (
        f"Training will take **{describe(seconds)}** ({rows:,} rows, model {name}; measured on "
        "a sample of your data on this computer, so a rough figure)."
    )
    if seconds > 300:
        st.warning(
            text + " That is long: fewer training rounds, or the Gaussian copula, is much faster.",
            icon=":material/schedule:",
        )
    else:
        st.info(text, icon=":material/schedule:")


def render() -> None:
    """Draw the Model step."""
    st.header("3. Model")
    if not _ui.needs("Data", "real", "First choose the data in step 1."):
        return
    metadata: Metadata = _state.get("metadata")
    data: pd.DataFrame | dict = _state.get("real")
    multi = isinstance(data, dict)
    if multi:
        st.write(
            "The model learns the linked tables one after another, parents first: each "
            "patient's number of visits together with the patient's columns, then each visit "
            "given its patient, and so on. The synthetic tables keep the links. The model "
            "below is used for every table; start with the default: it is fast and works well."
        )
        over_time = [t for t, spec in metadata.tables.items() if spec.sequence_index is not None]
        if over_time:
            st.caption(
                f"Rows over time ({', '.join(over_time)}, step 2): learned by the sequential "
                "model as each parent row's events in time order, whatever model is chosen below."
            )
    sequences = _longitudinal.is_longitudinal(metadata, data)
    if sequences:
        st.write(
            "The table is longitudinal (step 2): the model learns each patient's events in "
            "time order — how many, how far apart, and each event given the patient's earlier "
            "ones — and makes new patients with their own sequences."
        )
        st.caption(
            "The other models learn rows as independent (the order of events is lost): to use "
            "one, untick 'Longitudinal table' in step 2."
        )
    elif not multi:
        st.write(
            "The model learns the statistics of the real table; it then makes new rows that "
            "follow them. Start with the default model: it is fast and works well for most "
            "tables."
        )
    names = [_longitudinal.MODEL] if sequences else list(list_synthesizers())
    fast = _DEFAULT_MODEL if _DEFAULT_MODEL in names else names[0]
    name = st.selectbox(
        "Model for every table" if multi else "Model",
        names,
        format_func=describe,
        key=_ui.default("keep_seq_model" if sequences else "keep_model", fast),
    )
    key = metadata.get_table().sequence_key if sequences else None
    params = settings_form(name, metadata, patients=data[key].nunique() if key else None)
    seed = _ui.number(st, "Seed (the same seed gives the same model)", "keep_train_seed", 0)
    if multi:
        st.caption(
            "All rows of all tables are used for training: keeping patients aside to measure "
            "privacy is offered for a single table only."
        )
        keep_holdout = False
    elif sequences:
        st.caption(
            "All patients are used for training: keeping patients aside to measure privacy is "
            "not offered for longitudinal tables yet."
        )
        keep_holdout = False
    else:
        keep_holdout = _holdout_choice(data)
    _time_estimate(name, params, metadata, data)
    label = "Train the model again" if _state.get("synth") is not None else "Train the model"
    st.caption("Training stops if you leave this page or click elsewhere while it runs.")
    if st.button(label, type="primary", key="train_button"):
        _train(name, params, seed, keep_holdout)
    model = _state.get("synth")
    if model is not None:
        _trained(model, multi)
    _ui.next_step("Model")
