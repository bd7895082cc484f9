"""Gaussian copula: per-column marginals and one correlation matrix of normal scores.

Fitting ranks every column (tied values spread over their step, so categories and discrete
numbers occupy their probability interval), turns ranks into normal scores, and estimates the
correlation pairwise on the rows where both columns are present. Missing values are variables of
their own (the null indicator), so missingness keeps its relation to the other columns. Sampling
draws correlated normals and maps each through its marginal's inverse CDF: a handful of vectorized
array operations.

One Gaussian cannot express that each level of a nominal column (healthy, diabetes,
hypertension...) shifts *different* columns. So the copula is *stratified*: one copula per level
of the categorical column that explains most of the numbers (chosen automatically, or named with
``stratify_by``), a mixture whose weights are the level frequencies. Conditioning on that column
then gives exactly that stratum's joint distribution.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy import special

from clinsynth._search import GridSearch
from clinsynth._utils import one_blas_thread
from clinsynth.metadata import Metadata
from clinsynth.privacy._safe_values import microaggregate
from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._conditioning import Candidates, encoded_targets
from clinsynth.synthesizers._copula_state import check_state
from clinsynth.synthesizers._marginals import FAMILIES, Marginal
from clinsynth.synthesizers._registry import register
from clinsynth.transform import SpanInfo

#: A stratum needs this many rows per copula variable (and at least MIN_STRATUM_ROWS) to get a
#: copula of its own; smaller levels share a pooled copula. A k x k correlation matrix and k
#: marginals fitted on fewer rows describe those rows more than the population: on the 209-row
#: heart failure and 398-row breast cancer tables (13 and 31 variables), strata of 64-252 rows
#: put the DCR share about 0.03 higher (mean over five splits) than one copula.
ROWS_PER_VARIABLE = 5
MIN_STRATUM_ROWS = 50
#: Mean share of variance a column must explain to be used for stratification.
MIN_STRATIFY_ETA2 = 0.02
MAX_STRATA = 12


def _nearest_correlation(corr: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip negative eigenvalues and rescale to unit diagonal (a valid correlation matrix)."""
    corr = (corr + corr.T) / 2
    vals, vecs = np.linalg.eigh(corr)
    fixed = (vecs * np.maximum(vals, floor)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    fixed = fixed / np.outer(d, d)
    np.fill_diagonal(fixed, 1.0)
    return fixed


def _positive_definite(cov: np.ndarray, floor: float = 1e-9) -> np.ndarray:
    cov = (cov + cov.T) / 2
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.maximum(vals, floor)) @ vecs.T


