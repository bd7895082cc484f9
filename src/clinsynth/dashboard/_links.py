"""Step 2 with linked tables: the links found, with their evidence, editable on the page.

Every link clinsynth found (and every candidate it did not keep: ambiguous, broken, weaker) is a
row with its evidence — the share of the child's values found among the parent's keys and the
orphans. Ticking *Keep* adds a link, unticking removes it; each table's key can be picked; a link
that detection missed can be added by choosing its column and its parent table (its evidence is
computed from the data before it is added).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _state
from clinsynth.errors import ClinsynthError

_COLUMNS = ["Keep", "Table", "Column", "Points to", "Values found", "Orphans", "Evidence"]
_NO_KEY = "(no key)"


def evidence(data: dict[str, pd.DataFrame], child: str, column: str, parent: str, key: str):
    """Share of the child's values found among the parent's keys, and the orphans (None, 0 when
    a column is missing).

    >>> d = {"p": pd.DataFrame({"id": [1, 2]}), "c": pd.DataFrame({"pid": [1, 1, 3, None]})}
    >>> evidence(d, "c", "pid", "p", "id")
    (0.6666666666666666, 1)
    """
    if column not in data.get(child, {}) or key not in data.get(parent, {}):
        return None, 0
    values = data[child][column].dropna()
    if len(values) == 0:
        return None, 0
    found = values.isin(pd.Index(data[parent][key].dropna().unique()))
    return float(found.mean()), int((~found).sum())


def links_frame(metadata: Metadata, data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per link kept (Keep ticked) and per candidate detection left out."""
    detected = {
        (c["child_table_name"], c["child_foreign_key"], c["parent_table_name"]): c
        for c in (metadata.detection or {}).get("links", [])
        if isinstance(c, dict)
    }
    rows, seen = [], set()
    for rel in metadata.relationships:
        place = (rel["child_table_name"], rel["child_foreign_key"], rel["parent_table_name"])
        seen.add(place)
        rows.append(_row(True, *place, rel["parent_primary_key"], detected.get(place), data))
    for place, cand in detected.items():
        if place in seen or cand.get("status") in ("linked", "not a key"):
            continue
        key = metadata.tables[place[2]].primary_key if place[2] in metadata.tables else None
        if key is None:
            continue
        rows.append(_row(False, *place, key, cand, data))
    return pd.DataFrame(rows, columns=_COLUMNS)


def _row(keep: bool, child, column, parent, key, cand, data) -> dict:  # noqa: ANN001
    share, orphans = evidence(data, child, column, parent, key)
    if cand is not None:
        why = f"{cand.get('status')}, name match: {cand.get('match')}"
        if cand.get("note"):
            why += f" — {cand['note']}"
    else:
        why = "added by hand"
    return {
        "Keep": keep,
        "Table": child,
        "Column": column,
        "Points to": f"{parent}.{key}",
        "Values found": None if share is None else round(100 * share, 1),
        "Orphans": orphans,
        "Evidence": why,
    }


def apply_links(edited: pd.DataFrame, shown: pd.DataFrame, metadata: Metadata) -> bool:
    """Add the links ticked and remove the links unticked; whether anything changed."""
    changed = False
    for (_, new), (_, old) in zip(edited.iterrows(), shown.iterrows(), strict=True):
        if bool(new["Keep"]) == bool(old["Keep"]):
            continue
        parent, key = str(old["Points to"]).split(".", 1)
        child, column = old["Table"], old["Column"]
        if new["Keep"]:
            # One link per column: keeping this one replaces any other of the same column.
            metadata.relationships = [
                r
                for r in metadata.relationships
                if (r["child_table_name"], r["child_foreign_key"]) != (child, column)
            ]
            metadata.add_relationship(parent, child, key, column)
            metadata.tables[child].columns[column] = {"sdtype": "id"}
        else:
            metadata.relationships = [
                r
                for r in metadata.relationships
                if (r["child_table_name"], r["child_foreign_key"], r["parent_table_name"])
                != (child, column, parent)
            ]
        changed = True
    return changed


