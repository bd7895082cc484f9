"""Gaussian copula: per-column marginals and one correlation matrix of normal scores.

Fitting ranks every column (random tie-breaks, so categories and discrete numbers occupy their
probability interval), turns ranks into normal scores, and estimates the correlation pairwise on
the rows where both columns are present. Missing values are variables of their own (the null
indicator), so missingness keeps its relation to the other columns. Sampling draws correlated
normals and maps each through its marginal's inverse CDF: a handful of vectorized array operations.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy import special

from clinsynth.metadata import Metadata
from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._marginals import FAMILIES, Marginal
from clinsynth.synthesizers._registry import register
from clinsynth.transform import SpanInfo


def _nearest_correlation(corr: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip negative eigenvalues and rescale to unit diagonal (a valid correlation matrix)."""
    corr = (corr + corr.T) / 2
    vals, vecs = np.linalg.eigh(corr)
    fixed = (vecs * np.maximum(vals, floor)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    fixed = fixed / np.outer(d, d)
    np.fill_diagonal(fixed, 1.0)
    return fixed


@register("gaussian_copula", aliases=("copula", "gaussiancopula", "gc"))
class GaussianCopulaSynthesizer(BaseSynthesizer):
    """Gaussian copula synthesizer: the fast baseline every other model is compared with.

    Parameters
    ----------
    metadata : Metadata
    default_distribution : {"auto", "norm", "lognorm", "gamma", "beta", "uniform", "empirical"}
        Marginal family of numerical and datetime columns. ``auto`` fits every parametric family
        by moments and keeps the best by KS distance if it is within 0.02 of the data, otherwise
        the empirical (quantile) marginal.
    numerical_distributions : dict, optional
        Per-column family overriding ``default_distribution``.
    **kwargs
        Common options of :class:`~clinsynth.synthesizers.BaseSynthesizer` (``random_state``,
        ``enforce_min_max_values``, ``locale``, ...).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, GaussianCopulaSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> age = rng.normal(60, 12, 300).round()
    >>> df = pd.DataFrame({"age": age, "sbp": (age * 0.6 + rng.normal(90, 8, 300)).round(),
    ...                    "sex": rng.choice(["F", "M"], 300)})
    >>> model = GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(df), random_state=0)
    >>> synthetic = model.fit(df).sample(500)
    >>> synthetic.shape
    (500, 3)
    """

    _transformer_options: ClassVar[dict[str, Any]] = {
        "numerical": "identity",
        "categorical": "label",
    }
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "default_distribution": (
            lambda v: v in ("auto", *FAMILIES),
            f"one of {('auto', *FAMILIES)}",
        ),
        "numerical_distributions": (
            lambda v: v is None or (isinstance(v, dict) and all(f in FAMILIES for f in v.values())),
            f"None or a dict of column to one of {FAMILIES}",
        ),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        default_distribution: str = "auto",
        numerical_distributions: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.default_distribution = default_distribution
        self.numerical_distributions = numerical_distributions

    # ------------------------------------------------------------------ layout
    def _variables(self) -> list[tuple[SpanInfo, int]]:
        """Each copula variable: its span and its start in the encoded vector."""
        out, start = [], 0
        for span in self._transformer_.output_info:
            out.append((span, start))
            start += span.dim
        return out

    # ------------------------------------------------------------------ fit
    def _fit(self, encoded: np.ndarray) -> None:
        rng = np.random.default_rng(self._fit_seed_)
        variables = self._variables()
        n = len(encoded)
        scores = np.full((n, len(variables)), np.nan)
        null_of: dict[str, np.ndarray] = {}
        for span, start in variables:
            if span.role == "null":
                null_of[span.column] = encoded[:, start + 1] > 0.5
        marginals: list[dict[str, Any]] = []
        overrides = self.numerical_distributions or {}
        for j, (span, start) in enumerate(variables):
            block = encoded[:, start : start + span.dim]
            if span.activation in ("label", "softmax"):
                codes = np.rint(block[:, 0]).astype(np.int64) if span.dim == 1 else block.argmax(1)
                size = span.n_levels if span.dim == 1 else span.dim
                freq = np.bincount(codes, minlength=size) / n
                marginals.append({"kind": "discrete", "cum": np.cumsum(freq)[:-1].tolist(),
                                  "size": int(size)})
                scores[:, j] = self._normal_scores(codes.astype(np.float64), rng)
            else:
                present = ~null_of.get(span.column, np.zeros(n, dtype=bool))
                values = block[present, 0].astype(np.float64)
                family = overrides.get(span.column, self.default_distribution)
                if len(values) == 0:
                    marginals.append({"kind": "continuous", **Marginal._empirical(
                        np.zeros(1)).to_dict()})
                    continue
                marginals.append({"kind": "continuous", **Marginal.fit(values, family).to_dict()})
                scores[present, j] = self._normal_scores(values, rng)
        self._marginals = marginals
        self._correlation = self._pairwise_correlation(scores)
        self._build_marginals()

    @staticmethod
    def _normal_scores(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Normal scores of the empirical CDF; tied values spread uniformly over their step
        (the same as ranking with random tie-breaks, in one sort)."""
        n = len(values)
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        below = np.concatenate([[0], np.cumsum(counts)[:-1]])
        u = (below[inverse] + rng.random(n) * counts[inverse]) / n
        return special.ndtri(np.clip(u, 0.5 / n, 1 - 0.5 / n))

    @staticmethod
    def _pairwise_correlation(scores: np.ndarray) -> np.ndarray:
        present = ~np.isnan(scores)
        filled = np.where(present, scores, 0.0)
        counts = present.T.astype(np.float64) @ present.astype(np.float64)
        # Scores are standard normal by construction, so E[z_i z_j] over the rows where both are
        # present estimates the correlation; too few shared rows means no evidence -> 0.
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (filled.T @ filled) / counts
        corr[counts < 10] = 0.0
        corr = np.nan_to_num(np.clip(corr, -1.0, 1.0))
        np.fill_diagonal(corr, 1.0)
        return _nearest_correlation(corr)

    def _build_marginals(self) -> None:
        self._fitted_marginals = [
            Marginal.from_dict(m) if m["kind"] == "continuous" else None for m in self._marginals
        ]
        self._cholesky = np.linalg.cholesky(
            _nearest_correlation(self._correlation) + 1e-10 * np.eye(len(self._correlation))
        ) if len(self._correlation) else np.zeros((0, 0))

    # ------------------------------------------------------------------ sample
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        k = len(self._marginals)
        # Variables in rows (k x n): each variable's scores are one contiguous array.
        g = rng.standard_normal((k, num_rows), dtype=np.float32)
        return self._decode_scores(self._cholesky.astype(np.float32) @ g)

    def _decode_scores(self, zt: np.ndarray) -> np.ndarray:
        """Normal scores (variables x rows) to the encoded matrix the transformer decodes."""
        variables = self._variables()
        n = zt.shape[1]
        # Column-major: each variable is written, and later decoded, as one contiguous column.
        out = np.zeros((n, self._transformer_.output_dim), dtype=np.float32, order="F")
        for j, ((span, start), marginal) in enumerate(zip(variables, self._marginals, strict=True)):
            z = zt[j]
            if marginal["kind"] == "discrete":
                # Level k owns the normal-score interval [ndtri(cum[k-1]), ndtri(cum[k])).
                cuts = special.ndtri(np.clip(marginal["cum"], 0.0, 1.0)).astype(np.float32)
                if len(cuts) <= 16:  # a few comparisons beat a binary search per value
                    codes = np.zeros(n, dtype=np.int64)
                    for cut in cuts:
                        codes += z >= cut
                else:
                    codes = np.searchsorted(cuts, z, side="right")
                if span.dim == 1:
                    out[:, start] = codes
                else:
                    out[np.arange(n), start + codes] = 1.0
            else:
                out[:, start] = self._fitted_marginals[j].ppf_z(z)
        return out

    # ------------------------------------------------------------------ introspection
    def get_learned_distributions(self) -> dict[str, dict[str, Any]]:
        """The marginal family and parameters chosen for each numerical/datetime column."""
        self._check_fitted()
        out = {}
        for (span, _), m in zip(self._variables(), self._marginals, strict=True):
            if m["kind"] == "continuous":
                params = {k: v for k, v in m["params"].items() if k not in ("x", "p")}
                out[span.column] = {"distribution": m["family"], "parameters": params}
        return out

    def get_correlation(self) -> pd.DataFrame:
        """The correlation matrix of normal scores, labelled by variable."""
        self._check_fitted()
        labels = [
            f"{span.column}{'#null' if span.role == 'null' else ''}"
            for span, _ in self._variables()
        ]
        return pd.DataFrame(self._correlation, index=labels, columns=labels)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"marginals": self._marginals}, {
            "correlation": torch.from_numpy(np.ascontiguousarray(self._correlation))
        }

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self._marginals = state["marginals"]
        self._correlation = tensors["correlation"].numpy().astype(np.float64)
        self._build_marginals()
