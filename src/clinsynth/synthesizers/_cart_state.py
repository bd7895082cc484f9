"""The sequential trees' saved form: each tree as arrays (children, split variable, cut point,
leaf statistics), walked down by vectorized steps, and checked as untrusted input on load (the
children after their parent, so a walk ends; splits only on columns drawn earlier in the chain;
leaf statistics of the right shapes and ranges)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clinsynth.io import _schema as S
from clinsynth.io._bundle import check_tensor
from clinsynth.synthesizers._copula_state import _MARGINAL, _marginal_problems

if TYPE_CHECKING:
    from clinsynth.synthesizers._cart import CARTSynthesizer

_WHERE = "model.json (cart)"
_TENSORS = "weights.pt (cart)"
_STATE = S.mapping(
    {
        "marginals": S.array(_MARGINAL, max_len=100_000),
        "order": S.array(S.integer(0, 100_000), max_len=100_000),
        "min_leaf": S.integer(1, 10**9),
        "leaf_search": S.array(
            S.mapping(
                {
                    "min_leaf": S.integer(1, 10**9),
                    "dcr_share": S.number(0, 1),
                    "dcr_share_se": S.number(0, 1),
                },
                required=("min_leaf", "dcr_share", "dcr_share_se"),
            ),
            max_len=100,
        ),
    },
    required=("marginals", "order", "min_leaf", "leaf_search"),
)
#: Smallest spread of a leaf's normal scores (a leaf of near-equal values).
MIN_SD = 0.01


class Tree:
    """One decision tree of the chain, as arrays.

    ``left``/``right``: children of each node (-1 at a leaf); ``feature``: the variable a node
    splits on (-1 at a leaf); ``threshold``: rows with a value <= it go left; ``leaf``: each
    node's row in the leaf statistics (-1 inside); ``probs`` (leaves x levels) for a category,
    ``mean``/``sd`` (leaves) of normal scores for a number.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.left = arrays["left"].astype(np.int64)
        self.right = arrays["right"].astype(np.int64)
        self.feature = arrays["feature"].astype(np.int64)
        self.threshold = arrays["threshold"].astype(np.float64)
        self.leaf = arrays["leaf"].astype(np.int64)
        self.probs = arrays["probs"].astype(np.float64) if "probs" in arrays else None
        self.mean = arrays["mean"].astype(np.float64) if "mean" in arrays else None
        self.sd = arrays["sd"].astype(np.float64) if "sd" in arrays else None

    @classmethod
    def constant(cls, levels: int) -> Tree:
        """A single leaf: uniform levels, or a standard normal score."""
        node = {
            "left": np.array([-1]),
            "right": np.array([-1]),
            "feature": np.array([-1]),
            "threshold": np.array([0.0]),
            "leaf": np.array([0]),
        }
        if levels:
            return cls({**node, "probs": np.full((1, levels), 1.0 / levels)})
        return cls({**node, "mean": np.zeros(1), "sd": np.ones(1)})

    @classmethod
    def from_sklearn(
        cls, model: Any, before: list[int], x: np.ndarray, target: np.ndarray, levels: int
    ) -> Tree:
        """The arrays of a fitted scikit-learn tree, its split features renamed to the chain's
        variables, with the statistics of the training rows in each leaf. (Shrinking leaves
        towards the whole column was tried: on support2, 3 pseudo-rows took the detection AUC
        from 0.65 to 0.97 -- impossible combinations -- for a DCR share 0.016 lower.)"""
        tree = model.tree_
        left, right = tree.children_left.copy(), tree.children_right.copy()
        inner = left >= 0
        names = np.asarray(before if before else [0], dtype=np.int64)
        feature = np.where(inner, names[np.maximum(tree.feature, 0)], -1)
        leaf = np.full(tree.node_count, -1, dtype=np.int64)
        leaves = np.flatnonzero(~inner)
        leaf[leaves] = np.arange(len(leaves))
        row_leaf = leaf[model.apply(x)]
        arrays = {
            "left": left,
            "right": right,
            "feature": feature,
            "threshold": np.where(inner, tree.threshold, 0.0),
            "leaf": leaf,
        }
        if levels:
            counts = np.bincount(
                row_leaf * levels + target, minlength=len(leaves) * levels
            ).reshape(len(leaves), levels)
            arrays["probs"] = counts / counts.sum(1, keepdims=True)
        else:
            count = np.bincount(row_leaf, minlength=len(leaves))
            total = np.bincount(row_leaf, target, minlength=len(leaves))
            square = np.bincount(row_leaf, target**2, minlength=len(leaves))
            mean = total / count
            arrays["mean"] = mean
            arrays["sd"] = np.maximum(np.sqrt(np.maximum(square / count - mean**2, 0.0)), MIN_SD)
        return cls(arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "left": self.left.astype(np.int32),
            "right": self.right.astype(np.int32),
            "feature": self.feature.astype(np.int32),
            "threshold": self.threshold,
            "leaf": self.leaf.astype(np.int32),
        }
        if self.probs is not None:
            out["probs"] = self.probs.astype(np.float32)
        else:
            out["mean"] = self.mean.astype(np.float32)
            out["sd"] = self.sd.astype(np.float32)
        return out

    def leaf_of(self, values: np.ndarray) -> np.ndarray:
        """The leaf (row of the statistics) each row of ``values`` (rows x variables) lands in:
        all rows step down one level at a time, as scikit-learn compares (float32 values)."""
        node = np.zeros(len(values), dtype=np.int64)
        active = np.flatnonzero(self.left[node] >= 0)
        while len(active):
            at = node[active]
            x = values[active, self.feature[at]].astype(np.float32).astype(np.float64)
            node[active] = np.where(x <= self.threshold[at], self.left[at], self.right[at])
            active = active[self.left[node[active]] >= 0]
        return self.leaf[node]


