"""Discovery over levels: functional dependencies, skip patterns and implications.

Every categorical, ordinal or boolean column is a *value node* (its levels, missing as one more
level); every column with some missing values is also a *presence node* (present / missing).
A dependency ``a -> b`` between nodes holds when every level of ``a`` comes with one level of
``b``. Dependencies are searched on a sample of rows (all pairs at once: sort by ``a``, compare
neighbours), confirmed on every row, and kept when they are unlikely to hold by chance (see
:func:`fd_evidence`). Nodes that determine each other form a class (``r`` and ``cd496``'s
presence); between classes only a transitive reduction is kept (``a -> b -> c``, not ``a -> c``).
Rules come from the kept dependencies: value -> value is a :class:`FunctionalDependency`, value or
presence -> presence a :class:`SkipPattern`. Then single implications (``hospdead = 1 -> death =
1``) between pairs no dependency links.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint
from clinsynth.constraints._logic import FunctionalDependency, Implication, SkipPattern, plain

_CATEGORICAL = ("categorical", "ordinal", "boolean")


@dataclass
class Node:
    """A column's levels (``presence=False``) or its present/missing pattern."""

    column: str
    presence: bool
    codes: np.ndarray  # level code of every row
    labels: list  # plain value of each code (None: missing); presence: [False, True]
    counts: np.ndarray
    position: int  # column order, for stable choices

    @property
    def k(self) -> int:
        return len(self.labels)


def build_nodes(data: pd.DataFrame, table, columns: list[str]) -> list[Node]:  # noqa: ANN001
    nodes = []
    for position, col in enumerate(columns):
        series = data[col]
        missing = series.isna().to_numpy()
        if table.columns[col]["sdtype"] in _CATEGORICAL:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
            labels = [plain(u) for u in uniques]
            if missing.any():
                codes = np.where(codes < 0, len(labels), codes)
                labels.append(None)
            codes = codes.astype(np.int64)
            if len(labels) >= 2:
                nodes.append(
                    Node(
                        col,
                        False,
                        codes,
                        labels,
                        np.bincount(codes, minlength=len(labels)),
                        position,
                    )
                )
        if 0 < missing.sum() < len(missing):
            codes = (~missing).astype(np.int64)
            nodes.append(
                Node(col, True, codes, [False, True], np.bincount(codes, minlength=2), position)
            )
    return nodes


