"""Longitudinal tables (several rows per patient over time) in every step of the dashboard.

Step 2 declares the table longitudinal: the column that names the patient (``sequence_key``)
and the number or date column that orders the patient's rows (``sequence_index``), proposed by
:func:`clinsynth.metadata.detect_sequence`, checked with
:func:`clinsynth.synthesizers.check_sequences`. Step 3 then trains the ``sequential`` model,
step 4 counts patients (sequences), step 5 shows the report's "Sequences over time".

Linked tables: a child table (visits of a patient) is declared "over time" with the column that
orders each parent row's rows (its ``sequence_index``; the sequence key is its link to the
parent). The schema model then learns it as one sequence per parent row.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _state
from clinsynth.errors import ClinsynthError
from clinsynth.evaluation import plots
from clinsynth.metadata import detect_sequence, sequence_index_candidates
from clinsynth.synthesizers import check_sequences

#: The registry name of the model of sequences.
MODEL = "sequential"
_ON = "seq_on_choice"
_KEY = "seq_key_choice"
_INDEX = "seq_index_choice"
#: Session keys of the step 2 widgets (dropped with new data or an undo).
CHOICES = (_ON, _KEY, _INDEX)


def is_longitudinal(metadata: Metadata | None, data: object) -> bool:
    """Whether a single table is declared longitudinal (both sequence words set)."""
    if metadata is None or isinstance(data, dict) or len(metadata.tables) != 1:
        return False
    table = metadata.get_table()
    return table.sequence_key is not None and table.sequence_index is not None


def propose(data: pd.DataFrame, metadata: Metadata) -> tuple[str, str] | None:
    """Set the detected sequence words on freshly detected metadata; returns them (or None)."""
    found = detect_sequence(data, metadata)
    if found is not None:
        metadata.set_sequence_key(found[0])
        metadata.set_sequence_index(found[1])
    return found


def problems(metadata: Metadata, data: pd.DataFrame | dict) -> list[str]:
    """The sequence checks of the sequential model (ties, missing times, one event each...)."""
    if isinstance(data, dict):
        return _linked_problems(metadata, data)
    if len(metadata.tables) != 1:
        return []
    table = metadata.get_table()
    if table.sequence_key is None:
        return []
    if table.sequence_index is None:
        return [
            "Longitudinal table: choose the number or date column that orders each patient's "
            "rows, or untick 'Longitudinal table'."
        ]
    try:
        check_sequences(data, table.sequence_key, table.sequence_index, table)
    except ClinsynthError as exc:
        return [_sentence(p) for p in (exc.problems or [str(exc)])]
    return []


def _proposal(data: pd.DataFrame, metadata: Metadata) -> tuple[str, str] | None:
    """:func:`detect_sequence`, kept in the session until the data or the column types change
    (the page is redrawn on every click)."""
    types = tuple((c, spec["sdtype"]) for c, spec in metadata.columns.items())
    cached = st.session_state.get("_sequence_proposal")
    if cached is None or cached[0] is not data or cached[1] != types:
        cached = (data, types, detect_sequence(data, metadata))
        st.session_state["_sequence_proposal"] = cached
    return cached[2]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _index_options(metadata: Metadata, key: str | None, table: str | None = None) -> list[str]:
    return [
        c
        for c, spec in metadata.get_table(table).columns.items()
        if c != key and spec["sdtype"] in ("numerical", "datetime")
    ]


def _turn(on: bool) -> None:
    """Declare the table longitudinal (with the proposed columns) or not."""
    metadata: Metadata = _state.get("metadata")
    data: pd.DataFrame = _state.get("real")
    if not on:
        metadata.set_sequence_key(None)
        metadata.set_sequence_index(None)
    else:
        found = _proposal(data, metadata)
        key = found[0] if found else next(iter(metadata.columns))
        metadata.set_sequence_key(key)
        _pick_index(metadata, data, key, found[1] if found else None)
    _state.forget_after("metadata")


def _pick_index(metadata: Metadata, data: pd.DataFrame, key: str, index: str | None) -> None:
    """The index proposed for ``key``; the current one kept when nothing orders its rows."""
    if index is None:
        ranked = sequence_index_candidates(data, metadata, key)
        options = ranked or _index_options(metadata, key)
        current = metadata.get_table().sequence_index
        index = ranked[0] if ranked else (current if current in options else None)
        index = index or (options[0] if options else None)
    metadata.set_sequence_index(index)


def _on_change() -> None:
    _turn(bool(st.session_state[_ON]))


def _key_change() -> None:
    metadata: Metadata = _state.get("metadata")
    key = st.session_state[_KEY]
    metadata.set_sequence_key(key)
    if metadata.get_table().sequence_index == key:
        metadata.set_sequence_index(None)
    _pick_index(metadata, _state.get("real"), key, None)
    _state.forget_after("metadata")


def _index_change() -> None:
    metadata: Metadata = _state.get("metadata")
    metadata.set_sequence_index(st.session_state[_INDEX])
    _state.forget_after("metadata")


def render(metadata: Metadata, data: pd.DataFrame) -> None:
    """The step 2 block: declare the table longitudinal, choose the patient and time columns."""
    st.subheader("Several rows per patient over time?")
    table = metadata.get_table()
    on = table.sequence_key is not None
    # The metadata is the truth: the widgets show it (an undo or new data changes it).
    st.session_state[_ON] = on
    st.checkbox(
        "Longitudinal table: each row is one event of a patient (a visit, a lab result), and "
        "each patient's events are learned in time order",
        key=_ON,
        on_change=_on_change,
        help="The synthetic patients then get their own sequences of events: how many, how far "
        "apart, and how values change from one event to the next.",
    )
    if not on:
        found = _proposal(data, metadata)
        if found is not None:
            st.caption(
                f"`{found[0]}` repeats and `{found[1]}` orders each patient's rows: tick the box "
                "to learn the rows as sequences."
            )
        return
    columns = list(metadata.columns)
    st.session_state[_KEY] = table.sequence_key
    left, right = st.columns(2)
    left.selectbox(
        "Which column names the patient (the same value on all of a patient's rows)?",
        columns,
        key=_KEY,
        on_change=_key_change,
    )
    options = _index_options(metadata, table.sequence_key)
    if not options:
        right.error(
            "No number or date column can order the events: the time of each event is needed. "
            "Declare the time column as a number or a date in the table above.",
            icon=":material/error:",
        )
        return
    st.session_state[_INDEX] = table.sequence_index if table.sequence_index in options else None
    right.selectbox(
        "Which column orders each patient's rows (a number such as a day, or a date)?",
        options,
        key=_INDEX,
        on_change=_index_change,
    )
    patients = data[table.sequence_key].nunique()
    st.caption(
        f"{patients:,} patients, {len(data) / max(patients, 1):.1f} rows each on average. "
        "Columns constant within every patient (sex, age at entry, arm) are learned once per "
        "patient; the others at every event."
    )


def evaluation_block(figures: dict) -> None:
    """Step 5: the report's "Sequences over time" measures and trajectories."""
    data = figures.get("sequences")
    if not data:
        return
    measures = data["measures"]
    st.subheader("Sequences over time")
    st.caption(
        "Events per patient and time between events: Kolmogorov-Smirnov statistic (0 is the "
        "same distribution). Lag-1 autocorrelation: how strongly a value follows the patient's "
        "previous one, real beside synthetic. Violations: synthetic events out of time order "
        "or past a bound found in the real data (should be 0)."
    )
    violations = sum(int(v) for v in measures["violations"].values())
    cells = st.columns(3)
    cells[0].metric("Events per patient (KS)", _number(measures["events_per_patient_ks"]))
    cells[1].metric("Time between events (KS)", _number(measures["gap_ks"]))
    cells[2].metric("Temporal-logic violations", str(violations))
    lag1 = pd.DataFrame(
        [
            {"Column": c, "Real lag-1": v["real"], "Synthetic lag-1": v["synthetic"]}
            for c, v in measures["lag1"].items()
        ]
    )
    if not lag1.empty:
        st.dataframe(lag1, hide_index=True)
    for i, trajectory in enumerate(data["trajectories"]):
        st.plotly_chart(plots.trajectory_figure(trajectory), key=f"trajectory_chart_{i}")
    if data["trajectories"]:
        st.caption(
            "A few patients drawn at random, real (left) and synthetic (right). The left "
            "panel shows real patients' values."
        )


