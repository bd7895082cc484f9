"""The knowledge graph's schema and its checks: the node and edge types and their fields, the
population settings, the orderings between labs and the structure (no cycle of labs), every
problem collected and reported at once, naming the node or edge and the fix."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx

from clinsynth.errors import MetadataError

NODE_TYPES = ("variant", "exposure", "disease", "lab", "medication")


EDGE_TYPES = ("risk", "shift", "defines", "slope", "indicates")


INHERITANCE = ("additive", "dominant", "recessive")


FORMULAS = ("ckd_epi_2021",)


#: Column names the simulator writes itself; node ids may not take them.
RESERVED = ("patient_id", "age", "sex", "ancestry")


DEFAULT_POPULATION: dict[str, Any] = {
    "age": {"min": 18, "max": 90, "mean": 48, "sd": 18},
    "reference_age": 50,
    "female_share": 0.51,
    "ancestry": {"EUR": 0.60, "AFR": 0.13, "AMR": 0.12, "EAS": 0.07, "SAS": 0.08},
}


_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


TOP_KEYS = ("name", "version", "description", "population", "nodes", "edges", "orderings")


Check = Callable[[Any], bool]


def _num(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


_KINDS: dict[str, tuple[Check, str]] = {
    "number": (_num, "a finite number"),
    "positive": (lambda x: _num(x) and x > 0, "a number > 0"),
    "nonneg": (lambda x: _num(x) and x >= 0, "a number >= 0"),
    "prob": (lambda x: _num(x) and 0 <= x <= 1, "a probability in [0, 1]"),
    "prob_open": (lambda x: _num(x) and 0 < x < 1, "a probability strictly between 0 and 1"),
    "text": (lambda x: isinstance(x, str), "a string"),
    "decimals": (
        lambda x: isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 6,
        "an int from 0 to 6",
    ),
    "inheritance": (lambda x: x in INHERITANCE, f"one of {', '.join(INHERITANCE)}"),
    "formula": (lambda x: x in FORMULAS, f"one of {', '.join(FORMULAS)}"),
    "direction": (lambda x: x in ("above", "below"), "'above' or 'below'"),
}


# field -> (kind, default); a default of ... means required. "frequency" is checked apart.
_NODE_FIELDS: dict[str, dict[str, tuple[str, Any]]] = {
    "variant": {
        "frequency": ("frequency", ...),
        "inheritance": ("inheritance", "additive"),
        "gene": ("text", None),
        "rsid": ("text", None),
        "risk_allele": ("text", None),
    },
    "exposure": {
        "prevalence": ("prob_open", ...),
        "age_odds_ratio": ("positive", 1.0),
        "male_odds_ratio": ("positive", 1.0),
    },
    "disease": {
        "prevalence": ("prob_open", ...),
        "age_odds_ratio": ("positive", 1.0),
        "male_odds_ratio": ("positive", 1.0),
    },
    "lab": {
        "mean": ("number", ...),
        "sd": ("positive", ...),
        "noise_sd": ("nonneg", 0.0),
        "unit": ("text", ""),
        "min": ("number", -math.inf),
        "max": ("number", math.inf),
        "decimals": ("decimals", 1),
        "male_shift": ("number", 0.0),
        "age_shift": ("number", 0.0),
        "formula": ("formula", None),
        "input": ("text", None),
    },
    "medication": {"drug_class": ("text", None)},
}


_COMMON_FIELDS = ("id", "type", "label", "ref", "notes")


# edge type -> (source types, target types, fields)
_EDGE_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, Any]]]] = {
    "risk": (("variant", "exposure", "disease"), ("disease",), {"odds_ratio": ("positive", ...)}),
    "shift": (
        ("variant", "exposure", "disease"),
        ("lab",),
        {"shift": ("number", ...), "sd": ("nonneg", 0.0)},
    ),
    "defines": (
        ("disease",),
        ("lab",),
        {
            "threshold": ("number", ...),
            "direction": ("direction", "above"),
            "shift": ("number", 0.0),
            "sd": ("nonneg", 0.0),
        },
    ),
    "slope": (("lab",), ("lab",), {"slope": ("number", ...)}),
    "indicates": (
        ("disease", "lab"),
        ("medication",),
        {
            "probability": ("prob", ...),
            "threshold": ("number", None),
            "direction": ("direction", "above"),
        },
    ),
}


_EDGE_COMMON = ("source", "target", "type", "ref", "notes")


def _fields(
    obj: dict, spec: dict[str, tuple[str, Any]], common: Iterable[str], at: str, problems: list
) -> dict[str, Any]:
    """Check the fields of one node/edge; return them with defaults filled in."""
    out: dict[str, Any] = {k: obj[k] for k in common if k in obj}
    for key in obj:
        if key not in spec and key not in common:
            problems.append(
                f"{at}: unknown attribute '{key}'. Known: {', '.join([*spec, *common])}."
            )
    for key, (kind, default) in spec.items():
        if key not in obj or obj[key] is None:
            if default is ...:
                problems.append(f"{at}: '{key}' is missing. Add it to the graph.")
            else:
                out[key] = default
            continue
        value = obj[key]
        if kind == "frequency":
            out[key] = value
            continue
        check, expected = _KINDS[kind]
        if not check(value):
            problems.append(f"{at}: '{key}' must be {expected}. Got {value!r}. Fix the value.")
        out[key] = float(value) if kind in ("number", "positive", "nonneg", "prob") else value
    return out


def _check_frequency(value: Any, ancestries: list[str], at: str, problems: list) -> None:
    ok = _KINDS["prob"][0]
    if isinstance(value, dict):
        for key, freq in value.items():
            if key != "default" and key not in ancestries:
                problems.append(
                    f"{at}: frequency given for ancestry '{key}', which is not in the population "
                    f"({', '.join(ancestries)}). Use one of those or 'default'."
                )
            if not ok(freq):
                problems.append(
                    f"{at}: frequency for '{key}' must be a probability in [0, 1]. Got {freq!r}."
                )
        missing = [a for a in ancestries if a not in value]
        if missing and "default" not in value:
            problems.append(
                f"{at}: no frequency for ancestry {', '.join(missing)}. Add them or a 'default'."
            )
    elif not ok(value):
        problems.append(
            f"{at}: 'frequency' (risk-allele frequency) must be a probability in [0, 1] or a "
            f"mapping of ancestry to probability. Got {value!r}. Fix the value."
        )


def _population(data: Any, problems: list) -> dict[str, Any]:
    pop = {**DEFAULT_POPULATION}
    if data is None:
        return pop
    if not isinstance(data, dict):
        problems.append("'population' must be a mapping (age, female_share, ancestry).")
        return pop
    for key in data:
        if key not in DEFAULT_POPULATION:
            problems.append(
                f"population: unknown setting '{key}'. Known: {', '.join(DEFAULT_POPULATION)}."
            )
    pop.update({k: v for k, v in data.items() if k in DEFAULT_POPULATION})
    age = pop["age"]
    if not isinstance(age, dict) or not all(_num(age.get(k)) for k in ("min", "max", "mean", "sd")):
        problems.append("population: 'age' needs numbers min, max, mean and sd.")
    elif not (0 <= age["min"] < age["max"] <= 120 and age["sd"] > 0):
        problems.append(
            f"population: age needs 0 <= min < max <= 120 and sd > 0. Got {age}. Fix the range."
        )
    if not _KINDS["prob"][0](pop["female_share"]):
        problems.append(
            f"population: 'female_share' must be a probability in [0, 1]. Got "
            f"{pop['female_share']!r}."
        )
    if not _num(pop["reference_age"]):
        problems.append(
            f"population: 'reference_age' must be a number. Got {pop['reference_age']!r}."
        )
    anc = pop["ancestry"]
    if not isinstance(anc, dict) or not anc:
        problems.append("population: 'ancestry' must map ancestry codes to shares.")
    elif not all(_KINDS["prob"][0](v) for v in anc.values()):
        problems.append(f"population: ancestry shares must be probabilities. Got {anc}.")
    elif abs(sum(anc.values()) - 1) > 1e-6:
        problems.append(
            f"population: ancestry shares must sum to 1. They sum to {sum(anc.values()):.6g}; "
            "fix the shares."
        )
    return pop


def graph_from_dict(data: Any, where: str) -> nx.DiGraph:
    headline = f"The knowledge graph {where} is invalid"
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise MetadataError(
            f"{headline}: it must be a mapping with a 'nodes' list (and usually 'edges'). See "
            "the default graph (clinsynth.simulate.default_graph_path()) for the layout."
        )
    problems: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key '{key}'. Known: {', '.join(TOP_KEYS)}.")
    pop = _population(data.get("population"), problems)
    ancestries = list(pop["ancestry"]) if isinstance(pop["ancestry"], dict) else []
    g = nx.DiGraph(name=data.get("name", ""), population=pop)
    _add_nodes(g, data["nodes"], ancestries, problems)
    edges = data.get("edges") or []
    if not isinstance(edges, list):
        problems.append("'edges' must be a list of {source, target, type, ...} mappings.")
        edges = []
    _add_edges(g, edges, problems)
    g.graph["orderings"] = _orderings(g, data.get("orderings") or [], problems)
    if not problems:
        problems.extend(_structure_problems(g))
    if problems:
        raise MetadataError.from_problems(headline, problems)
    return g


def _add_nodes(g: nx.DiGraph, nodes: list, ancestries: list[str], problems: list) -> None:
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            problems.append(f"node {i + 1} must be a mapping with 'id' and 'type'. Got {node!r}.")
            continue
        nid = node.get("id")
        if not isinstance(nid, str) or not _ID.match(nid):
            problems.append(
                f"node {i + 1}: 'id' must be a name of letters, digits, '_', '.' or '-' starting "
                f"with a letter. Got {nid!r}."
            )
            continue
        at = f"node '{nid}'"
        if nid in RESERVED:
            problems.append(
                f"{at}: the id is reserved for a column the simulator writes; rename it."
            )
            continue
        if nid in g:
            problems.append(f"{at} is defined twice; keep one definition.")
            continue
        ntype = node.get("type")
        if ntype not in NODE_TYPES:
            problems.append(f"{at}: 'type' must be one of {', '.join(NODE_TYPES)}. Got {ntype!r}.")
            continue
        spec = dict(_NODE_FIELDS[ntype])
        if ntype == "lab" and node.get("formula") is not None:
            spec["mean"] = ("number", 0.0)
            spec["sd"] = ("positive", 1.0)
        attrs = _fields(node, spec, _COMMON_FIELDS, f"{at} ({ntype})", problems)
        attrs.pop("id", None)
        attrs.setdefault("label", nid)
        if ntype == "variant" and "frequency" in node:
            _check_frequency(node["frequency"], ancestries, f"{at} (variant)", problems)
        if ntype == "lab" and _num(attrs.get("min")) and _num(attrs.get("max")):
            if attrs["min"] >= attrs["max"]:
                problems.append(
                    f"{at} (lab): 'min' must be below 'max'. Got {attrs['min']} >= {attrs['max']}."
                )
        g.add_node(nid, **attrs)


def _add_edges(g: nx.DiGraph, edges: list, problems: list) -> None:
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict):
            problems.append(f"edge {i + 1} must be a mapping with source, target and type.")
            continue
        src, dst, etype = edge.get("source"), edge.get("target"), edge.get("type")
        at = f"edge {i + 1} ({src} -> {dst})"
        bad = False
        for end in (src, dst):
            if not isinstance(end, str) or end not in g:
                problems.append(
                    f"{at}: node '{end}' is not defined. Add a node with id '{end}' or fix "
                    "the edge."
                )
                bad = True
        if etype not in EDGE_TYPES:
            problems.append(f"{at}: 'type' must be one of {', '.join(EDGE_TYPES)}. Got {etype!r}.")
            bad = True
        if bad:
            continue
        sources, targets, spec = _EDGE_RULES[etype]
        stype, ttype = g.nodes[src]["type"], g.nodes[dst]["type"]
        if stype not in sources or ttype not in targets:
            problems.append(
                f"{at}: a '{etype}' edge goes from {' or '.join(sources)} to "
                f"{' or '.join(targets)}, not from {stype} '{src}' to {ttype} '{dst}'. "
                "Change the edge type or its ends."
            )
            continue
        if g.has_edge(src, dst):
            problems.append(f"{at}: there is already an edge from '{src}' to '{dst}'; merge them.")
            continue
        attrs = _fields(edge, spec, _EDGE_COMMON, at, problems)
        for key in ("source", "target"):
            attrs.pop(key, None)
        if etype == "indicates" and stype == "lab" and attrs.get("threshold") is None:
            problems.append(
                f"{at}: an 'indicates' edge from lab '{src}' needs a 'threshold' (and optionally "
                "direction: above|below)."
            )
        g.add_edge(src, dst, **attrs)


def _orderings(g: nx.DiGraph, orderings: Any, problems: list) -> list[dict[str, Any]]:
    out = []
    if not isinstance(orderings, list):
        problems.append("'orderings' must be a list of {low, high, min_gap} mappings.")
        return out
    for i, rule in enumerate(orderings):
        at = f"ordering {i + 1}"
        if not isinstance(rule, dict):
            problems.append(f"{at} must be a mapping with 'low' and 'high' lab ids.")
            continue
        for key in ("low", "high"):
            node = rule.get(key)
            if not isinstance(node, str) or node not in g or g.nodes[node]["type"] != "lab":
                problems.append(f"{at}: '{key}' must name a lab node. Got {node!r}; add the lab.")
        gap = rule.get("min_gap", 0)
        if not _KINDS["nonneg"][0](gap):
            problems.append(f"{at}: 'min_gap' must be a number >= 0. Got {gap!r}.")
        out.append({"low": rule.get("low"), "high": rule.get("high"), "min_gap": gap})
    return out


def _structure_problems(g: nx.DiGraph) -> list[str]:
    problems = []
    diseases = [n for n, t in g.nodes(data="type") if t == "disease"]
    risk = g.edge_subgraph(
        (s, t) for s, t, e in g.edges(data="type") if e == "risk" and s in diseases
    )
    for cycle in _cycles(risk):
        problems.append(
            f"disease '{cycle[0]}' is on a cycle of risk edges ({' -> '.join(cycle)}); "
            "disease-to-disease risks must be acyclic: remove one of these edges."
        )
    labs = lab_dependencies(g)
    for cycle in _cycles(labs):
        problems.append(
            f"lab '{cycle[0]}' depends on itself ({' -> '.join(cycle)}); remove one 'slope' edge "
            "or formula input."
        )
    for n, attrs in g.nodes(data=True):
        if attrs["type"] != "lab":
            continue
        defines = [s for s, _, t in g.in_edges(n, data="type") if t == "defines"]
        if len(defines) > 1:
            problems.append(
                f"lab '{n}' is defined by several diseases ({', '.join(defines)}); keep one "
                "'defines' edge and turn the others into 'shift' edges."
            )
        if attrs.get("formula"):
            inp = attrs.get("input")
            if inp not in g or g.nodes[inp]["type"] != "lab":
                problems.append(
                    f"lab '{n}': formula '{attrs['formula']}' needs 'input' naming a lab node "
                    f"(serum creatinine in mg/dL). Got {inp!r}."
                )
            if g.in_degree(n):
                problems.append(
                    f"lab '{n}' is computed by formula '{attrs['formula']}', so no edge may point "
                    f"to it (found one from '{next(iter(g.predecessors(n)))}'). Remove the edge."
                )
        elif attrs.get("input") is not None:
            problems.append(f"lab '{n}': 'input' is only used with 'formula'. Remove it.")
    return problems


def _cycles(g: nx.DiGraph) -> list[list[str]]:
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return []
    return [[s for s, _ in cycle] + [cycle[0][0]]]


def lab_dependencies(g: nx.DiGraph) -> nx.DiGraph:
    """Lab -> lab dependencies: 'slope' edges and formula inputs."""
    dep = nx.DiGraph()
    dep.add_nodes_from(n for n, t in g.nodes(data="type") if t == "lab")
    dep.add_edges_from((s, t) for s, t, e in g.edges(data="type") if e == "slope")
    for n, attrs in g.nodes(data=True):
        if attrs["type"] == "lab" and attrs.get("formula") and attrs.get("input") in dep:
            dep.add_edge(attrs["input"], n)
    return dep