def fd_evidence(a: Node, b: Node, rows: np.ndarray | None = None) -> float:
    """``-log10`` of the chance that ``a -> b`` holds if ``b`` were drawn independently of ``a``:
    each level of ``a`` seen ``n`` times keeps one ``b`` level with chance ``sum_b p_b ** n``."""
    ca = a.codes if rows is None else a.codes[rows]
    cb = b.codes if rows is None else b.codes[rows]
    na = np.bincount(ca, minlength=a.k)
    na = na[na > 1].astype(np.float64)
    p = np.bincount(cb, minlength=b.k) / max(len(cb), 1)
    logp = np.log10(p[p > 0])
    if len(na) == 0 or len(logp) == 0:
        return 0.0
    total = 0.0
    step = max(1, 2_000_000 // len(logp))  # bounded memory for many-level columns
    for start in range(0, len(na), step):
        m = na[start : start + step, None] * logp[None, :]
        top = m.max(axis=1)
        total -= float(np.sum(top + np.log10(np.sum(10.0 ** (m - top[:, None]), axis=1))))
    return total


def determines(a: Node, b: Node) -> bool:
    """Whether every level of ``a`` comes with one level of ``b`` on every row."""
    first = np.full(a.k, -1, dtype=np.int64)
    first[a.codes[::-1]] = b.codes[::-1]  # the last write wins: each level's first row
    return bool(np.array_equal(first[a.codes], b.codes))


def _sample_dependencies(nodes: list[Node], sample: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``nodes[i] -> nodes[j]`` on the sampled rows."""
    codes = np.stack([n.codes[sample] for n in nodes], axis=1)
    pairs = []
    for i in range(len(nodes)):
        order = np.argsort(codes[:, i], kind="stable")
        sorted_codes = codes[order]
        same = sorted_codes[1:, i] == sorted_codes[:-1, i]
        agree = (sorted_codes[1:] == sorted_codes[:-1]) | ~same[:, None]
        for j in np.flatnonzero(agree.all(axis=0)):
            if nodes[j].column != nodes[i].column:
                pairs.append((i, int(j)))
    return pairs


def _supported(a: Node, b: Node) -> bool:
    """Dependencies a rule can express: value -> value, anything -> another column's presence."""
    return b.presence and a.column != b.column or (not a.presence and not b.presence)


class _Graph:
    """Confirmed dependencies between nodes, their classes and the kept (reduced) edges."""

    def __init__(self, nodes: list[Node], edges: set[tuple[int, int]]) -> None:
        self.nodes, self.edges = nodes, edges
        parent = list(range(len(nodes)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, j in edges:
            if (j, i) in edges:
                parent[root(i)] = root(j)
        groups: dict[int, list[int]] = {}
        for i in range(len(nodes)):
            groups.setdefault(root(i), []).append(i)
        # A class's representative: a value node first; among presence nodes, one whose column
        # also has a value node (its levels then set the class through the column itself).
        valued = {nd.column for nd in nodes if not nd.presence}
        self.classes = [
            sorted(
                members,
                key=lambda m: (nodes[m].presence, nodes[m].column not in valued, nodes[m].position),
            )
            for members in groups.values()
        ]
        self.class_of = {m: c for c, members in enumerate(self.classes) for m in members}
        self.reach = self._closure()

    def rep(self, c: int) -> int:
        return self.classes[c][0]

    def _closure(self) -> list[set[int]]:
        succ: list[set[int]] = [set() for _ in self.classes]
        for i, j in self.edges:
            if self.class_of[i] != self.class_of[j]:
                succ[self.class_of[i]].add(self.class_of[j])
        reach = []
        for c in range(len(self.classes)):
            seen, stack = set(), list(succ[c])
            while stack:
                d = stack.pop()
                if d not in seen:
                    seen.add(d)
                    stack.extend(succ[d])
            reach.append(seen)
        self.succ = succ
        return reach

    def linked(self, i: int, j: int) -> bool:
        """Whether ``nodes[i]`` determines ``nodes[j]`` (directly or through others)."""
        ci, cj = self.class_of[i], self.class_of[j]
        return ci == cj or cj in self.reach[ci]

    def kept_edges(self) -> list[tuple[int, int]]:
        """Inside each class: its representative to every member. Between classes: the
        supported edges that no path of two or more supported edges implies."""
        out = [(c[0], m) for c in self.classes for m in c[1:]]
        supported = {
            (u, v)
            for u in range(len(self.classes))
            for v in self.succ[u]
            if _supported(self.nodes[self.rep(u)], self.nodes[self.rep(v)])
        }
        succ: dict[int, set[int]] = {}
        for u, v in supported:
            succ.setdefault(u, set()).add(v)
        for u, v in sorted(supported):
            if self._own_presence(u, v):
                continue  # a column's levels fix its own presence, which the class rules carry
            stack = [w for w in succ.get(u, ()) if w != v]
            seen: set[int] = set()
            while stack:
                w = stack.pop()
                if w == v:
                    break
                if w not in seen:
                    seen.add(w)
                    stack.extend(succ.get(w, ()))
            else:
                out.append((self.rep(u), self.rep(v)))
        return out

    def _own_presence(self, u: int, v: int) -> bool:
        """Whether class ``u`` holds a column's levels and class ``v`` that column's presence."""
        columns = {self.nodes[m].column for m in self.classes[u] if not self.nodes[m].presence}
        return any(
            self.nodes[m].presence and self.nodes[m].column in columns for m in self.classes[v]
        )


def _present_levels(a: Node, b: Node, floor: int) -> dict | None:
    """How ``a``'s levels say whether ``b``'s column is present: ``{"values": [...]}`` or
    ``{"not_values": [...]}`` naming only levels held by at least ``floor`` rows, or None."""
    first = np.full(a.k, -1, dtype=np.int64)
    first[a.codes[::-1]] = b.codes[::-1]
    seen = a.counts > 0
    present = [a.labels[i] for i in np.flatnonzero(seen & (first == 1))]
    absent = [a.labels[i] for i in np.flatnonzero(seen & (first == 0))]
    rare = {a.labels[i] for i in np.flatnonzero(seen & (a.counts < floor))}
    options = []
    if not rare & set(present):
        options.append({"values": present})
    if not rare & set(absent):
        options.append({"not_values": absent})
    if not options:
        return None
    return min(options, key=lambda o: len(next(iter(o.values()))))


def _rule_for(a: Node, b: Node, n: int, floor: int) -> Constraint | None:
    informative = {"rows": n, "informative": int(n - np.count_nonzero(a.counts))}
    rule: Constraint | None = None
    if not a.presence and not b.presence:
        rule = FunctionalDependency(a.column, b.column)
    elif b.presence and a.column != b.column:
        if a.presence:  # one column's presence sets another's
            first = np.full(2, -1, dtype=np.int64)
            first[a.codes[::-1]] = b.codes[::-1]
            same = bool(first[1] == 1)
            rule = SkipPattern(b.column, a.column, values=None if same else [None])
        else:
            levels = _present_levels(a, b, floor)
            if levels is None:
                return None
            rule = SkipPattern(b.column, a.column, **levels)
    if rule is not None:
        rule.support = informative
    return rule


def dependency_rules(
    nodes: list[Node],
    sample: np.ndarray,
    *,
    min_informative: int,
    min_evidence: float,
    min_patients: int,
) -> tuple[list[Constraint], _Graph]:
    """Functional dependencies and skip patterns, and the graph that implications consult."""
    n = len(nodes[0].codes) if nodes else 0
    edges: set[tuple[int, int]] = set()
    for i, j in _sample_dependencies(nodes, sample) if nodes else []:
        a, b = nodes[i], nodes[j]
        if np.count_nonzero(b.counts) < 2 or np.count_nonzero(a.counts) < 2:
            continue
        if n - np.count_nonzero(a.counts) < min_informative or not determines(a, b):
            continue
        if fd_evidence(a, b) >= min_evidence:
            edges.add((i, j))
    by_column = {}
    for i, node in enumerate(nodes):
        by_column.setdefault(node.column, []).append(i)
    for members in by_column.values():  # a column's levels fix its own presence
        if len(members) == 2:
            edges.add((members[0], members[1]))
    graph = _Graph(nodes, edges)
    rules = []
    for i, j in graph.kept_edges():
        a, b = nodes[i], nodes[j]
        if a.column == b.column or not _supported(a, b) or not determines(a, b):
            continue
        rule = _rule_for(a, b, n, min_patients)
        if rule is not None:
            rules.append(rule)
    return rules, graph


def implication_rules(
    nodes: list[Node],
    sample: np.ndarray,
    graph: _Graph,
    *,
    min_informative: int,
    min_evidence: float,
    categorical: set[str],
) -> list[Constraint]:
    """``a = x`` implies ``b = y`` where no dependency links ``a`` to ``b``.

    Premises: a level held by at least ``min_informative`` rows (for a presence node, being
    missing). Consequences: one level of ``b`` (for a presence node: missing; a categorical
    column's missing level is in its value node already).
    """
    if not nodes:
        return []
    n = len(nodes[0].codes)
    codes = np.stack([nd.codes[sample] for nd in nodes], axis=1)
    presence = {nd.column: k for k, nd in enumerate(nodes) if nd.presence}
    found: dict[frozenset, tuple] = {}
    for i, a in enumerate(nodes):
        if (a.presence and a.column in categorical) or a.counts.max() < min_informative:
            continue
        order = np.argsort(codes[:, i], kind="stable")
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:, i] != sorted_codes[:-1, i]])
        for s, start in enumerate(starts):
            level = int(sorted_codes[start, i])
            if a.counts[level] < min_informative or (a.presence and level == 1):
                continue
            seg_end = starts[s + 1] if s + 1 < len(starts) else len(sorted_codes)
            within = sorted_codes[start:seg_end]
            same = (within == within[0]).all(axis=0)
            for j in np.flatnonzero(same):
                b, target = nodes[j], int(within[0, j])
                if b.column == a.column or (
                    b.presence and (b.column in categorical or target == 1)
                ):
                    continue
                if _redundant(graph, presence, i, level, int(j), target):
                    continue
                if _presence_of(b, target, presence, graph) not in (None, True):
                    continue  # "missing" said once per co-missing group, on its representative
                rule = _implication(a, level, b, target, n, min_evidence)
                if rule is not None:
                    evidence, imp = rule
                    cell = _cell(a, level, b, target)
                    if cell not in found or found[cell][0] < evidence:
                        found[cell] = (evidence, imp, i, level, int(j), target)
    kept = _without_entailed(list(found.values()), nodes, graph)
    return _merged(_without_chains(kept))


def _presence_of(b: Node, target: int, presence: dict[str, int], graph: _Graph) -> bool | None:
    """For a "missing" consequence: whether ``b``'s presence node represents its class (None
    when the consequence is not about being missing)."""
    if b.presence:
        node = presence[b.column]
    elif b.labels[target] is None and b.column in presence:
        node = presence[b.column]
    else:
        return None
    rep = graph.nodes[graph.rep(graph.class_of[node])]
    return not rep.presence or rep.column == b.column


def _merged(rules: list[Implication]) -> list[Implication]:
    """One rule per consequence and premise column: ``code in [a, b, c] -> d = 1``."""
    groups: dict[tuple, list[Implication]] = {}
    for r in rules:
        key_ = (r.when.column, r.then.column, tuple(map(str, r.then.values or [])))
        groups.setdefault(key_, []).append(r)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        first = members[0]
        values = [v for m in members for v in m.when.values or []]
        rule = Implication(
            first.when.column, values, first.then.column, list(first.then.values or [])
        )
        rule.support = {
            "rows": first.support["rows"],
            "informative": sum(m.support["informative"] for m in members),
        }
        out.append(rule)
    return out


def _redundant(
    graph: _Graph, presence: dict[str, int], i: int, level: int, j: int, target: int
) -> bool:
    """Whether a dependency already says it: ``a`` determines ``b`` (so the implication is part
    of the dependency), or ``b`` determines ``a`` (so only ``b``'s level mapping to ``a``'s can
    come with it). A missing level stands for its column's presence node too."""
    a, b = graph.nodes[i], graph.nodes[j]
    sources = [i]
    if not a.presence and a.labels[level] is None and a.column in presence:
        sources.append(presence[a.column])
    targets = [j]
    if not b.presence and b.labels[target] is None and b.column in presence:
        targets.append(presence[b.column])
    return any(graph.linked(s, t) or graph.linked(t, s) for s in sources for t in targets)


def _without_entailed(found: list[tuple], nodes: list[Node], graph: _Graph) -> list[Implication]:
    """Drop ``a = x -> c = z`` when a kept ``m = y -> c = z`` covers it (``a`` determines ``m``,
    is not determined by it, and every row with ``a = x`` has ``m = y``), or when the same
    premise gives ``m = y`` and ``m`` fixes ``c = z`` through a dependency."""
    by_target: dict[tuple[int, int], list[tuple]] = {}
    by_premise: dict[tuple[int, int], list[tuple]] = {}
    for entry in found:
        _, _, i, level, j, target = entry
        by_target.setdefault((j, target), []).append(entry)
        by_premise.setdefault((i, level), []).append(entry)
    out = []
    for _, rule, i, level, j, target in found:
        rows = nodes[i].codes == level
        wider = any(
            other is not rule
            and nodes[i2].column != nodes[i].column
            and graph.class_of[i] != graph.class_of[i2]
            and graph.linked(i, i2)
            and np.all(nodes[i2].codes[rows] == level2)
            for _, other, i2, level2, _, _ in by_target[(j, target)]
        )
        through = any(
            other is not rule
            and j2 != j
            and graph.linked(j2, j)
            and (graph.class_of[j2] != graph.class_of[j] or graph.rep(graph.class_of[j]) != j)
            and np.all(nodes[j].codes[nodes[j2].codes == target2] == target)
            for _, other, _, _, j2, target2 in by_premise[(i, level)]
        )
        if not (wider or through):
            out.append(rule)
    return out


def _implication(
    a: Node, level: int, b: Node, target: int, n: int, min_evidence: float
) -> tuple[float, Implication] | None:
    rows = a.codes == level
    if np.count_nonzero(b.counts) < 2 or not np.all(b.codes[rows] == target):
        return None
    share = b.counts[target] / n
    if share >= 1.0:
        return None
    evidence = -float(a.counts[level]) * float(np.log10(share))
    if evidence < min_evidence:
        return None
    when = [None] if a.presence else [a.labels[level]]
    then = [None] if b.presence else [b.labels[target]]
    rule = Implication(a.column, when, b.column, then)
    rule.support = {"rows": n, "informative": int(a.counts[level])}
    return evidence, rule


def _cell(a: Node, level: int, b: Node, target: int) -> frozenset:
    """The forbidden combination an implication between two two-level columns stands for, so
    ``x = 1 -> y = 1`` and ``y = 0 -> x = 0`` count once."""
    if a.k == 2 and b.k == 2:
        return frozenset({(a.column, a.presence, level), (b.column, b.presence, 1 - target)})
    return frozenset(
        {("when", a.column, a.presence, level), ("then", b.column, b.presence, target)}
    )


def _without_chains(rules: list[Implication]) -> list[Implication]:
    """Drop ``a -> c`` when ``a -> b`` and ``b -> c`` are kept (same values)."""
    by_premise: dict[tuple, list[Implication]] = {}
    for r in rules:
        by_premise.setdefault((r.when.column, tuple(map(str, r.when.values or []))), []).append(r)
    out = []
    for r in rules:
        implied = False
        for mid in by_premise.get((r.when.column, tuple(map(str, r.when.values or []))), []):
            nxt = (mid.then.column, tuple(map(str, mid.then.values or [])))
            for last in by_premise.get(nxt, []):
                if last.then.column == r.then.column and last.then.values == r.then.values:
                    implied = True
        if not implied:
            out.append(r)
    return out
