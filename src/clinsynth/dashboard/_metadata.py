"""Step 2, Metadata: the detected column types, key and personal data, editable, checked inline."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _download, _longitudinal, _state, _ui
from clinsynth.dashboard import _links as link_editor
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


def is_multi(data: object) -> bool:
    """Whether the session works on several linked tables (a dict of DataFrames)."""
    return isinstance(data, dict)


Problems = dict[tuple[str | None, str], list[str]]


def check(metadata: Metadata, data: pd.DataFrame | dict) -> tuple[Problems, list[str], Problems]:
    """Problems per ``(table, column)``, problems about no single column, notes per column.

    Runs :meth:`Metadata.validate` and :meth:`Metadata.validate_data` and files each problem under
    the column it names (``table`` is None for a single table). The result is kept in the session
    until the data or metadata change.
    """
    spec = json.dumps(metadata.to_dict(), sort_keys=True, default=str)
    cached = st.session_state.get("_metadata_check")
    if cached is not None and cached[0] is data and cached[1] == spec:
        return cached[2]
    result = _check(metadata, data)
    st.session_state["_metadata_check"] = (data, spec, result)
    return result


def is_ready(metadata: Metadata | None, data: pd.DataFrame | dict | None) -> bool:
    """Whether the metadata fits the data (nothing blocks training)."""
    if metadata is None or data is None:
        return False
    by_column, general, _ = check(metadata, data)
    return not general and not any(by_column.values())


def _check(metadata: Metadata, data: pd.DataFrame | dict) -> tuple[Problems, list[str], Problems]:
    problems: list[str] = []
    notes: list[str] = []
    try:
        metadata.validate()
        notes = metadata.validate_data(data)
    except ClinsynthError as exc:
        problems = exc.problems or [str(exc)]
    multi = is_multi(data)
    if not problems:
        problems = _longitudinal.problems(metadata, data)
    places = {
        (table if multi else None, column): f"table '{table}', " if multi else ""
        for table, spec in metadata.tables.items()
        for column in spec.columns
    }
    by_column: Problems = {place: [] for place in places}
    notes_by_column: Problems = {place: [] for place in places}
    general: list[str] = []
    for text, target in [(p, by_column) for p in problems] + [(n, notes_by_column) for n in notes]:
        named = [
            (table, column)
            for (table, column), where in places.items()
            if f"{where}column '{column}'" in text or f"{where}key '{column}'" in text
        ]
        for place in named:
            target[place].append(text)
        if not named and target is by_column:
            general.append(text)
    return by_column, general, notes_by_column


def short(problem: str, column: str) -> str:
    """A problem without the column name it starts with (the table row already names it)."""
    text = problem
    for prefix in (f"column '{column}': ", f"column '{column}' ", f"column '{column}', "):
        if prefix in text:
            text = text.split(prefix, 1)[1]
            break
    text = text.removeprefix("is ")
    return text[:1].upper() + text[1:]


def _role(column: str, table: str | None, metadata: Metadata) -> str:
    """'key' or 'link to <table>' for a key column of a linked table, else ''."""
    if table is None:
        return ""
    if metadata.get_table(table).primary_key == column:
        return "key of this table"
    parents = [
        r["parent_table_name"]
        for r in metadata.relationships
        if r["child_table_name"] == table and r["child_foreign_key"] == column
    ]
    return "link to " + ", ".join(parents) if parents else ""


def _table(
    metadata: Metadata, table: str | None, data: pd.DataFrame, by_column: Problems, notes: Problems
) -> pd.DataFrame:
    rows = []
    for column, spec in metadata.get_table(table).columns.items():
        place = (table, column)
        if by_column.get(place):
            status = "⚠ " + " ".join(short(p, column) for p in by_column[place])
        elif notes.get(place):
            status = "Note: " + " ".join(short(n, column) for n in notes[place])
        else:
            status = "✓ OK"
        row = {"Column": column, "Type": spec["sdtype"]}
        if table is not None:
            row["Key"] = _role(column, table, metadata)
        row |= {
            "Check": status,
            "Personal data": is_pii(spec),
            "Examples": _examples(data[column]) if column in data else "",
        }
        rows.append(row)
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
    edited: pd.DataFrame,
    shown: pd.DataFrame,
    metadata: Metadata,
    table: str | None,
    data: pd.DataFrame,
) -> bool:
    changed = False
    for (_, new), (_, old) in zip(edited.iterrows(), shown.iterrows(), strict=True):
        if new["Type"] != old["Type"] and isinstance(new["Type"], str):
            column = old["Column"]
            metadata.update_column(
                column,
                table_name=table,
                sdtype=new["Type"],
                **_new_spec(column, new["Type"], data[column]),
            )
            key = metadata.get_table(table).primary_key
            if key == column and new["Type"] not in ("id", "numerical", "mrn"):
                metadata.set_primary_key(None, table_name=table)
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
    for key in _longitudinal.CHOICES:
        st.session_state.pop(key, None)


def links_text(metadata: Metadata) -> list[str]:
    """The relationships between tables in plain words, one line per link, parents first."""
    return [
        f"Each row of **{r['child_table_name']}** belongs to one row of "
        f"**{r['parent_table_name']}**: its column `{r['child_foreign_key']}` holds the "
        f"`{r['parent_primary_key']}` of that row."
        for r in _ui.sort_links(metadata.relationships, metadata)
    ]


def _links(metadata: Metadata, tables: dict[str, pd.DataFrame]) -> str:
    """Draw the links between the tables; returns the table chosen for the column view."""
    st.subheader("How the tables are linked")
    links = links_text(metadata)
    if not links:
        st.warning(
            "No link between the tables was found. A link is a column whose values are the key "
            "of another table (for example `patient_id` in a visits table). Without links, "
            "each table is synthesized on its own.",
            icon=":material/link_off:",
        )
    else:
        st.markdown("\n".join(f"- {line}" for line in links))
        st.caption("The synthetic tables keep these links: every synthetic row has its parent.")
    link_editor.render(metadata, tables)
    st.subheader("Columns of each table")
    return _ui.table_picker(tables, "keep_md_table")


def _key_choice(metadata: Metadata) -> None:
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


def rules_frame(metadata: Metadata, table: str | None) -> pd.DataFrame:
    """One row per rule of the table: Keep, Rule (in words), Kind and its support."""
    from clinsynth.constraints import constraint_from_dict

    rows = []
    for item in metadata.get_table(table).constraints:
        try:
            text = constraint_from_dict(item).describe()
        except ClinsynthError:
            text = json.dumps(item)  # shown as written; the check below names the problem
        support = item.get("support") or {}
        rows.append(
            {
                "Keep": True,
                "Rule": text,
                "Kind": str(item.get("type", "")).replace("_", " "),
                "Rows": support.get("rows"),
                "Informative rows": support.get("informative"),
            }
        )
    return pd.DataFrame(rows, columns=["Keep", "Rule", "Kind", "Rows", "Informative rows"])


def _rules(metadata: Metadata, table: str | None) -> None:
    """The rules every real row obeys (found by clinsynth, or added in the JSON); untick to
    remove one."""
    st.subheader("Rules every row obeys")
    shown = rules_frame(metadata, table)
    if shown.empty:
        st.caption(
            "No rule was found in this table. Rules can be added by hand in the metadata JSON "
            "('constraints', see docs/RULES.md)."
        )
        return
    st.caption(
        "clinsynth found these in the real data (each holds on every row); every model keeps "
        "them in the synthetic rows. Untick a rule to drop it. Add your own in the downloaded "
        "metadata JSON ('constraints')."
    )
    edited = st.data_editor(
        shown,
        key=f"rules_editor_{st.session_state['editor_version']}" + (f"_{table}" if table else ""),
        hide_index=True,
        num_rows="fixed",
        disabled=["Rule", "Kind", "Rows", "Informative rows"],
        column_config={
            "Keep": st.column_config.CheckboxColumn("Keep", width=60),
            "Rule": st.column_config.TextColumn("Rule", width=420),
            "Rows": st.column_config.NumberColumn("Rows", help="Rows the rule was checked on."),
            "Informative rows": st.column_config.NumberColumn(
                "Informative rows", help="Rows where the rule could have failed."
            ),
        },
        width="stretch",
    )
    dropped = {i for i, keep in enumerate(edited["Keep"]) if not keep}
    if dropped:
        spec = metadata.get_table(table)
        spec.constraints = [c for i, c in enumerate(spec.constraints) if i not in dropped]
        _state.forget_after("metadata")
        st.session_state["editor_version"] += 1
        st.rerun()


def _verdict(by_column: Problems, general: list[str]) -> None:
    failing = {place: p for place, p in by_column.items() if p}
    if failing or general:
        count = sum(len(p) for p in failing.values()) + len(general)
        lines = [
            f"- **{f'{t}.' if t else ''}{c}**: {short(p, c)}"
            for (t, c), ps in failing.items()
            for p in ps
        ]
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


def render() -> None:
    """Draw the Metadata step."""
    st.header("2. Metadata: what each column means")
    if not _ui.needs("Data", "real", "First choose the data in step 1."):
        return
    data: pd.DataFrame | dict = _state.get("real")
    metadata: Metadata = _state.get("metadata")
    st.write(
        "clinsynth guessed the type of every column. Check the **Type** column and change it "
        "where the guess is wrong: the **Check** column says what does not fit. Personal data "
        "(names, record numbers, free text...) is never learned: the synthetic data gets "
        "realistic fake values instead."
    )
    by_column, general, notes = check(metadata, data)
    table = _links(metadata, data) if is_multi(data) else None
    frame = data[table] if table is not None else data
    shown = _table(metadata, table, frame, by_column, notes)
    # Narrower columns when the Key column is added, so that the Examples stay in view.
    wide = table is None
    options = list(dict.fromkeys([*SDTYPES, *shown["Type"]]))
    edited = st.data_editor(
        shown,
        key=f"md_editor_{st.session_state['editor_version']}" + (f"_{table}" if table else ""),
        hide_index=True,
        num_rows="fixed",
        disabled=["Column", "Key", "Personal data", "Examples", "Check"],
        column_config={
            "Column": st.column_config.TextColumn("Column", width=140),
            "Type": st.column_config.SelectboxColumn(
                "Type",
                options=options,
                required=True,
                format_func=_label,
                width=280 if wide else 250,
                help="How the column is learned. Click a cell to change it.",
            ),
            "Key": st.column_config.TextColumn(
                "Key", width=130, help="The table's own key, or a link to another table."
            ),
            "Personal data": st.column_config.CheckboxColumn(
                "Personal data", help="Replaced by realistic fakes, never learned.", width=90
            ),
            "Examples": st.column_config.TextColumn("Examples", width=170 if wide else 130),
            "Check": st.column_config.TextColumn(
                "Check",
                width=260 if wide else 200,
                help="What does not fit this column (full text below).",
            ),
        },
        width="stretch",
        # Every column in view (up to about 25) rather than a scrolling box.
        height=min(35 * (len(shown) + 1) + 3, 35 * 26 + 3),
    )
    try:
        if _apply(edited, shown, metadata, table, frame):
            _state.forget_after("metadata")
            st.session_state["editor_version"] += 1
            st.rerun()
    except ClinsynthError as exc:
        _ui.show_error(exc)
    if table is None:
        _key_choice(metadata)
        _longitudinal.render(metadata, frame)
    else:
        _longitudinal.render_linked(metadata, data, table)
    _rules(metadata, table)
    _verdict(by_column, general)

    left, right = st.columns(2)
    left.button("Undo my changes (back to the detected types)", on_click=_reset)
    _download.button(
        right,
        "Download the metadata (JSON)",
        _download.metadata_json(metadata),
        "metadata.json",
        "application/json",
    )
    _ui.next_step("Metadata")
