"""Step 2, Metadata: the detected column types, key and personal data, editable, checked inline."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _state, _ui
from clinsynth.errors import ClinsynthError
from clinsynth.metadata import SDTYPES, detect_column, detect_datetime_format, is_pii

#: Plain words for each column type (the sdtype is what the library stores).
TYPE_LABELS = {
    "numerical": "number (age, weight, lab value)",
    "categorical": "category (sex, diagnosis)",
    "ordinal": "ordered category (stage I < II < III)",
    "boolean": "yes / no",
    "datetime": "date or time",
    "id": "identifier (replaced by new ones)",
    "name": "personal: name (faked)",
    "email": "personal: e-mail (faked)",
    "phone_number": "personal: phone number (faked)",
    "address": "personal: address (faked)",
    "ssn": "personal: social security number (faked)",
    "mrn": "personal: medical record number (faked)",
    "text": "personal: free text (faked)",
    "unknown": "unknown (empty column: choose a type)",
}
_NO_KEY = "(no key column)"


def _label(sdtype: str) -> str:
    return f"{sdtype} — {TYPE_LABELS[sdtype]}" if sdtype in TYPE_LABELS else sdtype


def _examples(series: pd.Series, n: int = 3) -> str:
    values = series.dropna().astype(str).unique()[:n]
    return ", ".join(values) + ("" if len(values) else "(empty)")


def check(metadata: Metadata, data: pd.DataFrame) -> tuple[dict[str, list[str]], list[str], dict]:
    """Problems per column, problems about no single column, and notes per column.

    Runs :meth:`Metadata.validate` and :meth:`Metadata.validate_data` and files each problem under
    the column it names. The result is kept in the session until the data or metadata change.
    """
    spec = json.dumps(metadata.to_dict(), sort_keys=True, default=str)
    cached = st.session_state.get("_metadata_check")
    if cached is not None and cached[0] is data and cached[1] == spec:
        return cached[2]
    result = _check(metadata, data)
    st.session_state["_metadata_check"] = (data, spec, result)
    return result


def is_ready(metadata: Metadata | None, data: pd.DataFrame | None) -> bool:
    """Whether the metadata fits the data (nothing blocks training)."""
    if metadata is None or data is None:
        return False
    by_column, general, _ = check(metadata, data)
    return not general and not any(by_column.values())


def _check(metadata: Metadata, data: pd.DataFrame) -> tuple[dict[str, list[str]], list[str], dict]:
    problems: list[str] = []
    notes: list[str] = []
    try:
        metadata.validate()
        notes = metadata.validate_data(data)
    except ClinsynthError as exc:
        problems = exc.problems or [str(exc)]
    columns = list(metadata.columns)
    by_column: dict[str, list[str]] = {c: [] for c in columns}
    notes_by_column: dict[str, list[str]] = {c: [] for c in columns}
    general: list[str] = []
    for text, target in [(p, by_column) for p in problems] + [(n, notes_by_column) for n in notes]:
        named = [c for c in columns if f"column '{c}'" in text or f"key '{c}'" in text]
        for column in named:
            target[column].append(text)
        if not named and target is by_column:
            general.append(text)
    return by_column, general, notes_by_column


def short(problem: str, column: str) -> str:
    """A problem without the column name it starts with (the table row already names it)."""
    text = problem
    for prefix in (f"column '{column}': ", f"column '{column}' "):
        if prefix in text:
            text = text.split(prefix, 1)[1]
            break
    text = text.removeprefix("is ")
    return text[:1].upper() + text[1:]


def _table(metadata: Metadata, data: pd.DataFrame, by_column: dict, notes: dict) -> pd.DataFrame:
    rows = []
    for column, spec in metadata.columns.items():
        if by_column.get(column):
            status = "⚠ " + " ".join(short(p, column) for p in by_column[column])
        elif notes.get(column):
            status = "Note: " + " ".join(short(n, column) for n in notes[column])
        else:
            status = "✓ OK"
        rows.append(
            {
                "Column": column,
                "Type": spec["sdtype"],
                "Check": status,
                "Personal data": is_pii(spec),
                "Examples": _examples(data[column]) if column in data else "",
            }
        )
    return pd.DataFrame(rows)


def _new_spec(column: str, sdtype: str, series: pd.Series) -> dict:
    """Properties for a column whose type the user changed (from detection where it agrees)."""
    detected = detect_column(column, series)
    if detected.get("sdtype") == sdtype:
        return {k: v for k, v in detected.items() if k != "sdtype"}
    if sdtype == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
        fmt = detect_datetime_format(series.dropna().astype(str).str.strip())
        return {"datetime_format": fmt} if fmt else {}
    return {}


def _apply(
    edited: pd.DataFrame, shown: pd.DataFrame, metadata: Metadata, data: pd.DataFrame
) -> bool:
    changed = False
    for (_, new), (_, old) in zip(edited.iterrows(), shown.iterrows(), strict=True):
        if new["Type"] != old["Type"] and isinstance(new["Type"], str):
            column = old["Column"]
            metadata.update_column(
                column, sdtype=new["Type"], **_new_spec(column, new["Type"], data[column])
            )
            if metadata.primary_key == column and new["Type"] not in ("id", "numerical", "mrn"):
                metadata.set_primary_key(None)
            changed = True
    return changed


def _set_key() -> None:
    metadata: Metadata = _state.get("metadata")
    choice = st.session_state.get("primary_key_choice")
    metadata.set_primary_key(None if choice in (None, _NO_KEY) else choice)
    _state.forget_after("metadata")


def _reset() -> None:
    _state.put("metadata", st.session_state["detected"].copy())
    st.session_state["editor_version"] += 1
    st.session_state.pop("primary_key_choice", None)


def render() -> None:
    """Draw the Metadata step."""
    st.header("2. Metadata: what each column means")
    if not _ui.needs("Data", "real", "First choose the data in step 1."):
        return
    data: pd.DataFrame = _state.get("real")
    metadata: Metadata = _state.get("metadata")
    st.write(
        "clinsynth guessed the type of every column. Check the **Type** column and change it "
        "where the guess is wrong: the **Check** column says what does not fit. Personal data "
        "(names, record numbers, free text...) is never learned: the synthetic data gets "
        "realistic fake values instead."
    )
    by_column, general, notes = check(metadata, data)
    shown = _table(metadata, data, by_column, notes)
    options = list(dict.fromkeys([*SDTYPES, *shown["Type"]]))
    edited = st.data_editor(
        shown,
        key=f"md_editor_{st.session_state['editor_version']}",
        hide_index=True,
        num_rows="fixed",
        disabled=["Column", "Personal data", "Examples", "Check"],
        column_config={
            "Column": st.column_config.TextColumn("Column", width=150),
            "Type": st.column_config.SelectboxColumn(
                "Type",
                options=options,
                required=True,
                format_func=_label,
                width=300,
                help="How the column is learned. Click a cell to change it.",
            ),
            "Personal data": st.column_config.CheckboxColumn(
                "Personal data", help="Replaced by realistic fakes, never learned.", width=100
            ),
            "Examples": st.column_config.TextColumn("Examples", width=170),
            "Check": st.column_config.TextColumn(
                "Check", width=320, help="What does not fit this column (full text below)."
            ),
        },
        width="stretch",
        # Every column in view (up to about 25) rather than a scrolling box.
        height=min(35 * (len(shown) + 1) + 3, 35 * 26 + 3),
    )
    try:
        if _apply(edited, shown, metadata, data):
            _state.forget_after("metadata")
            st.session_state["editor_version"] += 1
            st.rerun()
    except ClinsynthError as exc:
        _ui.show_error(exc)

    keys = [_NO_KEY, *metadata.columns]
    current = metadata.primary_key if metadata.primary_key in metadata.columns else _NO_KEY
    st.session_state.setdefault("primary_key_choice", current)
    if st.session_state["primary_key_choice"] not in keys:
        st.session_state["primary_key_choice"] = current
    st.selectbox(
        "Which column identifies a patient (the key)? Its values are replaced by new "
        "identifiers in the synthetic data.",
        keys,
        key="primary_key_choice",
        on_change=_set_key,
    )

    failing = {c: p for c, p in by_column.items() if p}
    if failing or general:
        count = sum(len(p) for p in failing.values()) + len(general)
        lines = [f"- **{c}**: {short(p, c)}" for c, ps in failing.items() for p in ps]
        lines += [f"- {p}" for p in general]
        st.error(
            f"{count} problem{'s' if count > 1 else ''} to fix before training. Change the "
            "column's type in the table above, or fix the file and upload it again.\n\n"
            + "\n".join(lines),
            icon=":material/error:",
        )
    else:
        st.success(
            "The metadata fits the data: ready to train a model.", icon=":material/check_circle:"
        )

    left, right = st.columns(2)
    left.button("Undo my changes (back to the detected types)", on_click=_reset)
    right.download_button(
        "Download the metadata (JSON)",
        data=json.dumps(metadata.to_dict(), indent=2, default=str),
        file_name="metadata.json",
        mime="application/json",
        key="download_metadata_step2",
        icon=":material/download:",
        on_click="ignore",
    )
    _ui.next_step("Metadata")
