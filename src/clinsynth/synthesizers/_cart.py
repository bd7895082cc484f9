"""Sequential trees (CART): each column drawn from a decision tree grown on the columns before it.

The table's joint distribution is written as a chain, p(x1) p(x2 | x1) ... p(xk | x1..xk-1), as
the synthpop package's CART method does (Reiter 2005; Nowok, Raab and Dibben 2016); our own code.
Each conditional is one decision tree: a classification tree for a category or a missing-value
indicator, a regression tree on the normal scores of a number (fitted on the rows where it is
present). Sampling fills the columns in order: a row goes down each tree with the values it has
so far and draws the column from the leaf it lands in -- a level from the leaf's frequencies, a
normal score from a normal with the leaf's mean and spread, mapped to a value through the
column's marginal (the copula's, see ``_copula.fit_marginals``).

Trees find interactions, thresholds and deterministic relations on their own (a metastatic
cancer is a malignancy history; a prognosis that depends on a score in one disease group only),
which is what detectors see first in the Gaussian copula's rows. Fitting is one tree per column
(seconds); sampling is one vectorized walk down each tree.

What is saved holds no one patient's row: every leaf holds at least ``min_leaf`` training rows
(default 5, never fewer than the rare-category threshold); a leaf keeps only the frequencies, or
the mean and spread of the normal scores, of its rows; numbers come back through the column's
marginal; split points are cut points of normal scores (ranks), not values.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from scipy import special

from clinsynth.errors import parameter_error
from clinsynth.metadata import Metadata
from clinsynth.synthesizers._base import BaseSynthesizer, _is_int
from clinsynth.synthesizers._cart_state import Tree, check_state
from clinsynth.synthesizers._conditioning import Candidates, encoded_targets
from clinsynth.synthesizers._copula import fit_marginals
from clinsynth.synthesizers._marginals import Marginal
from clinsynth.synthesizers._registry import register
from clinsynth.transform import SpanInfo

#: Where a missing number sits for the trees (below every normal score).
_MISSING = -10.0
#: Rows per leaf grow with the table, so a tree has at most about this many leaves.
_LEAVES = 4_000
#: Draws per requested row when conditions are met by resampling (sequential importance).
_PARTICLES = 4
#: ``min_leaf="auto"`` keeps the smallest leaf size whose held-out DCR share is at most this
#: (plus its standard error): the level at which the evaluation flags memorization.
_DCR_LIMIT = 0.55
#: Tables too small to measure the share on: leaves of a twentieth of the rows.
_SEARCH_MIN_ROWS = 150
_SMALL_TABLE_LEAVES = 20


def _codes(encoded: np.ndarray, span: SpanInfo, start: int) -> np.ndarray:
    block = encoded[:, start : start + span.dim]
    if span.dim == 1:
        return np.rint(block[:, 0]).astype(np.int64)
    return block.argmax(1).astype(np.int64)


def _levels(span: SpanInfo) -> int:
    return int(span.n_levels if span.dim == 1 else span.dim)


def _is_discrete(span: SpanInfo) -> bool:
    return span.activation in ("label", "softmax")


@register("cart", aliases=("trees", "sequential_trees"))
class CARTSynthesizer(BaseSynthesizer):
    """Sequential decision trees: one tree per column, given the columns before it.

    Parameters
    ----------
    metadata : Metadata
    min_leaf : int or "auto"
        Fewest training rows a leaf holds, never fewer than the rare-category threshold (5).
        ``auto`` (default): the smallest size, growing by sqrt(2) from
        ``max(5, rows // 4000)``, whose rows are no nearer to the training rows than to
        held-out ones (DCR share plus its standard error at most 0.55, measured on a held-out
        slice or three folds; tables under 150 rows: a twentieth of the rows). The choice and
        its measurements: ``min_leaf_`` and ``leaf_search_``. Larger: smoother, less faithful
        rows.
    **kwargs
        Common options of :class:`~clinsynth.synthesizers.BaseSynthesizer` (``random_state``,
        ``constraints``, ``refine``, ...).

    Notes
    -----
    The order of the chain: ``condition_column`` first, then categories and missing-value
    indicators, then numbers and dates, each group in the table's column order. Conditions
    are met natively: the chain is drawn with more rows than asked, each row weighted by the
    probability its leaf gives the condition, and resampled (sequential importance
    resampling). ``auto`` gives its ``target`` as the condition column.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, CARTSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> age = rng.normal(60, 12, 300).round()
    >>> df = pd.DataFrame({"age": age, "sbp": (age * 0.6 + rng.normal(90, 8, 300)).round(),
    ...                    "sex": rng.choice(["F", "M"], 300)})
    >>> model = CARTSynthesizer(Metadata.detect_from_dataframe(df), random_state=0)
    >>> model.fit(df).sample(500).shape
    (500, 3)
    """

    _transformer_options: ClassVar[dict[str, Any]] = {
        "numerical": "identity",
        "categorical": "label",
    }
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "min_leaf": (lambda v: v == "auto" or _is_int(1)(v), "'auto' or an int >= 1"),
        "condition_column": (lambda v: v is None or isinstance(v, str), "None or a column name"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        min_leaf: int | str = "auto",
        condition_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.min_leaf = min_leaf
        self.condition_column = condition_column

    def _validate_params(self) -> None:
        super()._validate_params()
        column = self.condition_column
        if column is not None:
            sdtype = self._table_metadata().columns.get(column, {}).get("sdtype")
            if sdtype is None or sdtype == "id":
                found = "not a column of the table" if sdtype is None else "an id column"
                raise parameter_error(
                    type(self).__name__,
                    "condition_column",
                    column,
                    "a column the model learns",
                    f"It is {found}.",
                )

    # ------------------------------------------------------------------ layout
    def _variables(self) -> list[tuple[SpanInfo, int]]:
        out, start = [], 0
        for span in self._transformer_.output_info:
            out.append((span, start))
            start += span.dim
        return out

    def _floor(self) -> int:
        return max(5, int(self.rare_category_threshold or 1))

    def _leaf_rows(self, n: int) -> int:
        """Rows per leaf for ``n`` training rows when ``min_leaf`` is a number, or before
        the choice of ``auto`` (:meth:`_choose_leaf`)."""
        if self.min_leaf == "auto":
            return max(self._floor(), n // _LEAVES)
        return max(self._floor(), int(self.min_leaf))

    # ------------------------------------------------------------------ fit
    def _fit(self, encoded: np.ndarray) -> None:
        rng = np.random.default_rng(self._fit_seed_)
        variables = self._variables()
        columns = self._table_metadata().columns
        k_of = {c: int(s["min_patients"]) for c, s in columns.items() if s.get("min_patients")}
        self._marginals_, scores = fit_marginals(encoded, variables, {}, "empirical", rng, k_of)
        features = scores.copy()
        discrete = [j for j, (span, _) in enumerate(variables) if _is_discrete(span)]
        for j in discrete:
            features[:, j] = _codes(encoded, *variables[j])
        features = np.where(np.isnan(features), _MISSING, features).astype(np.float32)
        self._order_ = self._chain_order(variables)
        self._prepare()
        self.leaf_search_: list[dict[str, float]] = []
        leaf = self._leaf_rows(len(encoded))
        if self.min_leaf == "auto":
            leaf = self._choose_leaf(encoded, features, scores, leaf, rng)
        self.min_leaf_ = leaf
        self._trees_ = self._grow(features, scores, leaf, rng)

    def _chain_order(self, variables: list[tuple[SpanInfo, int]]) -> list[int]:
        """``condition_column``'s variables, then the discrete ones, then the numbers."""
        discrete = [j for j, (span, _) in enumerate(variables) if _is_discrete(span)]
        order = discrete + [j for j in range(len(variables)) if j not in set(discrete)]
        first = [j for j in order if variables[j][0].column == self.condition_column]
        return first + [j for j in order if j not in set(first)]

    def _grow(
        self, features: np.ndarray, scores: np.ndarray, leaf: int, rng: np.random.Generator
    ) -> dict[int, Tree]:
        """One tree per variable, on the variables before it in the chain."""
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        variables = self._variables()
        trees: dict[int, Tree] = {}
        for position, j in enumerate(self._order_):
            span = variables[j][0]
            before = self._order_[:position]
            seed = int(rng.integers(2**31 - 1))
            levels = _levels(span) if _is_discrete(span) else 0
            if levels:
                rows = np.arange(len(features))
                target = features[:, j].astype(np.int64)
                model: Any = DecisionTreeClassifier(min_samples_leaf=leaf, random_state=seed)
            else:
                rows = np.flatnonzero(~np.isnan(scores[:, j]))
                target = scores[rows, j]
                model = DecisionTreeRegressor(min_samples_leaf=leaf, random_state=seed)
            if len(rows) == 0:
                trees[j] = Tree.constant(levels)
                continue
            x = features[np.ix_(rows, before)] if before else np.zeros((len(rows), 1), np.float32)
            model.fit(x, target)
            trees[j] = Tree.from_sklearn(model, before, x, target, levels)
        return trees

    def _choose_leaf(
        self,
        encoded: np.ndarray,
        features: np.ndarray,
        scores: np.ndarray,
        smallest: int,
        rng: np.random.Generator,
    ) -> int:
        """``min_leaf="auto"``: the smallest leaf size whose rows do not sit nearer to the
        training rows than to unseen ones.

        Small leaves copy their few rows' combinations: measured on held-out rows, the DCR
        share (the evaluation's own, :func:`~clinsynth.evaluation._membership.dcr_share`) of
        trees with leaves of 5 rows reached 0.69 on a 640-row table. Each candidate size
        (5, 7, 10, 14, 20, ...: growing by sqrt(2)) is grown on the rows outside a fold,
        sampled, and its DCR share measured against those rows and the fold's; the first
        whose share is below ``_DCR_LIMIT`` by at least its standard error is kept (privacy
        first: a noisy measurement buys larger leaves), scaled to the whole table's rows; if
        none, the largest. Folds: one slice of a fifth (at most 2,000 rows) on tables of 2,000 rows
        or more; three thirds below (the share of ~100 held-out rows alone is too noisy to act
        on). Each fold is compared with three times as many synthetic rows (at most 4,000).
        """
        from clinsynth.evaluation._common import statistical_columns
        from clinsynth.evaluation._encoding import FeatureEncoder
        from clinsynth.evaluation._membership import dcr_share

        n = len(encoded)
        if n < _SEARCH_MIN_ROWS:
            return max(smallest, n // _SMALL_TABLE_LEAVES)
        # Sizes growing by a factor sqrt(2) (5, 7, 10, 14, 20, ...), up to an eighth of the rows.
        top = max(smallest, n // 8)
        candidates = sorted(
            {int(round(smallest * 2 ** (i / 2))) for i in range(16)} & set(range(smallest, top + 1))
        ) or [smallest]
        order = rng.permutation(n)
        if n >= 2000:
            folds = [order[: min(2000, n // 5)]]
        else:
            folds = list(np.array_split(order, 3))
        table = self._table_metadata()
        real = self._decode(encoded, np.random.default_rng(0))
        encoder = FeatureEncoder(table, statistical_columns(table)).fit(real)
        x_real = encoder.transform(real)
        chosen = candidates[-1]
        for leaf in candidates:
            shares, variances = [], []
            for fold in folds:
                inside = np.ones(n, dtype=bool)
                inside[fold] = False
                scale = inside.sum() / n
                self._trees_ = self._grow(
                    features[inside], scores[inside], max(self._floor(), int(leaf * scale)), rng
                )
                rows = self._decode(self._sample(min(len(fold) * 3, 4000), rng), rng)
                result = dcr_share(x_real[inside], x_real[fold], encoder.transform(rows))
                shares.append(result["dcr_share"])
                variances.append(result["dcr_share_se"] ** 2)
            share = float(np.mean(shares))
            se = float(np.sqrt(np.sum(variances)) / len(folds))
            self.leaf_search_.append({"min_leaf": leaf, "dcr_share": share, "dcr_share_se": se})
            if share + se <= _DCR_LIMIT:
                chosen = leaf
                break
        return chosen

    def _prepare(self) -> None:
        """Derived objects for sampling (not saved)."""
        self._fitted_marginals_ = [
            Marginal.from_dict(m) if m["kind"] == "continuous" else None for m in self._marginals_
        ]

    # ------------------------------------------------------------------ sample
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        out = self._chain(num_rows, {}, rng)
        assert out is not None  # only conditions can fail
        return out

    def _chain(
        self, num_rows: int, fixed: dict[int, Any], rng: np.random.Generator
    ) -> np.ndarray | None:
        """Rows drawn column by column; ``fixed``: variable -> a level or a normal-score
        interval the rows must meet (drawn with ``_PARTICLES`` times the rows, resampled at each
        conditioned column by the probability its leaf gives the condition). None when no row
        can meet the conditions."""
        variables = self._variables()
        draws = num_rows * (_PARTICLES if fixed else 1)
        values = np.zeros((draws, len(variables)), dtype=np.float32)
        present = np.ones((draws, len(variables)), dtype=bool)
        null_of = {span.column: j for j, (span, _) in enumerate(variables) if span.role == "null"}
        for j in self._order_:
            span = variables[j][0]
            tree = self._trees_[j]
            leaves = tree.leaf_of(values)
            if _is_discrete(span):
                probs = tree.probs[leaves]
                if j in fixed:
                    weight = probs[:, fixed[j]]
                    keep = _resample(weight, rng)
                    if keep is None:
                        return None
                    values, present = values[keep], present[keep]
                    values[:, j] = fixed[j]
                else:
                    cum = np.cumsum(probs, axis=1)
                    u = rng.random(len(values))[:, None] * cum[:, -1:]
                    values[:, j] = np.minimum((u >= cum).sum(1), probs.shape[1] - 1)
                continue
            nulls = null_of.get(span.column)
            if nulls is not None:
                present[:, j] = values[:, nulls] == 0
            mean, sd = tree.mean[leaves], tree.sd[leaves]
            low = np.full(len(values), -np.inf)
            high = np.full(len(values), np.inf)
            if j in fixed:
                low[:], high[:] = fixed[j]
                weight = special.ndtr((high - mean) / sd) - special.ndtr((low - mean) / sd)
                keep = _resample(np.where(present[:, j], weight, 0.0), rng)
                if keep is None:
                    return None  # type: ignore[return-value]
                values, present = values[keep], present[keep]
                low, high, mean, sd = low[keep], high[keep], mean[keep], sd[keep]
            z = _truncated_normal(mean, sd, low, high, rng)
            values[:, j] = np.where(present[:, j], z, _MISSING)
        if fixed:
            values = values[rng.permutation(len(values))[:num_rows]]
        return self._encode(values)

    def _encode(self, values: np.ndarray) -> np.ndarray:
        variables = self._variables()
        n = len(values)
        out = np.zeros((n, self._transformer_.output_dim), dtype=np.float32, order="F")
        for j, (span, start) in enumerate(variables):
            if _is_discrete(span):
                codes = values[:, j].astype(np.int64)
                if span.dim == 1:
                    out[:, start] = codes
                else:
                    out[np.arange(n), start + codes] = 1.0
            else:
                z = np.where(values[:, j] == _MISSING, 0.0, values[:, j])
                out[:, start] = self._fitted_marginals_[j].ppf_z(z)
        return out

    # ------------------------------------------------------------------ conditions
    def conditioning(self) -> Candidates:
        """Sequential importance resampling: each tree is drawn with the condition's leaves or
        intervals fixed."""
        return Candidates("sequential importance", self._sample_conditioned)

    def _sample_conditioned(
        self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator
    ) -> np.ndarray | None:
        fixed = self._fixed(parsed)
        if fixed is None:
            return None
        return self._chain(num_rows, fixed, rng)

    def _fixed(self, parsed: dict[str, Any]) -> dict[int, Any] | None:
        """Each condition as a level (category) or a normal-score interval (number); None when
        one cannot be expressed so (rejection then meets it)."""
        targets = encoded_targets(self._transformer_, self._variables(), parsed)
        if targets is None:
            return None
        fixed: dict[int, Any] = {}
        for j, target in targets.items():
            if target[0] == "range":
                fixed[j] = self._fitted_marginals_[j].z_bounds(target[1], target[2])
            else:
                fixed[j] = target[1]
        return fixed

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {
            "marginals": self._marginals_,
            "order": self._order_,
            "min_leaf": self.min_leaf_,
            "leaf_search": self.leaf_search_,
        }
        tensors: dict[str, Any] = {}
        for j, tree in self._trees_.items():
            for name, array in tree.arrays().items():
                tensors[f"tree_{j}_{name}"] = torch.from_numpy(np.ascontiguousarray(array))
        return state, tensors

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self._trees_ = check_state(self, state, tensors)
        self._marginals_ = state["marginals"]
        self._order_ = list(state["order"])
        self.min_leaf_ = int(state["min_leaf"])
        self.leaf_search_ = [dict(row) for row in state["leaf_search"]]
        self._prepare()


def _resample(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Indices of rows drawn in proportion to ``weight``; None when no row can meet it."""
    total = float(weight.sum())
    if not np.isfinite(total) or total <= 0:
        return None
    return rng.choice(len(weight), size=len(weight), p=weight / total)


def _truncated_normal(
    mean: np.ndarray, sd: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Normal draws cut to ``[low, high]`` by the inverse CDF; uniform where the normal puts
    (numerically) nothing in the interval."""
    u = rng.random(len(mean))
    if np.isinf(low).all() and np.isinf(high).all():
        return mean + sd * special.ndtri(np.clip(u, 1e-15, 1 - 1e-15))
    a = special.ndtr((low - mean) / sd)
    b = special.ndtr((high - mean) / sd)
    z = mean + sd * special.ndtri(np.clip(a + u * (b - a), 1e-15, 1 - 1e-15))
    flat = (b - a) < 1e-12
    if flat.any():
        lo = np.where(np.isfinite(low), low, high - 1.0)
        hi = np.where(np.isfinite(high), high, low + 1.0)
        z[flat] = lo[flat] + u[flat] * (hi[flat] - lo[flat])
    return np.clip(z, low, high)
