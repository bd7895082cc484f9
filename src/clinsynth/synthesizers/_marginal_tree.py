"""The two halves of the marginal-tree model, kept apart so that they can run in different
places: **measuring** (at the data: codes, dependence scores, noisy 2-way tables) and **fitting
from measurements** (anywhere: the maximum spanning tree of scores, raked tables, the rooted
tree that samples). :class:`~clinsynth.synthesizers.DPMarginalSynthesizer` runs both on one
table; a federation (:mod:`clinsynth.federated`) measures at each site and fits at the server
from the sites' summed noisy measurements.

An *attribute* is one learned column as a discrete variable (a dict): ``column``, ``kind``
(``categorical``, ``numeric``, ``empty``), ``start`` (its first span in the encoded rows),
``size`` (levels or bins, the missing bin included), and for numbers ``edges`` and ``nulls``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


def codes(attrs: list[dict[str, Any]], encoded: np.ndarray) -> np.ndarray:
    """The ``(rows, attributes)`` integer codes of encoded rows (the transformer's output with
    ``numerical='identity'``, ``categorical='label'``)."""
    if not attrs:
        return np.zeros((len(encoded), 0), dtype=np.int64)
    return np.stack([_codes(a, encoded) for a in attrs], axis=1)


def _codes(attr: dict[str, Any], encoded: np.ndarray) -> np.ndarray:
    col = encoded[:, attr["start"]]
    if attr["kind"] == "empty":
        return np.zeros(len(encoded), dtype=np.int64)
    if attr["kind"] == "categorical":
        return np.clip(np.rint(col).astype(np.int64), 0, attr["size"] - 1)
    edges = np.asarray(attr["edges"])
    out = np.clip(np.searchsorted(edges, col, side="right") - 1, 0, len(edges) - 2)
    if attr["nulls"]:
        missing = encoded[:, attr["start"] + 2] > 0.5  # the null span follows the value
        out = np.where(missing, attr["size"] - 1, out)
    return out


def pairs(d: int) -> list[tuple[int, int]]:
    """Every pair of attributes ``(i, j)``, ``i < j``, in a fixed order."""
    return [(i, j) for i in range(d) for j in range(i + 1, d)]


def contingency(a: np.ndarray, b: np.ndarray, size_a: int, size_b: int) -> np.ndarray:
    """The 2-way count table of two code columns (one bincount)."""
    return (
        np.bincount(a * size_b + b, minlength=size_a * size_b)
        .reshape(size_a, size_b)
        .astype(np.float64)
    )


def pair_scores(
    codes_: np.ndarray, attrs: list[dict[str, Any]], ones: list[np.ndarray], total: float
) -> np.ndarray:
    """Dependence score of every pair (order of :func:`pairs`): ``‖M_ij - total·p_i ⊗ p_j‖₁``,
    the L1 distance between the rows' 2-way counts and the independence estimate from released
    1-way marginals ``ones`` (fixed, not these rows'). Adding or removing one row changes each
    score by at most 1."""
    probs = [o / max(o.sum(), 1e-12) for o in ones]
    out = np.empty(len(pairs(len(attrs))))
    for k, (i, j) in enumerate(pairs(len(attrs))):
        counts = contingency(codes_[:, i], codes_[:, j], attrs[i]["size"], attrs[j]["size"])
        out[k] = np.abs(counts - total * np.outer(probs[i], probs[j])).sum()
    return out


def spanning_tree(
    scores: np.ndarray,
    d: int,
    *,
    eps0: float | None = None,
    rng: np.random.Generator | None = None,
) -> list[tuple[int, int]]:
    """Kruskal's maximum spanning tree over the pairs' ``scores``. With ``eps0`` (and ``rng``)
    every edge is drawn by the exponential mechanism (score sensitivity 1); without, the
    scores are already noisy and the tree is their plain maximum (post-processing)."""
    all_pairs = pairs(d)
    parent = list(range(d))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    chosen: list[tuple[int, int]] = []
    for _ in range(d - 1):
        ok = np.array([find(i) != find(j) for i, j in all_pairs])
        if eps0 is not None:
            logits = np.where(ok, eps0 * scores / 2.0, -np.inf)
            k = int(np.argmax(logits + rng.gumbel(size=len(all_pairs))))  # a softmax draw
        else:
            k = int(np.argmax(np.where(ok, scores, -np.inf)))
        i, j = all_pairs[k]
        parent[find(i)] = find(j)
        chosen.append((i, j))
    return chosen


def measure(
    codes_: np.ndarray,
    attrs: list[dict[str, Any]],
    edges: list[tuple[int, int]],
    sigma: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """The 2-way tables of ``edges`` with Gaussian noise ``N(0, sigma²)`` in every cell (each
    row is in one cell of each table: L2 sensitivity ``sqrt(len(edges))`` in all)."""
    out = []
    for i, j in edges:
        counts = contingency(codes_[:, i], codes_[:, j], attrs[i]["size"], attrs[j]["size"])
        out.append(counts + sigma * rng.standard_normal(counts.shape))
    return out


def fit_tree(
    d: int, edges: list[tuple[int, int]], tables: list[np.ndarray], ones: list[np.ndarray]
) -> dict[str, Any]:
    """The sampling tree from noisy measurements (post-processing only): each noisy 2-way
    table made non-negative and consistent with the noisy 1-way marginals ``ones``
    (:func:`rake`), then rooted (:func:`orient`)."""
    raked = [rake(t, ones[i], ones[j]) for (i, j), t in zip(edges, tables, strict=True)]
    return orient(d, edges, raked, ones)


def rake(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, iters: int = 20) -> np.ndarray:
    """A noisy 2-way table made non-negative and consistent with the noisy 1-way marginals
    (iterative proportional fitting; post-processing). Returns the joint probabilities."""
    joint = np.maximum(table, 0.0) + 1e-3
    r = rows / rows.sum() if rows.sum() > 0 else np.full(len(rows), 1 / len(rows))
    c = cols / cols.sum() if cols.sum() > 0 else np.full(len(cols), 1 / len(cols))
    joint /= joint.sum()
    for _ in range(iters):
        joint *= (r / np.maximum(joint.sum(1), 1e-12))[:, None]
        joint *= (c / np.maximum(joint.sum(0), 1e-12))[None, :]
    return joint / joint.sum()


def orient(
    d: int, edges: list[tuple[int, int]], tables: list[np.ndarray], ones: list[np.ndarray]
) -> dict[str, Any]:
    """Root the tree at attribute 0 (breadth first): parents, order, JSON-able distributions."""
    neighbours: dict[int, list[tuple[int, np.ndarray]]] = {k: [] for k in range(d)}
    for (i, j), joint in zip(edges, tables, strict=True):
        neighbours[i].append((j, joint))
        neighbours[j].append((i, joint.T))
    parent = [-1] * d
    order: list[int] = []
    conditionals: dict[str, list] = {}
    roots: dict[str, list] = {}
    seen = [False] * d
    for root in range(d):
        if seen[root]:
            continue
        seen[root] = True
        p = np.maximum(ones[root], 0.0)
        p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1 / len(p))
        roots[str(root)] = p.tolist()
        queue = deque([root])
        while queue:
            node = queue.popleft()
            order.append(node)
            for child, joint in neighbours[node]:  # joint: node level x child level
                if seen[child]:
                    continue
                seen[child] = True
                parent[child] = node
                cond = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-12)
                conditionals[str(child)] = cond.tolist()
                queue.append(child)
    return {"parent": parent, "order": order, "conditionals": conditionals, "root_probs": roots}
