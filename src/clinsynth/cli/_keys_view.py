"""How `clinsynth detect` shows the keys and links it found, with their evidence."""

from __future__ import annotations

from typing import Any

from rich.console import Console

#: Colour of each link status in the table.
_STYLE = {
    "linked": "green",
    "ambiguous": "bold yellow",
    "broken": "red",
    "cycle": "red",
    "not a key": "yellow",
    "weaker": "dim",
}


def key_line(name: str, evidence: dict) -> str:
    """How the key of one table was found, in words."""
    key, how = evidence.get("primary_key"), evidence.get("how")
    if how == "named":
        text = f"key '{key}' (unique, never empty, named like a key)"
    elif how == "declared":
        text = f"key '{key}' (declared by the database's PRIMARY KEY constraint)"
    elif how == "artefact":
        text = (
            f"key '{key}' [yellow](an export artefact: row labels or numbers; no other column "
            "identifies the rows)[/yellow]"
        )
    else:
        text = "[yellow]no single-column key[/yellow]"
    composite = evidence.get("composite_key")
    if composite:
        text += f"; the rows are identified by ({', '.join(composite)}) together"
    artefacts = [a for a in evidence.get("artefacts", []) if a.get("column") != key]
    if artefacts:
        shown = ", ".join(f"'{a['column']}' ({a['kind']})" for a in artefacts)
        text += f"; [yellow]export artefacts flagged, not learned: {shown}[/yellow]"
    for item in evidence.get("not_unique", []):
        text += (
            f"; [red]'{item['column']}' is named like the key but repeats "
            f"{item['repeats']:,} values and misses {item['missing']:,}[/red]"
        )
    return f"{name}: {text}"


def print_keys(console: Console, md: Any) -> None:
    """The keys, the link candidates with their evidence, and what the user must decide."""
    detection = md.detection or {}
    tables = detection.get("tables", {})
    if len(md.tables) > 1 or any(t.get("how") != "named" for t in tables.values()):
        console.print("[bold]Keys[/bold]")
        for name, evidence in tables.items():
            console.print("  " + key_line(name, evidence), soft_wrap=True)
    links = [c for c in detection.get("links", []) if c.get("status") != "weaker"]
    if links:
        console.print(
            "[bold]Links found from the data[/bold] (child column -> parent key: inclusion = "
            "share of the child's rows whose value is a parent key; the rest are orphans)"
        )
        for c in links:
            style = _STYLE.get(c["status"], "")
            status = f"[{style}]{c['status']:>9}[/{style}]" if style else f"{c['status']:>9}"
            line = (
                f"  {status}  {c['child_table_name']}.{c['child_foreign_key']} -> "
                f"{c['parent_table_name']}.{c['parent_primary_key']}: {c['inclusion']:.1%} "
                f"({c['orphans']:,} orphan rows of {c['rows']:,}; name match: {c['match']})"
            )
            if c.get("note") and c["status"] != "linked":
                line += f". {c['note'][:1].upper()}{c['note'][1:]}."
            console.print(line, soft_wrap=True)
    for item in detection.get("ambiguous", []):
        options = " or ".join(
            f"{o['parent_table_name']}.{o['parent_primary_key']} ({o['inclusion']:.0%})"
            for o in item["options"]
        )
        text = (
            f"[bold yellow]Choose: {item['child_table_name']}.{item['child_foreign_key']} could "
            f"point to {options}. Keep the right link in 'relationships' of the JSON (fitting "
            "refuses until then).[/bold yellow]"
        )
        console.print(text, soft_wrap=True)