def check_state(model: CARTSynthesizer, state: Any, tensors: dict[str, Any]) -> dict[int, Tree]:
    """The trees of a saved model, after checking ``state`` and ``tensors`` against the model's
    transformer; a :class:`~clinsynth.errors.BundleError` names what does not fit."""
    S.check_json(state, _STATE, _WHERE)
    variables = model._variables()
    k = len(variables)
    problems: list[str] = []
    if len(state["marginals"]) != k:
        S.raise_problems([f"{len(state['marginals'])} marginals for {k} variables"], _WHERE)
    for j, ((span, _), marginal) in enumerate(zip(variables, state["marginals"], strict=True)):
        problems.extend(_marginal_problems(f"variable {j}", span, marginal))
    if sorted(state["order"]) != list(range(k)):
        problems.append("'order' must list every variable once")
    if problems:
        S.raise_problems(problems, _WHERE)
    trees: dict[int, Tree] = {}
    for position, j in enumerate(state["order"]):
        span = variables[j][0]
        levels = (
            (span.n_levels if span.dim == 1 else span.dim)
            if span.activation
            in (
                "label",
                "softmax",
            )
            else 0
        )
        trees[j] = _checked_tree(tensors, j, set(state["order"][:position]), levels)
    return trees


def _checked_tree(tensors: dict[str, Any], j: int, before: set[int], levels: int) -> Tree:
    def get(name: str, shape: tuple[int | None, ...], floating: bool) -> np.ndarray:
        value = check_tensor(tensors, f"tree_{j}_{name}", shape, _TENSORS, floating=floating)
        if not floating and value.dtype.is_floating_point:
            S.raise_problems([f"'tree_{j}_{name}' must hold whole numbers"], _TENSORS)
        return value.numpy()

    left = get("left", (None,), False)
    nodes = len(left)
    arrays = {"left": left}
    for name in ("right", "feature", "leaf"):
        arrays[name] = get(name, (nodes,), False)
    arrays["threshold"] = get("threshold", (nodes,), True)
    inner = left >= 0
    index = np.arange(nodes)
    right, feature, leaf = arrays["right"], arrays["feature"], arrays["leaf"]
    n_leaves = int((~inner).sum())
    bad = (
        nodes == 0
        or np.any(inner & ((left <= index) | (right <= index) | (left >= nodes) | (right >= nodes)))
        or np.any(~inner & ((right != -1) | (feature != -1)))
        or np.any(inner & ~np.isin(feature, sorted(before)))
        or np.any(inner & (leaf != -1))
        or sorted(leaf[~inner].tolist()) != list(range(n_leaves))
    )
    if bad:
        S.raise_problems([f"tree {j} is not a tree of this chain"], _TENSORS)
    if levels:
        probs = get("probs", (n_leaves, levels), True)
        if probs.min(initial=0.0) < 0 or np.any(probs.sum(1) <= 0):
            S.raise_problems([f"tree {j}: the level frequencies are out of range"], _TENSORS)
        arrays["probs"] = probs
    else:
        arrays["mean"] = get("mean", (n_leaves,), True)
        arrays["sd"] = get("sd", (n_leaves,), True)
        if np.any(arrays["sd"] <= 0):
            S.raise_problems([f"tree {j}: a leaf's spread is not positive"], _TENSORS)
    return Tree(arrays)
