"""What detection leaves to the user: ambiguous links, unlinked tables, id-named codes."""

from __future__ import annotations

import pandas as pd

from clinsynth.metadata._metadata import Metadata

#: An id-named column that is neither a key nor linked, and repeats at most this many distinct
#: values, is a code (``GENDER_CONCEPT_ID``), not an identifier.
MAX_CODE_IDS = 50


def ids_to_codes(data: dict[str, pd.DataFrame], md: Metadata, linked: set) -> None:
    """Id-named columns that repeat a few values and link nowhere are codes, not identifiers."""
    for name, table in md.tables.items():
        if name not in data:
            continue
        for col, spec in table.columns.items():
            if spec["sdtype"] != "id" or col == table.primary_key or (name, col) in linked:
                continue
            if col not in data[name].columns:
                continue
            values = data[name][col].dropna()
            distinct = values.nunique()
            if 0 < distinct <= MAX_CODE_IDS and distinct < 0.5 * len(values):
                table.columns[col] = {"sdtype": "categorical"}


def ambiguity_problems(md: Metadata) -> list[str]:
    """One problem per ambiguous column of ``md.detection`` that no relationship resolves.

    The user resolves one by keeping the right link in ``relationships`` (or by deleting the
    entry from ``detection.ambiguous`` to leave the column unlinked).
    """
    detection = md.detection if isinstance(md.detection, dict) else {}
    items = detection.get("ambiguous")
    if not isinstance(items, list):
        return []
    linked = {
        (r.get("child_table_name"), r.get("child_foreign_key"))
        for r in md.relationships
        if isinstance(r, dict)
    }
    problems = []
    for item in items:
        if not isinstance(item, dict):
            continue
        child, column = item.get("child_table_name"), item.get("child_foreign_key")
        if (child, column) in linked or child not in md.tables:
            continue
        options = [
            f"'{o.get('parent_table_name')}.{o.get('parent_primary_key')}' "
            f"({float(o.get('inclusion', 0)):.0%} of its values)"
            for o in item.get("options", [])
            if isinstance(o, dict)
        ]
        problems.append(
            f"table '{child}', column '{column}' could point to {' or '.join(options)}: "
            "choose one. Add the right link to 'relationships' in the metadata JSON (or delete "
            "this entry from 'detection.ambiguous' to leave the column unlinked), then fit "
            "with that metadata (--metadata)."
        )
    return problems


def unlinked_warning(md: Metadata) -> str | None:
    """A loud warning when tables of a schema link to no other table, or None."""
    if len(md.tables) < 2:
        return None
    linked = {
        name
        for r in md.relationships
        if r.get("parent_table_name") != r.get("child_table_name")
        for name in (r.get("parent_table_name"), r.get("child_table_name"))
    }
    detection = md.detection if isinstance(md.detection, dict) else {}
    for item in detection.get("ambiguous") or []:  # validation asks about these
        if isinstance(item, dict):
            linked.add(item.get("child_table_name"))
            linked.update(o.get("parent_table_name") for o in item.get("options", []))
    alone = [t for t in md.tables if t not in linked]
    if not alone:
        return None
    if len(alone) == len(md.tables):
        return (
            f"NO RELATIONSHIP was found between the {len(md.tables)} tables "
            f"({', '.join(alone)}): no column holds (almost only) keys of another table. They "
            "will be synthesized as INDEPENDENT tables: no synthetic row will belong to a row "
            "of another table. Run `clinsynth detect` to see the candidates and their evidence, "
            "and declare the links in the metadata JSON ('relationships')."
        )
    return (
        f"Tables {alone} link to no other table: each will be synthesized on its own. Declare "
        "their links in the metadata JSON ('relationships') if they have any."
    )
