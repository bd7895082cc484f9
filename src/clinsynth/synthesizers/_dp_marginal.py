"""A differentially private synthesizer for small tables: noisy marginals on a spanning tree.

In the family of MST (McKenna, Miklau & Sheldon, "Winning the NIST Contest", 2021): every column
becomes a discrete attribute (categories as they are, numbers and dates in equal-width bins over
public or DP bounds, missing as a level); the noisy 1-way marginals come from the transformer's DP
statistics; a maximum spanning tree of pairwise dependence is chosen with the exponential
mechanism; the 2-way marginals of its edges are measured with Gaussian noise; synthetic rows are
drawn down the tree (root from its 1-way marginal, every child from its conditional on its parent)
and numbers uniformly within their bin, then rounded and clipped like the original column.

Accounting, in zero-concentrated DP (ρ-zCDP; neighbours add or remove one row):

* Gaussian histogram (each row in one cell, L2 sensitivity 1), noise ``N(0, σ²)``:
  ``ρ = 1 / (2σ²)``. The ``d - 1`` edge marginals with ``ρ_measure`` in total use
  ``σ = sqrt((d - 1) / (2 ρ_measure))``.
* Exponential mechanism with score sensitivity ``Δ = 1`` and parameter ``ε₀`` (probability
  ``∝ exp(ε₀ · score / (2Δ))``) is ``ε₀²/8``-zCDP (Cesar & Rogers 2021). The score of an edge
  ``(i, j)`` is ``‖M_ij - m_i ⊗ m_j / n‖₁``: the L1 distance between its true 2-way counts and the
  independence estimate from the already released (noisy) 1-way marginals, which changes by at
  most 1 when a row is added or removed. ``d - 1`` selections with ``ρ_select`` in total use
  ``ε₀ = sqrt(8 ρ_select / (d - 1))``.
* Composition adds the ρ; RDP of ρ-zCDP is ``αρ``, converted to ``(ε, δ)`` by
  ``ε = min_α αρ + log((α-1)/α) - (log δ + log α)/(α - 1)`` (Balle et al. 2020). The budget
  ``ε`` is turned into the largest ρ that converts to it and split: transformer statistics 30%,
  selection 10%, edge measurements 60% (``budget_split``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from clinsynth.io import _schema as S
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import _marginal_tree as T
from clinsynth.synthesizers._base import BaseSynthesizer, _is_int
from clinsynth.synthesizers._dp import DP_PARAMETERS, DifferentialPrivacy, require_epsilon
from clinsynth.synthesizers._registry import register


def _is_split(v: Any) -> bool:
    return (
        isinstance(v, tuple | list)
        and len(v) == 3
        and all(isinstance(x, int | float) and x > 0 for x in v)
    )


@register("dp_marginal", aliases=("mst", "dpmarginal"))
class DPMarginalSynthesizer(BaseSynthesizer):
    """Differentially private synthesizer from noisy marginals on a maximum spanning tree.

    Meant for small tables (hundreds to a few thousand rows) where DP-SGD has too little signal.
    The formulas of the accounting are in the module docstring and ``docs/PRIVACY.md``.

    Parameters
    ----------
    metadata : Metadata
    epsilon : float
        Required: the total budget ε (statistics, selection and measurements together).
    delta : float, optional
        Default ``1 / (10 n)``.
    public_bounds : dict, optional
        ``{"age": (0, 110), "sex": ["F", "M"]}``: public ranges and category lists, which cost
        no budget. Other columns get DP ranges and thresholded category discovery.
    n_bins : int
        Bins of every number and date column.
    budget_split : tuple of 3 floats
        Relative shares of (transformer statistics, edge selection, edge measurements).
    **kwargs
        ``random_state``, ``rare_category_threshold``, ``enforce_rounding``, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, DPMarginalSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> age = rng.integers(20, 90, 400)
    >>> df = pd.DataFrame({"age": age, "sex": rng.choice(["F", "M"], 400),
    ...                    "frail": np.where(age > 70, "yes", "no")})
    >>> model = DPMarginalSynthesizer(Metadata.detect_from_dataframe(df), epsilon=3.0,
    ...                               public_bounds={"age": (0, 110)}, random_state=0)
    >>> synthetic = model.fit(df).sample(300)
    >>> model.get_privacy_report()["epsilon_spent"] <= 3.0
    True
    """

    _transformer_options: ClassVar[dict[str, Any]] = {
        "numerical": "identity",
        "categorical": "label",
    }
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        **{k: v for k, v in DP_PARAMETERS.items() if k != "max_grad_norm"},
        "n_bins": (_is_int(2), "an int >= 2"),
        "budget_split": (_is_split, "a tuple of 3 floats > 0"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        epsilon: float | None = None,
        delta: float | None = None,
        public_bounds: dict[str, Any] | None = None,
        n_bins: int = 16,
        budget_split: tuple[float, float, float] = (0.3, 0.1, 0.6),
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.epsilon = epsilon
        self.delta = delta
        self.public_bounds = public_bounds
        self.n_bins = n_bins
        self.budget_split = budget_split

    def _validate_params(self) -> None:
        super()._validate_params()
        require_epsilon(self)

    # ------------------------------------------------------------------ budget
    def _shares(self) -> np.ndarray:
        split = np.asarray(self.budget_split, dtype=np.float64)
        return split / split.sum()

    def _differential_privacy(self) -> DifferentialPrivacy | None:
        """The budget's first share and this model's bins go to the transformer."""
        return DifferentialPrivacy.from_model(
            self, statistics_share=float(self._shares()[0]), n_bins=int(self.n_bins)
        )

    # ------------------------------------------------------------------ attributes
    def _attributes(self) -> list[dict[str, Any]]:
        """One discrete attribute per learned column, with its 1-way noisy counts."""
        attrs: list[dict[str, Any]] = []
        start = 0
        for column, t in self._transformer_.transformers_.items():
            width = t.output_dim
            if width == 0:
                continue
            if t.kind == "categorical":
                counts = np.asarray(t.dp_counts_, dtype=np.float64)
                if len(counts) != len(t.levels_):  # an empty column: one level, no signal
                    counts = np.ones(len(t.levels_))
                attrs.append(
                    {
                        "column": column,
                        "kind": "categorical",
                        "start": start,
                        "size": len(t.levels_),
                        "counts": counts,
                    }
                )
            elif t.empty_:  # only the missing indicator: always missing
                attrs.append(
                    {
                        "column": column,
                        "kind": "empty",
                        "start": start,
                        "size": 1,
                        "counts": np.ones(1),
                    }
                )
            else:
                counts = np.asarray(t.dp_counts_, dtype=np.float64)
                if t.has_nulls_:
                    counts = np.append(counts, t.dp_missing_)
                attrs.append(
                    {
                        "column": column,
                        "kind": "numeric",
                        "start": start,
                        "size": len(counts),
                        "edges": np.asarray(t.dp_edges_),
                        "nulls": bool(t.has_nulls_),
                        "empty": bool(t.empty_),
                        "counts": counts,
                    }
                )
            start += width
        return attrs

    # ------------------------------------------------------------------ fit
    def _fit(self, encoded: np.ndarray) -> None:
        """Measure (selection and noisy edge tables, on these rows), then fit from the
        measurements (:mod:`~clinsynth.synthesizers._marginal_tree`)."""
        rng = np.random.default_rng(self._fit_seed_)
        attrs = self._attributes()
        codes = T.codes(attrs, encoded)
        ones = [np.maximum(a["counts"], 0.0) for a in attrs]
        d = len(attrs)
        _, select_share, measure_share = self._shares()
        rho = self._dp_.rho
        edges: list[tuple[int, int]] = []
        tables: list[np.ndarray] = []
        details: dict[str, Any] = {
            "mechanism": "noisy marginals on a maximum spanning tree (MST-style)",
            "attributes": d,
        }
        if d >= 2:
            eps0 = float(np.sqrt(8 * rho * select_share / (d - 1)))
            total = max(float(np.mean([o.sum() for o in ones])), 1.0)
            scores = T.pair_scores(codes, attrs, ones, total)
            edges = T.spanning_tree(scores, d, eps0=eps0, rng=rng)
            self._dp_.accountant.add_zcdp(
                "edge selection (exponential mechanism)",
                eps0**2 / 8,
                count=d - 1,
                consumer="selection",
            )
            sigma = float(np.sqrt((d - 1) / (2 * rho * measure_share)))
            tables = T.measure(codes, attrs, edges, sigma, rng)
            self._dp_.accountant.add_gaussian(
                "2-way marginals of the tree edges", sigma, count=d - 1, consumer="measurement"
            )
            details.update({"selection_epsilon0": eps0, "measurement_sigma": sigma})
        self._set_tree(attrs, T.fit_tree(d, edges, tables, ones))
        self.privacy_budget_ = self._dp_.budget(
            **details, edges=[[attrs[i]["column"], attrs[j]["column"]] for i, j in edges]
        )

    def _set_tree(self, attrs: list[dict[str, Any]], tree: dict[str, Any]) -> None:
        """The fitted generator: the attributes (without their counts) and the rooted tree."""
        self._tree_ = tree
        self._attrs_ = [{k: v for k, v in a.items() if k != "counts"} for a in attrs]

    # ------------------------------------------------------------------ sample
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        tree = self._tree_
        d = len(self._attrs_)
        codes = np.zeros((num_rows, d), dtype=np.int64)
        for node in tree["order"]:
            parent = tree["parent"][node]
            if parent < 0:
                p = np.asarray(tree["root_probs"][str(node)])
                codes[:, node] = rng.choice(len(p), size=num_rows, p=p)
            else:
                cond = np.asarray(tree["conditionals"][str(node)])  # parent level x child
                cum = np.cumsum(cond, axis=1)
                u = rng.random(num_rows)[:, None]
                codes[:, node] = np.minimum(
                    (u > cum[codes[:, parent]]).sum(axis=1), cond.shape[1] - 1
                )
        return self._encode_codes(codes, rng)

    def _encode_codes(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros((len(codes), self._transformer_.output_dim), dtype=np.float32)
        for k, attr in enumerate(self._attrs_):
            c = codes[:, k]
            if attr["kind"] == "categorical":
                out[:, attr["start"]] = c
                continue
            if attr["kind"] == "empty":
                out[:, attr["start"] + 1] = 1.0
                continue
            edges = np.asarray(attr["edges"])
            bins = np.minimum(c, len(edges) - 2)
            out[:, attr["start"]] = edges[bins] + rng.random(len(c)) * (
                edges[bins + 1] - edges[bins]
            )
            if attr["nulls"]:
                missing = c == attr["size"] - 1
                out[:, attr["start"] + 1] = ~missing
                out[:, attr["start"] + 2] = missing
        return out

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        attrs = [
            {**a, "edges": np.asarray(a["edges"]).tolist()} if "edges" in a else a
            for a in self._attrs_
        ]
        return {"attributes": attrs, "tree": self._tree_}, {"format": torch.zeros(1)}

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        _check_state(self, state)
        self._attrs_ = state["attributes"]
        self._tree_ = state["tree"]


# --------------------------------------------------------------------------- saved state
_MAX_SIZE = 1_000_000
_ATTR = S.mapping(
    {
        "column": S.text(10_000),
        "kind": S.text(20, choices=("categorical", "empty", "numeric")),
        "start": S.integer(0, 10**8),
        "size": S.integer(1, _MAX_SIZE),
        "edges": S.array(S.number(), min_len=2, max_len=100_000),
        "nulls": S.boolean(),
        "empty": S.boolean(),
    },
    required=("column", "kind", "start", "size"),
)
_STATE = S.mapping(
    {
        "attributes": S.array(_ATTR, max_len=100_000),
        "tree": S.mapping(
            {
                "parent": S.array(S.integer(-1, 100_000), max_len=100_000),
                "order": S.array(S.integer(0, 100_000), max_len=100_000),
                "conditionals": S.mapping(
                    values=S.array(S.array(S.number(0, 1), max_len=_MAX_SIZE), max_len=_MAX_SIZE),
                    keys=S.text(10),
                    max_len=100_000,
                ),
                "root_probs": S.mapping(
                    values=S.array(S.number(0, 1), min_len=1, max_len=_MAX_SIZE),
                    keys=S.text(10),
                    max_len=100_000,
                ),
            },
            required=("parent", "order", "conditionals", "root_probs"),
        ),
    },
    required=("attributes", "tree"),
)


def _check_state(model: DPMarginalSynthesizer, state: Any) -> None:
    """The saved attributes match the transformer and the tree is a tree over them, with
    distributions of the right sizes (a bundle is untrusted input)."""
    where = "model.json (dp_marginal)"
    S.check_json(state, _STATE, where)
    problems: list[str] = []
    attrs, tree = state["attributes"], state["tree"]
    start = 0
    learned = [(c, t) for c, t in model._transformer_.transformers_.items() if t.output_dim]
    if len(learned) != len(attrs):
        problems.append(f"{len(attrs)} attributes for the transformer's {len(learned)} columns")
    for k, ((column, t), attr) in enumerate(zip(learned, attrs, strict=False)):
        kind = "categorical" if t.kind == "categorical" else ("empty" if t.empty_ else "numeric")
        if attr["column"] != column or attr["kind"] != kind or attr["start"] != start:
            problems.append(f"attribute {k} is not the transformer's column {column!r}")
        elif kind == "categorical" and attr["size"] != len(t.levels_):
            problems.append(f"attribute {k} has {attr['size']} levels, its column {len(t.levels_)}")
        elif kind == "numeric" and (
            "edges" not in attr
            or attr["size"] != len(attr["edges"]) - 1 + bool(attr.get("nulls"))
            or bool(attr.get("nulls")) != bool(t.has_nulls_)
            or np.any(np.diff(attr["edges"]) < 0)
        ):
            problems.append(f"attribute {k} has bins that do not match its size")
        start += t.output_dim
    d = len(attrs)
    parent, order = tree["parent"], tree["order"]
    if len(parent) != d or sorted(order) != list(range(d)):
        problems.append("the tree must have one parent and one place in the order per attribute")
    elif not problems:
        seen: set[int] = set()
        for node in order:
            up = parent[node]
            if up >= d or (up >= 0 and up not in seen):
                problems.append(f"node {node}'s parent must come before it")
                break
            seen.add(node)
            size = attrs[node]["size"]
            if up < 0:
                probs = tree["root_probs"].get(str(node))
                if probs is None or len(probs) != size or abs(sum(probs) - 1.0) > 1e-6:
                    problems.append(f"root {node} needs {size} probabilities summing to 1")
            else:
                cond = tree["conditionals"].get(str(node))
                if (
                    cond is None
                    or len(cond) != attrs[up]["size"]
                    or any(len(row) != size for row in cond)
                ):
                    problems.append(
                        f"node {node} needs a {attrs[up]['size']} x {size} conditional table"
                    )
    if problems:
        S.raise_problems(problems, where)
