"""The metadata's own consistency, every problem collected: each table's columns, keys, column
groups and sequence words, and the relationships between tables (keys that exist, no cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clinsynth.metadata._sdtypes import NUMERICAL_REPRESENTATIONS, STATISTICAL, UNKNOWN

if TYPE_CHECKING:
    from clinsynth.metadata._metadata import Metadata
    from clinsynth.metadata._table import TableMetadata


def table_problems(name: str, table: TableMetadata, multi: bool) -> list[str]:
    """Problems of one table: its columns' sdtypes and properties, primary key, sequence words
    and column groups."""
    where = f"table '{name}', " if multi else ""
    problems = []
    for col, spec in table.columns.items():
        sdtype = spec.get("sdtype")
        at = f"{where}column '{col}'"
        markers = spec.get("missing_values")
        if markers is not None and (
            not isinstance(markers, list)
            or not all(
                isinstance(m, str | int | float) and not isinstance(m, bool) for m in markers
            )
        ):
            problems.append(
                f"{at}: 'missing_values' must be a list of the texts or numbers that mean "
                f"missing, e.g. ['.', 'NA', -99]. Got {markers!r}."
            )
        if sdtype == UNKNOWN:
            problems.append(
                f"{at}: its type could not be detected (the column is empty). Drop the column, "
                "or declare its sdtype to keep it as an empty column."
            )
        elif not isinstance(sdtype, str):
            problems.append(f"{at}: sdtype must be a string. Got {sdtype!r}.")
        elif sdtype == "numerical":
            rep = spec.get("computer_representation", "Float")
            if rep not in NUMERICAL_REPRESENTATIONS:
                problems.append(
                    f"{at}: computer_representation {rep!r} is not one of "
                    f"{', '.join(NUMERICAL_REPRESENTATIONS)}."
                )
        elif sdtype == "ordinal":
            order = spec.get("order")
            if order is not None and (
                not isinstance(order, list) or len(set(map(str, order))) != len(order)
            ):
                problems.append(f"{at}: 'order' must be a list of distinct levels. Got {order!r}.")
        elif sdtype == "datetime":
            fmt = spec.get("datetime_format")
            if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
                problems.append(
                    f"{at}: datetime_format must be a strftime format such as '%Y-%m-%d'. "
                    f"Got {fmt!r}."
                )
    pk = table.primary_key
    if pk is not None:
        if pk not in table.columns:
            problems.append(f"{where}primary key '{pk}' is not a column of the table.")
        elif (
            table.columns[pk]["sdtype"] in STATISTICAL
            and table.columns[pk]["sdtype"] != "numerical"
        ):
            problems.append(
                f"{where}primary key '{pk}' has sdtype '{table.columns[pk]['sdtype']}'; "
                "declare it as 'id' (or a PII type such as 'mrn')."
            )
    problems += _sequence_problems(where, table)
    seen: dict[str, str] = {}
    for group, cols in table.column_groups.items():
        for col in cols:
            if col not in table.columns:
                problems.append(f"{where}column group '{group}' names '{col}', not a column.")
            elif col in seen:
                problems.append(
                    f"{where}column '{col}' is in two groups ('{seen[col]}' and '{group}')."
                )
            seen[col] = group
    return problems


def _sequence_problems(where: str, table: TableMetadata) -> list[str]:
    """The sequence key names a column; the sequence index a number or date column."""
    problems = []
    key, index = table.sequence_key, table.sequence_index
    for word, column in (("sequence_key", key), ("sequence_index", index)):
        if column is not None and (not isinstance(column, str) or column not in table.columns):
            problems.append(f"{where}{word} {column!r} is not a column of the table.")
    if isinstance(index, str) and index in table.columns:
        sdtype = table.columns[index]["sdtype"]
        if sdtype not in ("numerical", "datetime"):
            problems.append(
                f"{where}sequence_index '{index}' has sdtype '{sdtype}'; it must be numerical "
                "or datetime (the time or order of each event)."
            )
    if index is not None and key is None:
        problems.append(f"{where}sequence_index '{index}' needs a sequence_key (the patient).")
    if key is not None and key == index:
        problems.append(f"{where}sequence_key and sequence_index are the same column '{key}'.")
    return problems


def relationship_problems(md: Metadata) -> list[str]:
    problems = []
    keys = ("parent_table_name", "parent_primary_key", "child_table_name", "child_foreign_key")
    for i, rel in enumerate(md.relationships):
        if not all(k in rel for k in keys):
            problems.append(f"relationship {i + 1} lacks one of {', '.join(keys)}: {rel}.")
            continue
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        if parent not in md.tables:
            problems.append(
                f"relationship {i + 1}: parent table '{parent}' is not in the metadata."
            )
        elif md.tables[parent].primary_key != rel["parent_primary_key"]:
            problems.append(
                f"relationship {i + 1}: '{rel['parent_primary_key']}' is not the primary key of "
                f"'{parent}' (that is {md.tables[parent].primary_key!r})."
            )
        if child not in md.tables:
            problems.append(f"relationship {i + 1}: child table '{child}' is not in the metadata.")
        elif rel["child_foreign_key"] not in md.tables[child].columns:
            problems.append(
                f"relationship {i + 1}: foreign key '{rel['child_foreign_key']}' is not a column "
                f"of '{child}'."
            )
    # Cycles make a hierarchical synthesis order impossible.
    graph: dict[str, set[str]] = {}
    for rel in md.relationships:
        if rel.get("parent_table_name") != rel.get("child_table_name"):
            graph.setdefault(rel.get("parent_table_name"), set()).add(rel.get("child_table_name"))
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(
            f"the relationships form a cycle ({' -> '.join(cycle)}); remove one of them."
        )
    return problems


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None
