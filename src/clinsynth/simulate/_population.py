"""Patients from a knowledge graph: genotypes, exposures, diagnoses, labs and medications.

The graph (see :mod:`clinsynth.simulate._graph`) is turned into patients column by column, every
step vectorized over all rows; the only Python loops run over graph nodes:

1. demographics: age (truncated normal), sex, genetic ancestry;
2. variants: two alleles drawn with the risk-allele frequency of the patient's ancestry;
3. exposures and diseases (parents first): a logistic model whose log-odds add the age, sex and
   ``risk`` edge contributions; its intercept is solved so the mean risk equals the node's
   ``prevalence``;
4. labs (parents first): mean + sex/age shifts + ``shift``/``slope`` edges + between-person and
   measurement noise; a ``defines`` edge draws the lab on the right side of its threshold;
   formulas (CKD-EPI 2021) are computed; ``orderings`` keep lab pairs in order;
5. medications: each ``indicates`` edge prescribes with its probability, never without one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from clinsynth._utils import make_rng
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.simulate._common import (
    bernoulli_logistic,
    check_count,
    egfr_ckd_epi_2021,
    pick,
    truncated_normal,
)
from clinsynth.simulate._graph import load_graph, ordered, select_diseases
from clinsynth.simulate._graph_checks import lab_dependencies

_FORMULAS = {"ckd_epi_2021": egfr_ckd_epi_2021}


def simulate_population(
    num_rows: int = 1000,
    *,
    seed: int | np.random.Generator | None = None,
    diseases: Sequence[str] | None = None,
    graph: str | os.PathLike | dict | nx.DiGraph | None = None,
) -> tuple[pd.DataFrame, Metadata]:
    """Simulate patients from a knowledge graph of variants, exposures, diseases and labs.

    Parameters
    ----------
    num_rows : int, default 1000
        Number of patients (rows).
    seed : int, numpy.random.Generator or None
        Same seed, same rows. None draws fresh randomness.
    diseases : list of str, optional
        Keep only these diseases (ids of disease nodes). The others are dropped with their
        edges, then the variants and exposures that no longer point anywhere, and the
        medications left without an indication. The kept diseases keep their prevalence.
    graph : path, dict, networkx.DiGraph or None
        A YAML/JSON file or dict in the layout of the default graph
        (:func:`~clinsynth.simulate.default_graph_path`), or a graph from
        :func:`~clinsynth.simulate.load_graph`. None uses the default graph (11 common
        diseases; see ``docs/SIMULATORS.md``).

    Returns
    -------
    data : pandas.DataFrame
        One row per patient: ``patient_id``, ``age``, ``sex``, ``ancestry``, one column per
        variant (risk-allele count 0/1/2), exposure (bool), disease (bool), lab (number) and
        medication (bool), in graph order.
    metadata : Metadata
        sdtypes, the primary key ``patient_id`` and ``column_groups``: ``genetic`` (ancestry and
        variants), ``environmental`` (exposures) and ``clinical`` (age, sex, diseases, labs,
        medications).

    Raises
    ------
    MetadataError
        The graph is invalid (each problem names the node and the fix).
    ParameterError
        ``num_rows`` is not an int >= 1, or ``diseases`` names an unknown disease.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_population
    >>> df, md = simulate_population(200, seed=0)
    >>> bool((df.loc[df["metformin"], "type2_diabetes"]).all())
    True
    >>> md.column_groups["genetic"][:2]
    ['ancestry', 'FTO_rs9939609']
    """
    n = check_count("simulate_population", "num_rows", num_rows)
    g = load_graph(graph)
    if diseases is not None:
        g = select_diseases(g, diseases)
    rng = make_rng(seed)
    columns, kinds = _simulate(g, n, rng)
    data = pd.DataFrame(columns, copy=False)
    return data, _metadata(g, data, kinds)


def _simulate(
    g: nx.DiGraph, n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    pop = g.graph["population"]
    age_spec = pop["age"]
    age = np.floor(
        truncated_normal(
            rng, age_spec["mean"], age_spec["sd"], age_spec["min"], age_spec["max"] + 0.999, n
        )
    ).astype(np.int64)
    female = rng.random(n) < pop["female_share"]
    ancestries = list(pop["ancestry"])
    shares = np.array([pop["ancestry"][a] for a in ancestries], dtype=float)
    ancestry = rng.choice(len(ancestries), size=n, p=shares / shares.sum())
    ctx = _Context(
        age=age,
        female=female,
        decade=(age - pop["reference_age"]) / 10.0,
        ancestry=ancestry,
        ancestries=ancestries,
    )
    columns: dict[str, np.ndarray] = {
        "patient_id": np.arange(1, n + 1, dtype=np.int64),
        "age": age,
        "sex": pick(("male", "female"), female.astype(np.int8)),
        "ancestry": pick(ancestries, ancestry),
    }
    # Effect values: what an edge from the node multiplies (coded genotype, 0/1, lab value).
    effect: dict[str, np.ndarray] = {}
    by_type = {t: [v for v, k in g.nodes(data="type") if k == t] for t in _TYPES}
    for v in by_type["variant"]:
        columns[v], effect[v] = _genotype(g.nodes[v], ctx, rng)
    for v in by_type["exposure"]:
        effect[v] = columns[v] = _binary(g, v, ctx, effect, rng)
    disease_graph = g.subgraph(by_type["disease"])
    for v in ordered(disease_graph, by_type["disease"]):
        effect[v] = columns[v] = _binary(g, v, ctx, effect, rng)
    labs = by_type["lab"]
    pending = list(g.graph["orderings"])
    for v in ordered(lab_dependencies(g), labs):
        effect[v] = _lab(g, v, ctx, effect, rng)
        pending = _apply_orderings(g, pending, effect)
    for v in labs:
        columns[v] = effect[v].astype(np.int64) if g.nodes[v]["decimals"] == 0 else effect[v]
    for v in by_type["medication"]:
        columns[v] = _medication(g, v, effect, rng)
    kinds = {v: t for t, nodes in by_type.items() for v in nodes}
    order = ["patient_id", "age", "sex", "ancestry"] + [v for v in g if v in columns]
    return {c: columns[c] for c in order}, kinds


_TYPES = ("variant", "exposure", "disease", "lab", "medication")


@dataclass(frozen=True)
class _Context:
    """The demographics every node's model may use."""

    age: np.ndarray
    female: np.ndarray
    decade: np.ndarray  # (age - reference age) / 10
    ancestry: np.ndarray  # index into ``ancestries``
    ancestries: list[str]

    @property
    def male(self) -> np.ndarray:
        return ~self.female

    @property
    def n(self) -> int:
        return self.age.shape[0]


