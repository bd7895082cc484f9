"""The knowledge graph behind :func:`~clinsynth.simulate.simulate_population`: read and select.

A graph is a mapping with ``nodes`` (variants, exposures, diseases, labs, medications), typed
``edges`` between them, optional ``population`` settings and optional ``orderings`` between labs.
It may come as a YAML/JSON file, a dict, or a :class:`networkx.DiGraph` returned by
:func:`load_graph`. Every problem is collected and reported at once, naming the node or edge and
the fix (the checks are in ``_graph_checks``). The schema is described in ``docs/SIMULATORS.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from clinsynth.errors import MetadataError, ParameterError
from clinsynth.simulate._graph_checks import TOP_KEYS, graph_from_dict


def default_graph_path() -> Path:
    """Path of the default knowledge graph (YAML), a template for your own.

    Examples
    --------
    >>> default_graph_path().name
    'default_graph.yaml'
    """
    return Path(str(resources.files("clinsynth.simulate") / "default_graph.yaml"))


def load_graph(graph: str | os.PathLike | dict | nx.DiGraph | None = None) -> nx.DiGraph:
    """Read and check a knowledge graph; return it as a :class:`networkx.DiGraph`.

    Parameters
    ----------
    graph : path, dict, networkx.DiGraph or None
        A ``.yaml``/``.yml``/``.json`` file, a dict of the same form, a graph returned by this
        function (possibly edited), or None for the built-in default graph.

    Returns
    -------
    networkx.DiGraph
        Nodes carry their attributes with defaults filled in (``type``, ``prevalence``...);
        edges carry ``type`` and their parameters; ``graph.graph`` holds ``population`` and
        ``orderings``.

    Raises
    ------
    MetadataError
        Listing every problem (unknown node in an edge, probability out of range, non-positive
        odds ratio, cycle among diseases, ...), each naming the node and the fix.

    Examples
    --------
    >>> g = load_graph()
    >>> g.nodes["type2_diabetes"]["type"]
    'disease'
    >>> g.edges["TCF7L2_rs7903146", "type2_diabetes"]["odds_ratio"]
    1.4
    """
    if graph is None:
        return load_graph(default_graph_path())
    if isinstance(graph, nx.DiGraph):
        return graph_from_dict(_to_dict(graph), "(networkx graph)")
    if isinstance(graph, dict):
        return graph_from_dict(graph, "(dict)")
    if isinstance(graph, str | os.PathLike):
        path = Path(graph)
        return graph_from_dict(_read_file(path), f"'{path}'")
    raise ParameterError(
        "The 'graph' parameter of simulate_population must be a path to a YAML/JSON file, a "
        f"dict, a networkx.DiGraph or None. Got {type(graph).__name__}."
    )


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise MetadataError(f"Knowledge-graph file '{path}' does not exist. Check the path.")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise MetadataError(
            f"Knowledge-graph file '{path}' must be .yaml, .yml or .json. Got '{suffix}'."
        )
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            return json.loads(text)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise MetadataError(
            f"Knowledge-graph file '{path}' is not valid {suffix[1:].upper()} ({first}). "
            "Fix the syntax; see the default graph for the layout."
        ) from None


def _to_dict(graph: nx.DiGraph) -> dict[str, Any]:
    return {
        **{k: v for k, v in graph.graph.items() if k in TOP_KEYS},
        "nodes": [{"id": n, **attrs} for n, attrs in graph.nodes(data=True)],
        "edges": [{"source": s, "target": t, **attrs} for s, t, attrs in graph.edges(data=True)],
    }


def ordered(g: nx.DiGraph, nodes: list[str]) -> list[str]:
    """``nodes`` in an order that puts every parent first, ties broken by the order of ``nodes``.

    The rank comes from ``nodes`` (a list in file order), never from iterating ``g``: a networkx
    subgraph view iterates its nodes in set order, which changes with the string hash seed.
    """
    rank = {n: i for i, n in enumerate(nodes)}
    return list(nx.lexicographical_topological_sort(g.subgraph(nodes), key=rank.__getitem__))


def select_diseases(g: nx.DiGraph, diseases: Iterable[str]) -> nx.DiGraph:
    """The graph restricted to ``diseases``: other diseases go with their edges, then variants
    and exposures that no longer point anywhere, and medications without an indication."""
    if isinstance(diseases, str):
        diseases = [diseases]
    wanted = list(diseases)
    known = [n for n, t in g.nodes(data="type") if t == "disease"]
    unknown = [d for d in wanted if d not in known]
    if unknown or not wanted:
        raise ParameterError(
            f"The 'diseases' parameter of simulate_population names unknown diseases "
            f"{unknown} (or none). Choose from: {', '.join(known)}."
        )
    out = g.copy()
    out.remove_nodes_from(d for d in known if d not in wanted)
    orphans = [
        n
        for n, t in out.nodes(data="type")
        if (t in ("variant", "exposure") and out.out_degree(n) == 0)
        or (t == "medication" and out.in_degree(n) == 0)
    ]
    out.remove_nodes_from(orphans)
    return out
