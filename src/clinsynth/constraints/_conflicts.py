"""Check a table's declared rules before any data is read: each rule on its own (its type, its
parameters, its columns) and pairs that contradict each other.

Contradictions found:

* implications that force different values for the same premise, directly or along a chain
  (``a = 1 -> b = 1``, ``b = 1 -> c = 0`` and ``a = 1 -> c = 1``);
* an implication against a skip pattern (``r = 1 -> cd496 missing`` while ``cd496`` is present
  exactly when ``r = 1``);
* orders in a cycle with a strict step (``a < b`` and ``b <= a``);
* a point mass off its column's grid.
"""

from __future__ import annotations

from typing import Any

from clinsynth.constraints._base import Constraint
from clinsynth.constraints._logic import Implication, SkipPattern, key
from clinsynth.constraints._registry import constraint_from_dict
from clinsynth.constraints._rules import DateOrder, Inequality
from clinsynth.constraints._table import TableLike
from clinsynth.constraints._values import Grid, PointMass
from clinsynth.errors import MetadataError


def rule_problems(table: TableLike, where: str = "") -> list[str]:
    """Every problem of the table's ``constraints``: unreadable rules, unknown columns, and
    rules that contradict each other (both named)."""
    rules: list[Constraint] = []
    problems: list[str] = []
    for i, item in enumerate(table.constraints):
        try:
            rule = constraint_from_dict(item)
        except MetadataError as exc:
            problems.append(f"{where}rule {i + 1}: {exc}")
            continue
        found = rule.check_metadata(table)
        problems.extend(f"{where}{p}" for p in found)
        if not found:
            rules.append(rule)
    problems.extend(f"{where}{p}" for p in contradictions(rules))
    return problems


def _clash(a: Constraint, b: Constraint, why: str) -> str:
    return (
        f"rules '{a.describe()}' and '{b.describe()}' contradict each other ({why}); "
        "remove one of them."
    )


def contradictions(rules: list[Constraint]) -> list[str]:
    out = []
    implications = [r for r in rules if isinstance(r, Implication)]
    out.extend(_implication_clashes(implications))
    for skip in (r for r in rules if isinstance(r, SkipPattern)):
        for imp in implications:
            why = _skip_clash(skip, imp)
            if why:
                out.append(_clash(skip, imp, why))
    out.extend(_order_cycles([r for r in rules if isinstance(r, Inequality | DateOrder)]))
    grids = {r.column: r for r in rules if isinstance(r, Grid)}
    for mass in (r for r in rules if isinstance(r, PointMass)):
        grid = grids.get(mass.column)
        if grid is not None and isinstance(mass.value, int | float):
            k = (mass.value - grid.offset) / grid.step
            if abs(k - round(k)) > 1e-6 * max(1.0, abs(k)):
                out.append(_clash(grid, mass, f"{mass.value} is not on the grid"))
    return out


def _keys(values: list | None) -> set[str]:
    return {key(v) for v in values or []}


def _implication_clashes(rules: list[Implication]) -> list[str]:
    """Premises whose consequences, followed along single-valued implications, disagree."""
    out: list[str] = []
    seen: set[frozenset] = set()
    for start in rules:
        # What the premise forces: column -> (allowed keys, the rule that said so).
        forced: dict[str, tuple[set[str], Implication]] = {}
        premise = (start.when.column, _keys(start.when.values))
        # Every rule whose premise holds when the start's does.
        frontier = [
            r for r in rules if r.when.column == premise[0] and premise[1] <= _keys(r.when.values)
        ]
        while frontier:
            rule = frontier.pop()
            column, allowed = rule.then.column, _keys(rule.then.values)
            if column in forced:
                known, by = forced[column]
                if not known & allowed:
                    pair = frozenset({id(by), id(rule)})
                    if pair not in seen:
                        seen.add(pair)
                        out.append(_clash(by, rule, f"both apply when {start.when.describe()}"))
                    continue
                if allowed >= known:
                    continue
                allowed = known & allowed
            forced[column] = (allowed, rule)
            if column == premise[0] and not allowed & premise[1]:
                out.append(_clash(start, rule, "the premise rules itself out"))
                continue
            for nxt in rules:
                if nxt.when.column == column and allowed <= _keys(nxt.when.values):
                    if nxt is not rule and nxt not in frontier:
                        frontier.append(nxt)
    return out


def _skip_clash(skip: SkipPattern, imp: Implication) -> str | None:
    cond = skip.condition
    if imp.when.column != cond.column or imp.then.column != skip.column:
        return None
    when = _keys(imp.when.values)
    if cond.values is not None:
        true, false = when <= _keys(cond.values), not when & _keys(cond.values)
    elif cond.not_values is not None:
        true, false = not when & _keys(cond.not_values), when <= _keys(cond.not_values)
    else:
        missing = key(None)
        true, false = missing not in when, when == {missing}
    then_missing = _keys(imp.then.values) == {key(None)}
    if true and skip.exact and then_missing:
        return f"{skip.column} must be present when {imp.when.describe()}"
    if false and key(None) not in _keys(imp.then.values):
        return f"{skip.column} must be missing when {imp.when.describe()}"
    return None


def _order_cycles(rules: list[Any]) -> list[str]:
    edges: dict[str, list[tuple[str, bool, Constraint]]] = {}
    for rule in rules:
        chain = [rule.low, rule.high] if isinstance(rule, Inequality) else rule.columns
        for a, b in zip(chain, chain[1:], strict=False):
            edges.setdefault(a, []).append((b, bool(rule.strict), rule))
    out, reported = [], set()
    for start in sorted(edges):
        # Depth-first search for a path back to ``start`` that has a strict step.
        stack = [(start, False, [])]
        while stack:
            node, strict, path = stack.pop()
            for nxt, step_strict, rule in edges.get(node, []):
                if rule in path:
                    continue
                now = strict or step_strict
                if nxt == start and now:
                    names = frozenset(r.describe() for r in (*path, rule))
                    if names not in reported:
                        reported.add(names)
                        first, *rest = [*path, rule]
                        other = rest[-1] if rest else first
                        out.append(
                            _clash(first, other, "together they order a column before itself")
                        )
                elif len(path) < 8:
                    stack.append((nxt, now, [*path, rule]))
    return out