def _genotype(node: dict, ctx: _Context, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Risk-allele count (int8, Hardy-Weinberg within ancestry) and its coded effect value."""
    freq = node["frequency"]
    if isinstance(freq, dict):
        table = np.array([freq.get(a, freq.get("default", 0.0)) for a in ctx.ancestries])
    else:
        table = np.full(len(ctx.ancestries), float(freq))
    q = table[ctx.ancestry]
    count = (rng.random(ctx.n) < q).astype(np.int8) + (rng.random(ctx.n) < q).astype(np.int8)
    coded = {
        "additive": count.astype(float),
        "dominant": (count >= 1).astype(float),
        "recessive": (count == 2).astype(float),
    }[node["inheritance"]]
    return count, coded


def _binary(
    g: nx.DiGraph, v: str, ctx: _Context, effect: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    node = g.nodes[v]
    offset = math.log(node["age_odds_ratio"]) * ctx.decade
    offset = offset + math.log(node["male_odds_ratio"]) * ctx.male
    for src, _, e in g.in_edges(v, data=True):
        if e["type"] == "risk":
            offset = offset + math.log(e["odds_ratio"]) * effect[src]
    return bernoulli_logistic(rng, np.asarray(offset, dtype=float), node["prevalence"])


def _lab(
    g: nx.DiGraph, v: str, ctx: _Context, effect: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    node = g.nodes[v]
    step = 10.0 ** -node["decimals"]
    if node.get("formula"):
        # A user graph may let creatinine reach 0; the formula needs it positive.
        inputs = np.maximum(effect[node["input"]], 0.01)
        value = _FORMULAS[node["formula"]](inputs, ctx.age, ctx.female)
        return np.round(np.clip(value, node["min"], node["max"]), node["decimals"])
    mean = node["mean"] + node["male_shift"] * ctx.male + node["age_shift"] * ctx.decade
    defines = None
    for src, _, e in g.in_edges(v, data=True):
        x = effect[src]
        if e["type"] in ("shift", "defines"):
            shift = e["shift"] + e["sd"] * rng.standard_normal(ctx.n) if e["sd"] else e["shift"]
            mean = mean + x * shift
        elif e["type"] == "slope":
            mean = mean + e["slope"] * (x - _centre(g.nodes[src]))
        if e["type"] == "defines":
            defines = (src, e)
    sd = math.hypot(node["sd"], node["noise_sd"])
    low, high = node["min"], node["max"]
    if defines is None:
        value = np.clip(mean + sd * rng.standard_normal(ctx.n), low, high)
        return np.round(value, node["decimals"])
    # The diagnosis holds exactly when the lab is on its side of the threshold.
    src, e = defines
    dx = effect[src].astype(bool)
    if e["direction"] == "below":
        dx = ~dx
    thr = min(max(e["threshold"], low), high)
    value = truncated_normal(rng, mean, sd, np.where(dx, thr, low), np.where(dx, high, thr), ctx.n)
    value = np.round(value, node["decimals"])
    return np.where(dx, np.maximum(value, thr), np.minimum(value, np.round(thr - step, 6)))


def _centre(node: dict) -> float:
    return 0.0 if node.get("formula") else node["mean"]


def _apply_orderings(
    g: nx.DiGraph, pending: list[dict], effect: dict[str, np.ndarray]
) -> list[dict]:
    """Keep ``low <= high - min_gap`` on every row once both labs exist; return the rest."""
    rest = []
    for rule in pending:
        low, high = rule["low"], rule["high"]
        if low not in effect or high not in effect:
            rest.append(rule)
            continue
        scale = 10.0 ** g.nodes[low]["decimals"]
        cap = np.floor((effect[high] - rule["min_gap"]) * scale + 1e-9) / scale
        effect[low] = np.minimum(effect[low], cap)
    return rest


def _medication(
    g: nx.DiGraph, v: str, effect: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    given = np.zeros(next(iter(effect.values())).shape[0], dtype=bool)
    for src, _, e in g.in_edges(v, data=True):
        if g.nodes[src]["type"] == "lab":
            x = effect[src]
            indicated = x >= e["threshold"] if e["direction"] == "above" else x < e["threshold"]
        else:
            indicated = effect[src].astype(bool)
        given |= indicated & (rng.random(given.shape[0]) < e["probability"])
    return given


def _metadata(g: nx.DiGraph, data: pd.DataFrame, kinds: dict[str, str]) -> Metadata:
    columns: dict[str, dict] = {
        "patient_id": {"sdtype": "id"},
        "age": {"sdtype": "numerical", "computer_representation": "Int64"},
        "sex": {"sdtype": "categorical"},
        "ancestry": {"sdtype": "categorical"},
    }
    groups: dict[str, list[str]] = {
        "genetic": ["ancestry"],
        "clinical": ["age", "sex"],
        "environmental": [],
    }
    for col in data.columns[4:]:
        kind = kinds[col]
        if kind == "variant":
            columns[col] = {"sdtype": "numerical", "computer_representation": "Int8"}
            groups["genetic"].append(col)
        elif kind == "lab":
            rep = "Int64" if g.nodes[col]["decimals"] == 0 else "Float"
            columns[col] = {"sdtype": "numerical", "computer_representation": rep}
            groups["clinical"].append(col)
        else:
            columns[col] = {"sdtype": "boolean"}
            groups["environmental" if kind == "exposure" else "clinical"].append(col)
    table = TableMetadata(columns, primary_key="patient_id", column_groups=groups)
    return Metadata({"population": table})
