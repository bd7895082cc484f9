"""A candidate foreign key with its evidence, and the choice among candidates: the best per
column (ties ambiguous), then the links from the strongest down, leaving out any that would close
a cycle of tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinsynth.metadata._metadata import Metadata


#: Least inclusion for each kind of name match (see the docstring of `_links`).
MIN_INCLUSION = {"exact": 0.0, "stem": 0.5, "self": 0.9, "role": 0.9, "similar": 0.9}
MIN_INCLUSION["values"] = 0.95


_RANK = {"exact": 0, "stem": 1, "self": 1, "role": 2, "similar": 3, "values": 4}


#: Two candidates whose inclusion differs by at most this much tie.
TIE = 0.01


@dataclass
class LinkCandidate:
    """One possible foreign key with its evidence.

    ``status`` is ``"linked"``, ``"weaker"`` (another parent fits better), ``"ambiguous"``,
    ``"broken"`` (the name matches, the values do not), ``"cycle"`` (left out: it would close a
    cycle) or ``"not a key"`` (the parent column identifies the rows but is not the key, or is
    part of a composite key).
    """

    child: str
    column: str
    parent: str
    key: str
    match: str
    inclusion: float
    orphans: int
    rows: int
    coverage: float = 0.0
    status: str = "candidate"
    note: str = ""

    @property
    def rank(self) -> tuple[int, float]:
        return (_RANK.get(self.match, 9), -self.inclusion)

    @property
    def accepted(self) -> bool:
        threshold = MIN_INCLUSION.get(self.match, 1.1)
        return self.inclusion > 0 and self.inclusion >= threshold

    def to_dict(self) -> dict:
        """Counts and shares only (never a value: the metadata may travel with a model)."""
        out = {
            "child_table_name": self.child,
            "child_foreign_key": self.column,
            "parent_table_name": self.parent,
            "parent_primary_key": self.key,
            "match": self.match,
            "inclusion": round(self.inclusion, 4),
            "orphans": self.orphans,
            "rows": self.rows,
            "status": self.status,
        }
        if self.note:
            out["note"] = self.note
        return out

    def describe(self) -> str:
        """One line: ``visits.patient_id -> patients.patient_id: 100.0% of 1,640 rows ...``."""
        text = (
            f"{self.child}.{self.column} -> {self.parent}.{self.key}: {self.inclusion:.1%} of "
            f"{self.rows:,} rows found ({self.orphans:,} orphans; name match: {self.match})"
        )
        return text + (f"; {self.note}" if self.note else "")


def choose_links(
    by_column: dict[tuple[str, str], list[LinkCandidate]],
) -> tuple[list[LinkCandidate], list[dict]]:
    """The best accepted candidate per column; ties are ambiguous (nothing linked)."""
    chosen, ambiguous = [], []
    for (child, column), found in by_column.items():
        ok = sorted((c for c in found if c.status == "candidate"), key=lambda c: c.rank)
        if not ok:
            continue
        best, rivals = (
            ok[0],
            [
                c
                for c in ok[1:]
                if c.rank[0] == ok[0].rank[0] and ok[0].inclusion - c.inclusion <= TIE
            ],
        )
        if rivals and best.match == "values":
            # Keys by values alone: the parent whose keys the column covers (nearly all) wins
            # over one it covers in part (the rows of a counter that merely contains them).
            tied = [best, *rivals]
            wide = [c for c in tied if c.coverage >= 0.9]
            if len(wide) == 1 and all(c.coverage <= 0.7 for c in tied if c is not wide[0]):
                best, rivals = wide[0], []
        if rivals:
            for c in [best, *rivals]:
                c.status = "ambiguous"
            ambiguous.append(
                {
                    "child_table_name": child,
                    "child_foreign_key": column,
                    "options": [
                        {
                            "parent_table_name": c.parent,
                            "parent_primary_key": c.key,
                            "inclusion": round(c.inclusion, 4),
                        }
                        for c in [best, *rivals]
                    ],
                }
            )
            continue
        best.status = "linked"
        for c in ok:
            if c is not best:
                c.status = "weaker"
                c.note = (
                    f"'{best.parent}.{best.key}' fits better ({best.match}, {best.inclusion:.0%})"
                )
        chosen.append(best)
    return chosen, ambiguous


def add_without_cycles(chosen: list[LinkCandidate], md: Metadata) -> list[dict]:
    """Relationships from the strongest link down, leaving out any that closes a cycle."""
    graph: dict[str, set[str]] = {}
    relationships = []
    for cand in sorted(chosen, key=lambda c: c.rank):
        if cand.parent != cand.child and _reaches(graph, cand.child, cand.parent):
            cand.status = "cycle"
            cand.note = (
                f"left out: '{cand.parent}' already descends from '{cand.child}', so this link "
                "would close a cycle of tables; declare it by hand only after removing another"
            )
            continue
        if cand.parent != cand.child:
            graph.setdefault(cand.parent, set()).add(cand.child)
        relationships.append(
            {
                "parent_table_name": cand.parent,
                "parent_primary_key": md.tables[cand.parent].primary_key,
                "child_table_name": cand.child,
                "child_foreign_key": cand.column,
            }
        )
    return relationships


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False