def _number(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------- linked tables
def parent_links(metadata: Metadata, table: str) -> list[tuple[str, str]]:
    """``(foreign key, parent table)`` of each link from ``table`` to another table."""
    return [
        (rel["child_foreign_key"], rel["parent_table_name"])
        for rel in metadata.relationships
        if rel["child_table_name"] == table and rel["parent_table_name"] != table
    ]


def _linked_keys(table: str) -> tuple[str, str, str]:
    return f"seq_linked_on_{table}", f"seq_linked_key_{table}", f"seq_linked_index_{table}"


def _linked_problems(metadata: Metadata, tables: dict) -> list[str]:
    found = []
    for name, spec in metadata.tables.items():
        if spec.sequence_index is None or name not in tables:
            continue
        key = spec.sequence_key or next((fk for fk, _ in parent_links(metadata, name)), None)
        if key is None:
            found.append(
                f"Table '{name}' is declared over time but links to no other table: a table's "
                "events over time belong to rows of its parent table. Link it, or untick "
                "'Rows over time'."
            )
            continue
        try:
            check_sequences(tables[name], key, spec.sequence_index, spec)
        except ClinsynthError as exc:
            found += [f"Table '{name}': {p}" for p in (exc.problems or [str(exc)])]
    return found


def _linked_turn(table: str) -> None:
    """Declare ``table`` a sequence of events of its parent's rows (or not)."""
    metadata: Metadata = _state.get("metadata")
    frame: pd.DataFrame = _state.get("real")[table]
    on_key, _, _ = _linked_keys(table)
    if not st.session_state[on_key]:
        metadata.set_sequence_key(None, table_name=table)
        metadata.set_sequence_index(None, table_name=table)
    else:
        fk = parent_links(metadata, table)[0][0]
        metadata.set_sequence_key(fk, table_name=table)
        _linked_index(metadata, frame, table, fk)
    _state.forget_after("metadata")


def _linked_index(metadata: Metadata, frame: pd.DataFrame, table: str, fk: str) -> None:
    ranked = sequence_index_candidates(frame, metadata, fk, table_name=table)
    options = ranked or _index_options(metadata, fk, table)
    metadata.set_sequence_index(options[0] if options else None, table_name=table)


def _linked_key_change(table: str) -> None:
    metadata: Metadata = _state.get("metadata")
    fk = st.session_state[_linked_keys(table)[1]]
    metadata.set_sequence_key(fk, table_name=table)
    _linked_index(metadata, _state.get("real")[table], table, fk)
    _state.forget_after("metadata")


def _linked_index_change(table: str) -> None:
    metadata: Metadata = _state.get("metadata")
    metadata.set_sequence_index(st.session_state[_linked_keys(table)[2]], table_name=table)
    _state.forget_after("metadata")


def render_linked(metadata: Metadata, tables: dict, table: str) -> None:
    """Step 2, linked tables: declare the chosen child table's rows events over time."""
    links = parent_links(metadata, table)
    if not links:
        return
    spec = metadata.get_table(table)
    on_key, key_key, index_key = _linked_keys(table)
    on = spec.sequence_index is not None
    st.session_state[on_key] = on
    parent = dict(links).get(spec.sequence_key or links[0][0], links[0][1])
    st.checkbox(
        f"Rows over time: each row of **{table}** is one event of a row of **{parent}** (a "
        "visit, a lab result), and each one's events are learned in time order",
        key=on_key,
        on_change=_linked_turn,
        args=(table,),
        help=f"Each synthetic row of {parent} then gets its own sequence of {table}: how many, "
        "how far apart, and how values change from one event to the next (the sequential "
        "model, whatever model is chosen for the other tables).",
    )
    if not on:
        fk = links[0][0]
        ranked = sequence_index_candidates(tables[table], metadata, fk, table_name=table)
        if ranked:
            st.caption(
                f"`{ranked[0]}` orders the rows of each `{fk}`: tick the box to learn them as "
                "events over time."
            )
        return
    left, right = st.columns(2)
    if len(links) > 1:
        st.session_state[key_key] = spec.sequence_key
        left.selectbox(
            "Events of which table's rows (the link)?",
            [fk for fk, _ in links],
            key=key_key,
            on_change=_linked_key_change,
            args=(table,),
            format_func=lambda fk: f"{fk} (rows of {dict(links)[fk]})",
        )
    options = _index_options(metadata, spec.sequence_key, table)
    if not options:
        right.error(
            f"No number or date column of {table} can order the events. Declare the time "
            "column as a number or a date in the table above.",
            icon=":material/error:",
        )
        return
    st.session_state[index_key] = spec.sequence_index if spec.sequence_index in options else None
    right.selectbox(
        f"Which column orders the rows of each {parent} row (a day, a date)?",
        options,
        key=index_key,
        on_change=_linked_index_change,
        args=(table,),
    )