def _normal_scores(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normal scores of the empirical CDF; tied values spread uniformly over their step (the same
    as ranking with random tie-breaks, in one sort)."""
    n = len(values)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    u = (below[inverse] + rng.random(n) * counts[inverse]) / n
    return special.ndtri(np.clip(u, 0.5 / n, 1 - 0.5 / n))


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


def fit_marginals(
    encoded: np.ndarray,
    variables: list[tuple[SpanInfo, int]],
    families: dict[str, str],
    default: str,
    rng: np.random.Generator,
    min_patients: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Each variable's marginal (as saved) and the rows' normal scores (n x variables).

    Discrete variables (levels, null indicators) get their level frequencies and scores spread
    over each level's interval; continuous ones a fitted :class:`Marginal` (on values held by at
    least ``min_patients[column]`` rows) and normal scores, NaN where the value is missing.
    Shared by the copula and the adversarial random forest.
    """
    n = len(encoded)
    scores = np.full((n, len(variables)), np.nan)
    null_of = {
        span.column: encoded[:, start + 1] > 0.5 for span, start in variables if span.role == "null"
    }
    marginals: list[dict[str, Any]] = []
    for j, (span, start) in enumerate(variables):
        block = encoded[:, start : start + span.dim]
        if span.activation in ("label", "softmax"):
            codes = np.rint(block[:, 0]).astype(np.int64) if span.dim == 1 else block.argmax(1)
            size = span.n_levels if span.dim == 1 else span.dim
            freq = np.bincount(codes, minlength=size) / max(n, 1)
            marginals.append(
                {"kind": "discrete", "cum": np.cumsum(freq)[:-1].tolist(), "size": int(size)}
            )
            scores[:, j] = _normal_scores(codes.astype(np.float64), rng)
            continue
        present = ~null_of.get(span.column, np.zeros(n, dtype=bool))
        values = block[present, 0].astype(np.float64)
        if len(values) == 0:
            marginals.append({"kind": "continuous", **Marginal._empirical(np.zeros(1)).to_dict()})
            continue
        family = families.get(span.column, default)
        # The saved marginal is fitted to values each held by at least min_patients rows
        # (its points, bounds and parameters hold no one patient's value); the scores use
        # the real ones.
        k = (min_patients or {}).get(span.column, 1)
        safe = microaggregate(values, k, interior=False)
        # Steps only for values that repeat (a score, a count): merged continuous values
        # would come out as lumps at the merged points; they get interpolated quantiles.
        discrete = None if k <= 1 else 2 * len(np.unique(values)) <= len(values)
        fitted = Marginal.fit(safe, family, discrete)
        marginals.append({"kind": "continuous", **fitted.to_dict()})
        scores[present, j] = _normal_scores(values, rng)
    return marginals, scores


def _level_search(cuts: np.ndarray | None) -> tuple[int, GridSearch] | None:
    """For a discrete variable of more than 3 cuts: the cuts at -inf (levels of no mass, below
    every score) and a grid search over the finite ones (a score is never +inf)."""
    if cuts is None or len(cuts) <= 3:
        return None
    finite = cuts[np.isfinite(cuts)]
    return int(np.sum(cuts == -np.inf)), GridSearch(finite.astype(np.float64), side="right")


class _Copula:
    """One Gaussian copula over the encoded variables (a stratum of the synthesizer)."""

    def __init__(self, marginals: list[dict[str, Any]], correlation: np.ndarray) -> None:
        self.marginals = marginals
        self.correlation = correlation
        self.fitted = [
            Marginal.from_dict(m) if m["kind"] == "continuous" else None for m in marginals
        ]
        self.cuts = [
            special.ndtri(np.clip(m["cum"], 0.0, 1.0)).astype(np.float32)
            if m["kind"] == "discrete"
            else None
            for m in marginals
        ]
        # Many levels: the level of a score by a grid index, not a comparison per level.
        self.levels = [_level_search(cuts) for cuts in self.cuts]
        k = len(correlation)
        self.cholesky = (
            np.linalg.cholesky(_nearest_correlation(correlation) + 1e-10 * np.eye(k))
            if k
            else np.zeros((0, 0))
        ).astype(np.float32)

    # -------------------------------------------------------------- fit
    @classmethod
    def fit(
        cls,
        encoded: np.ndarray,
        variables: list[tuple[SpanInfo, int]],
        families: dict[str, str],
        default: str,
        rng: np.random.Generator,
        min_patients: dict[str, int] | None = None,
    ) -> _Copula:
        marginals, scores = fit_marginals(encoded, variables, families, default, rng, min_patients)
        return cls(marginals, _pairwise_correlation(scores))

    # -------------------------------------------------------------- sample
    def sample_scores(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Correlated normal scores, variables in rows (k x n)."""
        g = rng.standard_normal((len(self.marginals), n), dtype=np.float32)
        with one_blas_thread():
            return self.cholesky @ g

    def interval_mass(self, intervals: dict[int, tuple[float, float]]) -> float:
        """Probability of the intervals, variables taken one at a time (exact for one)."""
        mass = 1.0
        for a, b in intervals.values():
            mass *= float(special.ndtr(b) - special.ndtr(a))
        return mass

    def conditioned_scores(
        self, n: int, intervals: dict[int, tuple[float, float]], rng: np.random.Generator
    ) -> np.ndarray:
        """Scores with the conditioned variables inside their intervals.

        Conditioned variables are drawn one after another from their truncated conditional
        normals (inverse CDF; exact for one variable); with several, the draws are weighted by the
        probability each later interval had and resampled, which removes the order bias. The other
        variables follow the Gaussian conditional given the conditioned ones, so a rare condition
        costs no rejection.
        """
        cond = sorted(intervals)
        rest = [j for j in range(len(self.marginals)) if j not in intervals]
        sigma = self.correlation
        draws = n * (4 if len(cond) > 1 else 1)
        zc = np.zeros((draws, len(cond)))
        log_w = np.zeros(draws)
        for i, j in enumerate(cond):
            prev = cond[:i]
            if prev:
                coef = np.linalg.solve(sigma[np.ix_(prev, prev)], sigma[j, prev])
                mean = zc[:, :i] @ coef
                sd = float(np.sqrt(max(sigma[j, j] - sigma[j, prev] @ coef, 1e-12)))
            else:
                mean, sd = np.zeros(draws), 1.0
            a, b = intervals[j]
            pa, pb = special.ndtr((a - mean) / sd), special.ndtr((b - mean) / sd)
            u = pa + rng.random(draws) * (pb - pa)
            zc[:, i] = mean + sd * special.ndtri(np.clip(u, 1e-15, 1 - 1e-15))
            if prev:
                log_w += np.log(np.maximum(pb - pa, 1e-300))
        if len(cond) > 1:
            weights = np.exp(log_w - log_w.max())
            zc = zc[rng.choice(draws, size=n, p=weights / weights.sum())]
        z = np.zeros((len(self.marginals), n), dtype=np.float32)
        z[cond] = zc.T
        if rest:
            s_rc = sigma[np.ix_(rest, cond)]
            coef = np.linalg.solve(sigma[np.ix_(cond, cond)], s_rc.T).T
            cov = sigma[np.ix_(rest, rest)] - coef @ s_rc.T
            noise = np.linalg.cholesky(_positive_definite(cov)) @ rng.standard_normal(
                (len(rest), n)
            )
            z[rest] = (coef @ zc.T + noise).astype(np.float32)
        return z

    # -------------------------------------------------------------- decode
    def decode(
        self,
        zt: np.ndarray,
        variables: list[tuple[SpanInfo, int]],
        out: np.ndarray,
        rows: slice | np.ndarray,
    ) -> None:
        """Write the encoded values of scores ``zt`` into ``out[rows]`` (a slice or row
        indices)."""
        n = zt.shape[1]
        for j, (span, start) in enumerate(variables):
            z = zt[j]
            cuts = self.cuts[j]
            if cuts is not None:
                # Level k owns the normal-score interval [cut[k-1], cut[k]).
                if self.levels[j] is None:  # a few comparisons beat any search
                    codes = np.zeros(n, dtype=np.int32)
                    for cut in cuts:
                        codes += z >= cut
                else:
                    before, search = self.levels[j]
                    codes = search(z) + before
                if span.dim == 1:
                    out[rows, start] = codes
                else:  # one-hot, written column by column (each contiguous in ``out``)
                    for level in range(span.dim):
                        out[rows, start + level] = codes == level
            else:
                out[rows, start] = self.fitted[j].ppf_z(z)

    def to_json(self) -> dict[str, Any]:
        return {"marginals": self.marginals}


@register("gaussian_copula", aliases=("copula", "gaussiancopula", "gc"))
class GaussianCopulaSynthesizer(BaseSynthesizer):
    """Gaussian copula synthesizer: the fast baseline every other model is compared with.

    Parameters
    ----------
    metadata : Metadata
    default_distribution : {"auto", "norm", "lognorm", "gamma", "beta", "uniform", "empirical", \
"kde"}
        Marginal family of numerical and datetime columns. ``auto`` fits every parametric family
        by moments and keeps the best by KS distance if it is within 0.02 of the data, otherwise
        the empirical (quantile) marginal. ``kde``: a kernel-smoothed empirical marginal, so that
        no training value comes back verbatim (at some cost in fidelity).
    numerical_distributions : dict, optional
        Per-column family overriding ``default_distribution``.
    stratify_by : str, "auto" or None
        A categorical column with one copula per level (a mixture). ``auto`` picks the column
        whose levels explain the most variance of the other columns, if any explains enough;
        None fits one copula.
    **kwargs
        Common options of :class:`~clinsynth.synthesizers.BaseSynthesizer` (``random_state``,
        ``constraints``, ``enforce_min_max_values``, ``locale``, ...).

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
        "stratify_by": (lambda v: v is None or isinstance(v, str), "None, 'auto' or a column name"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        default_distribution: str = "auto",
        numerical_distributions: dict[str, str] | None = None,
        stratify_by: str | None = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.default_distribution = default_distribution
        self.numerical_distributions = numerical_distributions
        self.stratify_by = stratify_by

    # ------------------------------------------------------------------ layout
    def _variables(self) -> list[tuple[SpanInfo, int]]:
        """Each copula variable: its span and its start in the encoded vector."""
        out, start = [], 0
        for span in self._transformer_.output_info:
            out.append((span, start))
            start += span.dim
        return out

    def _label_index(self, column: str) -> int | None:
        for j, (span, _) in enumerate(self._variables()):
            if span.column == column and span.role == "category" and span.activation == "label":
                return j
        return None

    # ------------------------------------------------------------------ stratification
    def _choose_stratum_column(self, encoded: np.ndarray) -> str | None:
        from clinsynth.errors import parameter_error

        variables = self._variables()
        if self.stratify_by is None:
            return None
        if self.stratify_by != "auto":
            if self._label_index(self.stratify_by) is None:
                raise parameter_error(
                    type(self).__name__,
                    "stratify_by",
                    self.stratify_by,
                    "None, 'auto' or a categorical column",
                )
            return self.stratify_by
        n, k = len(encoded), len(variables)
        min_rows = max(MIN_STRATUM_ROWS, ROWS_PER_VARIABLE * k)
        values = (
            np.column_stack(
                [encoded[:, start] for span, start in variables if span.activation == "linear"]
            )
            if any(span.activation == "linear" for span, _ in variables)
            else None
        )
        if values is None or n < 2 * min_rows:
            return None
        # Rank-transform so outliers do not decide; then eta^2 per numeric variable.
        ranks = np.argsort(np.argsort(values, axis=0), axis=0).astype(np.float64)
        ranks -= ranks.mean(axis=0)
        total = (ranks**2).sum(axis=0) + 1e-12
        best, best_score = None, MIN_STRATIFY_ETA2
        for span, start in variables:
            if span.activation != "label" or span.role != "category":
                continue
            if not 2 <= span.n_levels <= MAX_STRATA:
                continue
            codes = np.rint(encoded[:, start]).astype(np.int64)
            counts = np.bincount(codes, minlength=span.n_levels)
            if np.sort(counts)[-2] < min_rows:  # fewer than two levels big enough
                continue
            sums = np.zeros((span.n_levels, ranks.shape[1]))
            np.add.at(sums, codes, ranks)
            between = (sums**2 / np.maximum(counts, 1)[:, None]).sum(axis=0)
            score = float(np.mean(between / total))
            if score > best_score:
                best, best_score = span.column, score
        return best

    def _strata(self, codes: np.ndarray, n_levels: int, k: int) -> list[list[int]]:
        """Levels grouped into strata: each big level alone, the small ones pooled."""
        counts = np.bincount(codes, minlength=n_levels)
        min_rows = max(MIN_STRATUM_ROWS, ROWS_PER_VARIABLE * k)
        big = [[lvl] for lvl in range(n_levels) if counts[lvl] >= min_rows]
        small = [lvl for lvl in range(n_levels) if 0 < counts[lvl] < min_rows]
        return big + ([small] if small else [])

    # ------------------------------------------------------------------ fit
    def _encode_for_fit(self, data: pd.DataFrame) -> np.ndarray:
        # float64: the marginals' points are the exact values, so sampled rows need no snapping
        # back from float32 (``_assemble``).
        return self._transformer_.transform(data, dtype=np.float64)

    def _fit(self, encoded: np.ndarray) -> None:
        self._exact_ = True
        rng = np.random.default_rng(self._fit_seed_)
        variables = self._variables()
        families = self.numerical_distributions or {}
        column = self._choose_stratum_column(encoded)
        self._stratum_column_ = column
        if column is None:
            self._groups_: list[list[int]] = [[]]
            self._weights_ = np.array([1.0])
            self._copulas_ = [
                _Copula.fit(encoded, variables, families, self.default_distribution, rng, self._k())
            ]
            return
        start = variables[self._label_index(column)][1]
        codes = np.rint(encoded[:, start]).astype(np.int64)
        self._groups_ = self._strata(
            codes, variables[self._label_index(column)][0].n_levels, len(variables)
        )
        self._copulas_, weights = [], []
        for levels in self._groups_:
            rows = np.isin(codes, levels)
            weights.append(rows.mean())
            self._copulas_.append(
                _Copula.fit(
                    encoded[rows], variables, families, self.default_distribution, rng, self._k()
                )
            )
        self._weights_ = np.asarray(weights) / np.sum(weights)

    def _k(self) -> dict[str, int]:
        """Patients a saved extreme must belong to, per column (metadata ``min_patients``)."""
        columns = self._table_metadata().columns
        return {c: int(s["min_patients"]) for c, s in columns.items() if s.get("min_patients")}

    # ------------------------------------------------------------------ sample
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        counts = rng.multinomial(num_rows, self._weights_)
        return self._assemble(
            counts,
            [
                c.sample_scores(m, rng) if m else None
                for c, m in zip(self._copulas_, counts, strict=True)
            ],
            rng,
        )

    def _assemble(
        self, counts: np.ndarray, scores: list[np.ndarray | None], rng: np.random.Generator
    ) -> np.ndarray:
        variables = self._variables()
        total = int(counts.sum())
        # Column-major: each variable is written, and later decoded, as one contiguous column.
        # float64 when the marginals hold exact values: the transformer then takes them as they
        # are, where float32 values are snapped back to the column's frequent values (bundles
        # saved before the marginals were fitted on float64).
        dtype = np.float64 if getattr(self, "_exact_", False) else np.float32
        out = np.zeros((total, self._transformer_.output_dim), dtype=dtype, order="F")
        if len(self._copulas_) == 1:
            if total:
                self._copulas_[0].decode(scores[0], variables, out, slice(0, total))
            return out
        # Rows are not handed out ordered by stratum: each row's stratum is shuffled, and a
        # stratum's rows (exchangeable draws) fill its places in order. The same law as
        # permuting the rows, without gathering every column of the output.
        labels = np.repeat(np.arange(len(counts), dtype=np.int16), counts)
        rng.shuffle(labels)
        places = np.argsort(labels, kind="stable")
        start = 0
        for copula, m, zt in zip(self._copulas_, counts, scores, strict=True):
            if m:
                copula.decode(zt, variables, out, places[start : start + int(m)])
                start += int(m)
        return out

    # ------------------------------------------------------------------ conditions
    def _condition_intervals(
        self, copula: _Copula, parsed: dict[str, Any], levels: list[int]
    ) -> dict[int, tuple[float, float]] | None:
        """Normal-score interval of each conditioned variable in ``copula``; None if a condition
        cannot be expressed as intervals; an empty interval when the stratum cannot meet it."""
        targets = encoded_targets(self._transformer_, self._variables(), parsed)
        if targets is None:
            return None
        intervals: dict[int, tuple[float, float]] = {}
        for j, target in targets.items():
            if target[0] == "range":
                intervals[j] = copula.fitted[j].z_bounds(target[1], target[2])
                continue
            cum = np.asarray(copula.marginals[j]["cum"])
            cuts = np.concatenate([[-np.inf], special.ndtri(np.clip(cum, 0, 1)), [np.inf]])
            a, b = float(cuts[target[1]]), float(cuts[target[1] + 1])
            intervals[j] = (a, b) if b > a else (0.0, 0.0)
        return intervals

    def sample_given_context(
        self,
        context: pd.DataFrame,
        rng: np.random.Generator,
        *,
        rows: np.ndarray | None = None,
        axis: np.ndarray | None = None,
        strata: list[dict] | None = None,
    ) -> pd.DataFrame:
        """Exactly conditioned on the context: the context columns' normal scores fixed, the
        other variables drawn from the conditional normal (``_copula_context.py``)."""
        from clinsynth.synthesizers._copula_context import copula_conditioned, fitted_copulas

        rows = np.arange(len(context)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(context.columns) == 0 or len(rows) == 0 or fitted_copulas(self) is None:
            return super().sample_given_context(context, rng, rows=rows, axis=axis)
        return copula_conditioned(self, context, rng, rows=rows, strata=strata)

    def context_strata(self, frame: pd.DataFrame, columns: list[str]) -> list[dict]:
        """Mean and covariance of the context columns in each stratum (several strata only)."""
        from clinsynth.synthesizers._copula_context import strata_statistics

        return strata_statistics(self, frame, columns)

    def conditioning(self) -> Candidates:
        """Truncation: the Gaussian conditioned on normal-score intervals, each stratum weighted by
        the probability it gives the condition."""
        return Candidates("truncation", self._sample_conditioned)

    def _sample_conditioned(
        self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator
    ) -> np.ndarray | None:
        """Native conditioning: each stratum is weighted by the probability it gives the
        condition, then sampled inside the condition's normal-score intervals."""
        per_copula = []
        for copula, levels in zip(self._copulas_, self._groups_, strict=True):
            intervals = self._condition_intervals(copula, parsed, levels)
            if intervals is None:
                return None
            per_copula.append(intervals)
        mass = np.array(
            [
                w * c.interval_mass(iv)
                for w, c, iv in zip(self._weights_, self._copulas_, per_copula, strict=True)
            ]
        )
        if mass.sum() <= 0:
            return None  # let rejection report that the condition cannot be met
        counts = rng.multinomial(num_rows, mass / mass.sum())
        scores = [
            c.conditioned_scores(int(m), iv, rng) if m else None
            for c, m, iv in zip(self._copulas_, counts, per_copula, strict=True)
        ]
        return self._assemble(counts, scores, rng)

    # ------------------------------------------------------------------ introspection
    def get_learned_distributions(self) -> dict[str, dict[str, Any]]:
        """The marginal family and parameters chosen for each numerical/datetime column (of the
        largest stratum when the copula is stratified)."""
        self._check_fitted()
        main = self._copulas_[int(np.argmax(self._weights_))]
        out = {}
        for (span, _), m in zip(self._variables(), main.marginals, strict=True):
            if m["kind"] == "continuous":
                params = {k: v for k, v in m["params"].items() if k not in ("x", "p")}
                out[span.column] = {"distribution": m["family"], "parameters": params}
        return out

    def get_correlation(self, stratum: int | None = None) -> pd.DataFrame:
        """The correlation matrix of normal scores (of one stratum; the largest by default)."""
        self._check_fitted()
        index = int(np.argmax(self._weights_)) if stratum is None else stratum
        labels = [
            f"{span.column}{'#null' if span.role == 'null' else ''}"
            for span, _ in self._variables()
        ]
        return pd.DataFrame(self._copulas_[index].correlation, index=labels, columns=labels)

    @property
    def stratified_by_(self) -> str | None:
        """The column the copula is stratified by (None when it is a single copula)."""
        self._check_fitted()
        return self._stratum_column_

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {
            "stratum_column": self._stratum_column_,
            "groups": self._groups_,
            "weights": self._weights_.tolist(),
            "copulas": [c.to_json() for c in self._copulas_],
            "exact_values": bool(getattr(self, "_exact_", False)),
        }
        tensors = {
            f"correlation_{i}": torch.from_numpy(np.ascontiguousarray(c.correlation))
            for i, c in enumerate(self._copulas_)
        }
        return state, tensors

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        check_state(self, state, tensors)
        self._stratum_column_ = state["stratum_column"]
        self._groups_ = state["groups"]
        self._weights_ = np.asarray(state["weights"])
        # Absent from older bundles: their marginals hold float32-rounded values.
        self._exact_ = bool(state.get("exact_values", False))
        self._copulas_ = [
            _Copula(c["marginals"], tensors[f"correlation_{i}"].numpy().astype(np.float64))
            for i, c in enumerate(state["copulas"])
        ]