def add_link(metadata: Metadata, child: str, column: str, parent: str) -> None:
    """Link ``child.column`` to ``parent``'s key (replacing any link of that column)."""
    key = metadata.tables[parent].primary_key
    if key is None:
        raise ClinsynthError(
            f"Table '{parent}' has no key: pick its key first (Key of each table, above)."
        )
    metadata.relationships = [
        r
        for r in metadata.relationships
        if (r["child_table_name"], r["child_foreign_key"]) != (child, column)
    ]
    metadata.add_relationship(parent, child, key, column)
    metadata.tables[child].columns[column] = {"sdtype": "id"}


def set_key(metadata: Metadata, table: str, column: str | None) -> None:
    """Make ``column`` the key of ``table``; links to the old key follow the new one."""
    old = metadata.tables[table].primary_key
    if column is not None:
        metadata.tables[table].columns[column] = {"sdtype": "id"}
    metadata.set_primary_key(column, table_name=table)
    for rel in metadata.relationships:
        if rel["parent_table_name"] == table and rel["parent_primary_key"] == old:
            rel["parent_primary_key"] = column
    if column is None:
        metadata.relationships = [
            r for r in metadata.relationships if r["parent_primary_key"] is not None
        ]


def render(metadata: Metadata, data: dict[str, pd.DataFrame]) -> None:
    """The links table, the key of each table and the form to add a link."""
    shown = links_frame(metadata, data)
    st.markdown(
        "**Edit the links.** Tick *Keep* to use a link, untick it to drop it. *Values found*: "
        "the share of the column's values that are keys of the table it points to "
        "(the rest are orphans)."
    )
    edited = st.data_editor(
        shown,
        key=f"links_editor_{st.session_state['editor_version']}",
        hide_index=True,
        num_rows="fixed",
        disabled=[c for c in _COLUMNS if c != "Keep"],
        column_config={
            "Keep": st.column_config.CheckboxColumn("Keep", width=60),
            "Values found": st.column_config.NumberColumn("Values found", format="%.1f %%"),
            "Evidence": st.column_config.TextColumn("Evidence", width=360),
        },
        width="stretch",
    )
    try:
        if apply_links(edited, shown, metadata):
            _changed()
    except ClinsynthError as exc:
        st.error(str(exc))
    _keys(metadata, data)
    _add_form(metadata, data)


def _changed() -> None:
    _state.forget_after("metadata")
    st.session_state["editor_version"] += 1
    st.rerun()


def _keys(metadata: Metadata, data: dict[str, pd.DataFrame]) -> None:
    with st.expander("Key of each table"):
        for table in metadata.tables:
            options = [_NO_KEY, *metadata.tables[table].columns]
            current = metadata.tables[table].primary_key or _NO_KEY
            choice = st.selectbox(
                f"Key of {table}",
                options,
                index=options.index(current) if current in options else 0,
                key=f"table_key_{table}_{st.session_state['editor_version']}",
            )
            if choice != current:
                set_key(metadata, table, None if choice == _NO_KEY else choice)
                _changed()


def _add_form(metadata: Metadata, data: dict[str, pd.DataFrame]) -> None:
    with st.expander("Add a link that was not found"):
        left, middle, right = st.columns(3)
        child = left.selectbox("Table", list(data), key="add_link_child")
        column = middle.selectbox("Its column", list(data[child].columns), key="add_link_column")
        parents = [t for t in metadata.tables if metadata.tables[t].primary_key]
        parent = right.selectbox("Points to the key of", parents, key="add_link_parent")
        if not parent:
            st.caption("No table has a key yet: pick one under 'Key of each table'.")
            return
        key = metadata.tables[parent].primary_key
        share, orphans = evidence(data, child, column, parent, key)
        if share is None:
            st.caption(f"`{child}.{column}` has no value to check against `{parent}.{key}`.")
        else:
            st.caption(
                f"{share:.1%} of the values of `{child}.{column}` are keys of `{parent}` "
                f"(`{key}`); {orphans:,} orphans."
            )
        if st.button("Add this link", key="add_link_button"):
            try:
                add_link(metadata, child, column, parent)
            except ClinsynthError as exc:
                st.error(str(exc))
                return
            _changed()
