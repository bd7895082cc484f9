"""Numerical columns: mode-specific normalization, normal scores, raw values (datetime columns
build on it in ``_datetime``).

Missing values get a null indicator span (softmax over {present, missing}) and are restored at the
learned rate; integers come back as integers, values are rounded to the learned number of decimals
and stay inside the observed range unless ``enforce_min_max=False``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from clinsynth._search import GridSearch
from clinsynth.errors import DataError, ParameterError
from clinsynth.io import _schema as S
from clinsynth.privacy._safe_values import merged_knots, microaggregate
from clinsynth.privacy._statistics import sample_from_histogram
from clinsynth.transform._base import (
    ColumnTransformer,
    SpanInfo,
    decode_choice,
    dtype_name,
    one_hot,
)

METHODS = ("mode", "quantile", "identity")
#: Largest magnitude float32 holds: raw values ("identity") beyond it would become infinite.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SQRT2 = np.sqrt(2.0)


# --------------------------------------------------------------------------- mixture model
def fit_gmm_1d(
    x: np.ndarray,
    max_components: int = 10,
    *,
    weight_threshold: float = 0.005,
    max_iter: int = 40,
    tol: float = 1e-5,
    max_rows: int = 10_000,
    rng: np.random.Generator | None = None,
    accept: Callable[[np.ndarray, np.ndarray, np.ndarray], bool] | None = None,
    select: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a 1-D Gaussian mixture by EM, with as few components as the data asks for.

    Mixtures of 1, 2, ... ``max_components`` components are fitted in turn and the one with the
    lowest Bayesian information criterion (BIC) is kept; the search stops once two more
    components in a row fail to lower it. Components lighter than ``weight_threshold`` are then
    dropped. A unimodal column thus gets one or two components rather than ``max_components``,
    which keeps the encoded width (and every network layer that reads it) small.

    EM runs on the distinct values weighted by their counts (the same likelihood as on every
    value, at a fraction of the cost for rounded clinical measurements), on at most
    ``max_rows`` values (a random subsample). ``accept(weights, means, stds)`` can refuse a
    fit (the transformer refuses one whose float32 encoding would not give the values back);
    then the best accepted fit by BIC is kept, trying up to ``max_components``, else the
    largest. ``select=False`` skips the search: ``max_components`` components (fewer only for
    fewer distinct values), light ones dropped. Returns ``(weights, means, stds)`` sorted by mean.

    >>> w, m, s = fit_gmm_1d(np.r_[np.zeros(500), np.ones(500) * 10] + 0.1)
    >>> sorted(np.round(m).tolist())
    [0.0, 10.0]
    >>> len(fit_gmm_1d(np.random.default_rng(0).normal(size=2000))[0])
    1
    """
    x = np.asarray(x, dtype=np.float64)
    rng = rng or np.random.default_rng(0)
    if len(x) > max_rows:
        x = rng.choice(x, max_rows, replace=False)
    spread = float(np.std(x))
    values, counts = np.unique(x, return_counts=True)
    if spread == 0.0 or len(values) == 1:
        return (
            np.array([1.0]),
            np.array([float(x[0])]),
            np.array([max(abs(float(x[0])), 1.0) * 1e-3]),
        )
    # A floor on the component width: discrete values must not collapse a component to zero.
    min_std = max(spread * 1e-3, float(np.min(np.diff(values))) / 4)
    n = len(x)
    w_counts = counts.astype(np.float64)
    # The search over k compares fits by BIC, which needs the log-likelihood to about a unit,
    # not to 1e-5 of itself: it runs EM to a looser tolerance, and only the fit kept is taken on
    # to ``tol`` (from where the search left it).
    search_tol = max(tol, 1e-4) if select else tol
    fits: list[tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
    raw: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    best, worse = np.inf, 0
    most = int(min(max_components, len(values)))
    for k in range(1 if select else most, most + 1):
        start = np.quantile(x, (np.arange(k) + 0.5) / k)
        w, m, s, ll = _em_1d(values, w_counts, start, spread / k, min_std, max_iter, search_tol)
        bic = -2.0 * ll + (3 * k - 1) * np.log(n)
        fits.append((bic, _prune(w, m, s, weight_threshold)))
        raw.append((w, m, s))
        if bic < best:
            best, worse = bic, 0
        else:
            worse += 1
            # Stop once two more components fail to help, unless no fit was accepted yet.
            if worse >= 2 and (accept is None or any(accept(*f) for _, f in fits)):
                break

    def refined(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if search_tol == tol:
            return fits[i][1]
        w, m, s = raw[i]
        w, m, s, _ = _em_1d(values, w_counts, m, s, min_std, max_iter, tol, weights=w)
        return _prune(w, m, s, weight_threshold)

    ranked = sorted(range(len(fits)), key=lambda i: fits[i][0])
    if accept is None:
        return refined(ranked[0])
    for i in ranked:
        if accept(*fits[i][1]):
            fit = refined(i)
            return fit if accept(*fit) else fits[i][1]
    if len(values) <= max_components:  # EM merged distinct values: one component for each
        weights = counts / counts.sum()
        return weights, values.astype(np.float64), np.full(len(values), min_std)
    return fits[-1][1]


def _prune(
    weights: np.ndarray, means: np.ndarray, stds: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop components lighter than ``threshold``; sort by mean."""
    keep = weights > threshold
    weights = weights[keep] / weights[keep].sum()
    order = np.argsort(means[keep])
    return weights[order], means[keep][order], stds[keep][order]


def _em_1d(
    values: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    std: float | np.ndarray,
    min_std: float,
    max_iter: int,
    tol: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM for a k-component mixture on weighted points; returns the fit and its log-likelihood.

    Starts from ``means`` with ``std`` (one value or one per component) and ``weights``
    (equal when None)."""
    k, n = len(means), counts.sum()
    stds = np.broadcast_to(np.asarray(std, dtype=np.float64), (k,)).copy()
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
    prev = -np.inf
    for _ in range(max_iter + 1):
        log_p = _log_gauss(values[:, None], means, stds) + np.log(weights)
        peak = log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p - peak)
        total = resp.sum(axis=1)
        ll = float(counts @ (np.log(total) + peak[:, 0]))
        if abs(ll - prev) < tol * max(1.0, abs(ll)) or _ == max_iter:
            break
        prev = ll
        resp *= (counts / total)[:, None]
        nk = resp.sum(axis=0) + 1e-10
        weights = nk / n
        means = (values @ resp) / nk
        var = (resp * (values[:, None] - means) ** 2).sum(axis=0) / nk
        stds = np.maximum(np.sqrt(var), min_std)
    return weights, means, stds, ll


def _log_gauss(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


# --------------------------------------------------------------------------- helpers
def detect_decimals(values: np.ndarray, max_decimals: int = 10) -> int | None:
    """The fewest decimals that represent every value, or None when there are more."""
    sample = values[:50_000]
    scale = np.maximum(1.0, np.abs(sample))
    for d in range(max_decimals + 1):
        if np.all(np.abs(sample - np.round(sample, d)) <= 1e-9 * scale):
            return d
    return None


def _to_float(series: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"Column '{column}' is declared numerical but {int(bad.sum())} values are not numbers "
            f"(first: {series.iloc[pos]!r} in row {pos + 1}). Declare it categorical or clean "
            "the values."
        )
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


# --------------------------------------------------------------------------- transformer
class NumericalTransformer(ColumnTransformer):
    """A number column to a scaled vector and back.

    Parameters
    ----------
    column : str
    method : {"mode", "quantile", "identity"}
        ``mode``: mode-specific normalization (a Gaussian mixture per column; the value scaled
        within its component plus the component one-hot), as CTGAN and TVAE need.
        ``quantile``: normal scores through the empirical CDF. ``identity``: the raw value.
    max_modes : int
        Most components of the mixture (``mode`` only).
    mode_selection : {"bic", "all"}
        ``bic``: as many components as the Bayesian information criterion asks for (1 to
        ``max_modes``), which keeps the encoding narrow; ``all``: ``max_modes`` components
        (fewer only for fewer distinct values). Components under 0.5% weight are dropped.
    enforce_min_max : bool
        Clip decoded values to the observed range.
    integer : bool or None
        Round to whole numbers; None learns it from the data.
    min_patients : int or None
        What the transformer saves (its range, median, quantile knots and mixture) is computed
        from the values merged so that each belongs to at least this many patients
        (:func:`clinsynth.privacy._safe_values.microaggregate`): no rare value -- the oldest
        patient's age, a unique lab result -- is saved, and decoded values stay within the
        range of at least this many patients. None (or 1) keeps the raw values. Set per column
        in the metadata (``"min_patients": 5``); off by default (see docs/PRIVACY.md).
    """

    kind: ClassVar[str] = "numerical"
    _params = (
        "method",
        "max_modes",
        "enforce_min_max",
        "integer",
        "mode_selection",
        "min_patients",
    )
    _state = (
        "null_rate",
        "has_nulls",
        "fill_value",
        "min",
        "max",
        "decimals",
        "is_integer",
        "dtype",
        "weights",
        "means",
        "stds",
        "knots_x",
        "knots_p",
        "discrete",
        "empty",
        "clip_input",
        "atoms",
    )
    #: Clip values to [min, max] before encoding: DP fits, whose bounds are public or noisy
    #: (default for bundles written before it existed).
    clip_input_: bool = False
    #: Exact values held by at least ``ATOM_PATIENTS`` patients (a cost of 0, a dose of 5 mg):
    #: a decoded value within the encoding's float32 error of one is that value exactly.
    atoms_: list[float] = []  # noqa: RUF012 - replaced, never mutated
    #: The mixture (method 'mode') and the quantile knots (method 'quantile'): empty for the
    #: other methods.
    weights_: list[float] = []  # noqa: RUF012 - replaced, never mutated
    means_: list[float] = []  # noqa: RUF012
    stds_: list[float] = []  # noqa: RUF012
    knots_x_: list[float] = []  # noqa: RUF012
    knots_p_: list[float] = []  # noqa: RUF012
    discrete_: bool = False
    ATOM_PATIENTS: ClassVar[int] = 5
    MAX_ATOMS: ClassVar[int] = 100
    #: Most mixture components and quantile knots a bundle may declare.
    MAX_MODES: ClassVar[int] = 1_000
    MAX_KNOTS: ClassVar[int] = 100_000
    _param_checks: ClassVar[dict[str, Any]] = {
        "method": S.text(20, choices=METHODS),
        "max_modes": S.integer(1, MAX_MODES),
        "enforce_min_max": S.boolean(),
        "integer": S.boolean(null=True),
        "mode_selection": S.text(10, choices=("bic", "all")),
        "min_patients": S.integer(1, 10**9, null=True),
    }
    _state_checks: ClassVar[dict[str, Any]] = {
        "null_rate": S.number(0, 1),
        "has_nulls": S.boolean(),
        "fill_value": S.number(),
        "min": S.number(),
        "max": S.number(),
        "decimals": S.integer(0, 30, null=True),
        "is_integer": S.boolean(),
        "dtype": dtype_name(),
        "weights": S.array(S.number(0, 1), max_len=MAX_MODES),
        "means": S.array(S.number(), max_len=MAX_MODES),
        "stds": S.array(S.number(1e-300), max_len=MAX_MODES),
        "knots_x": S.array(S.number(), max_len=MAX_KNOTS),
        "knots_p": S.array(S.number(0, 1), max_len=MAX_KNOTS),
        "discrete": S.boolean(),
        "empty": S.boolean(),
        "clip_input": S.boolean(),
        "atoms": S.array(S.number(), max_len=MAX_ATOMS),
    }

    def __init__(
        self,
        column: str,
        method: str = "mode",
        max_modes: int = 10,
        enforce_min_max: bool = True,
        integer: bool | None = None,
        mode_selection: str = "bic",
        min_patients: int | None = None,
    ) -> None:
        super().__init__(column)
        self.min_patients = min_patients
        if method not in METHODS:
            raise ParameterError(
                f"The 'method' parameter of NumericalTransformer must be one of {METHODS}. "
                f"Got {method!r}."
            )
        if mode_selection not in ("bic", "all"):
            raise ParameterError(
                "The 'mode_selection' parameter of NumericalTransformer must be 'bic' or 'all'. "
                f"Got {mode_selection!r}."
            )
        self.method = method
        self.max_modes = max_modes
        self.enforce_min_max = enforce_min_max
        self.integer = integer
        self.mode_selection = mode_selection

    # ------------------------------------------------------------------ fit
    def _values(self, series: pd.Series) -> np.ndarray:
        return _to_float(series, self.column)

    def _fit(self, series: pd.Series) -> None:
        self.dtype_ = str(series.dtype)
        self.clip_input_ = self._privacy is not None
        raw = self._values(series)
        present = ~np.isnan(raw)
        values = raw[present]
        if self._privacy is not None:
            self._fit_private(values, int((~present).sum()))
            return
        self.null_rate_ = float(1.0 - present.mean()) if len(raw) else 0.0
        self.has_nulls_ = bool(self.null_rate_ > 0)
        self.empty_ = bool(len(values) == 0)
        if self.empty_:
            self.min_ = self.max_ = self.fill_value_ = 0.0
            self.decimals_, self.is_integer_ = None, False
            return
        if self.method == "identity" and np.abs(values).max() > _FLOAT32_MAX:
            raise DataError(
                f"Column '{self.column}' holds values as large as "
                f"{max(values.min(), values.max(), key=abs):.3g}, beyond what the encoding holds "
                f"(about ±{_FLOAT32_MAX:.1e}). Rescale the column (e.g. take its logarithm) or "
                "drop it."
            )
        self.is_integer_ = bool(
            self.integer if self.integer is not None else np.all(values == np.round(values))
        )
        self.decimals_ = 0 if self.is_integer_ else detect_decimals(values)
        self.atoms_ = self._frequent_values(raw, present)
        # What is saved (range, median, knots, mixture) is computed from values merged so that
        # each belongs to at least ``min_patients`` patients (privacy/_safe_values.py).
        entities = None if self._entities is None else self._entities.to_numpy()[present]
        safe = microaggregate(values, self.min_patients or 1, entities, interior=False)
        self.min_, self.max_ = float(safe.min()), float(safe.max())
        self.fill_value_ = float(np.median(safe))
        rng = np.random.default_rng(0)  # fit is deterministic whatever the caller's seed
        if self.method == "mode":
            w, m, s = fit_gmm_1d(
                safe,
                self.max_modes,
                rng=rng,
                accept=lambda w, m, s: self._exact(values, w, m, s),
                select=self.mode_selection != "all",
            )
            self.weights_, self.means_, self.stds_ = w.tolist(), m.tolist(), s.tolist()
        elif self.method == "quantile":
            # Steps only for values that repeat; merged continuous values get interpolation.
            repeats = 2 * len(np.unique(values)) <= len(values)
            self._fit_knots(safe, None if (self.min_patients or 1) <= 1 else repeats)
        self._restore()

    def _state_problems(self) -> list[str]:
        problems = []
        if not getattr(self, "empty_", True) and self.min_ > self.max_:
            problems.append(f"min {self.min_} is above max {self.max_}")
        if not len(self.weights_) == len(self.means_) == len(self.stds_):
            problems.append("weights, means and stds must have the same length")
        elif self.method == "mode" and not getattr(self, "empty_", True) and not self.weights_:
            problems.append("a 'mode' column needs at least one mixture component")
        if len(self.knots_x_) != len(self.knots_p_):
            problems.append("knots_x and knots_p must have the same length")
        elif self.method == "quantile" and not getattr(self, "empty_", True):
            if len(self.knots_x_) < 1 or np.any(np.diff(self.knots_p_) < 0):
                problems.append("the quantile knots must be non-empty and increasing")
        return problems

    def _frequent_values(self, raw: np.ndarray, present: np.ndarray) -> list[float]:
        """The values held by at least ``ATOM_PATIENTS`` patients (distinct keys, or rows)."""
        if self.method == "quantile" or not present.any():
            return []
        if self._entities is not None:
            pairs = pd.DataFrame({"v": raw, "e": self._entities.to_numpy()})[present]
            support = pairs.drop_duplicates().groupby("v", sort=False)["e"].size()
        else:
            support = pd.Series(raw[present]).value_counts(sort=False)
        support = support[support >= self.ATOM_PATIENTS]
        top = support.sort_values(ascending=False, kind="stable").index[: self.MAX_ATOMS]
        return sorted(float(v) for v in top)

    def _exact(self, values: np.ndarray, w: np.ndarray, m: np.ndarray, s: np.ndarray) -> bool:
        """Whether a mixture encodes ``values`` (float32, most likely component) and decodes
        them back: to the same numbers after rounding, or, for values with more than four
        decimals, within ``min(1e-4, 1e-6 * range)``. Few components for a wide column can
        leave a scaled value too coarse for float32 (7 significant digits)."""
        x = np.unique(values)
        comp = np.argmax(_log_gauss(x[:, None], m, s) + np.log(w), axis=1)
        scaled = ((x - m[comp]) / (4 * s[comp])).astype(np.float32)
        back = scaled.astype(np.float64) * 4 * s[comp] + m[comp]
        if self.decimals_ is not None:
            if np.array_equal(np.round(back, self.decimals_), x):
                return True
            if self.decimals_ <= 4:
                return False
        tolerance = min(1e-4, 1e-6 * float(x[-1] - x[0]))
        return bool(np.max(np.abs(back - x)) <= tolerance)

    #: Candidate rounding units of the private fit (numbers: 1, 0.1, ... 1e-6).
    _DP_UNITS: ClassVar[tuple[float, ...]] = tuple(10.0**-d for d in range(7))

    def _fit_private(self, values: np.ndarray, n_missing: int) -> None:
        """Every statistic from public bounds or noisy histograms (``ColumnPrivacy``).

        Bounds: public ``(low, high)`` or a DP range (30% of the column budget); rounding unit:
        a noisy histogram (10%) unless the metadata says integer; the rest: one noisy histogram
        on the bounds with a missing bin. Null rate, fill value, the mixture (fitted on points
        drawn from the noisy histogram) and quantile knots are post-processing of it.
        """
        cp = self._privacy
        share = 1.0
        if cp.public is not None:
            bounds = self._values(pd.Series(list(cp.public)))
            low, high = float(np.nanmin(bounds)), float(np.nanmax(bounds))
        else:
            low, high = cp.numeric_range(values, 0.3)
            share -= 0.3
        if high <= low:
            high = low + 1.0
        self._dp_unit_ = 0
        if self.integer is not True:
            self._dp_unit_ = cp.granularity(values, np.array(self._DP_UNITS), 0.1)
            share -= 0.1
        edges, counts, missing, sigma = cp.numeric_histogram(values, n_missing, low, high, share)
        total = counts.sum() + missing
        self.empty_ = bool(counts.sum() <= 2 * sigma and missing > 2 * sigma)
        self.null_rate_ = float(missing / total) if missing > 2 * sigma and total > 0 else 0.0
        self.has_nulls_ = bool(self.null_rate_ > 0)
        self.min_, self.max_ = low, high
        self.is_integer_ = bool(self.integer) if self.integer is not None else self._dp_unit_ == 0
        unit = self._dp_unit_
        self.decimals_ = 0 if self.is_integer_ else (unit if unit < len(self._DP_UNITS) else None)
        cdf = np.cumsum(counts) / max(counts.sum(), 1e-12)
        self.fill_value_ = (
            float(np.interp(0.5, np.r_[0.0, cdf], edges)) if counts.sum() > 0 else (low + high) / 2
        )
        self.dp_edges_, self.dp_counts_, self.dp_missing_ = edges, counts, missing
        if self.empty_:
            return
        if self.method == "mode":
            pseudo = sample_from_histogram(edges, counts, 5000, cp.rng)
            w, m, s = fit_gmm_1d(
                pseudo, self.max_modes, rng=cp.rng, select=self.mode_selection != "all"
            )
            self.weights_, self.means_, self.stds_ = w.tolist(), m.tolist(), s.tolist()
        elif self.method == "quantile":
            self.discrete_ = False
            # A floor on every bin keeps the map strictly increasing, hence invertible.
            mass = np.maximum(counts, 0.0) + 1e-6 * max(counts.sum(), 1.0)
            p = np.r_[0.0, np.cumsum(mass) / mass.sum()]
            self.knots_x_, self.knots_p_ = edges.tolist(), np.clip(p, 1e-6, 1 - 1e-6).tolist()
        self._restore()

    def _fit_knots(self, values: np.ndarray, discrete: bool | None = None) -> None:
        n = len(values)
        uniq, counts = np.unique(values, return_counts=True)
        self.discrete_ = bool(len(uniq) <= 1000 and discrete is not False)
        if self.discrete_:
            xs = uniq
            ps = (np.cumsum(counts) - counts / 2) / n
        elif discrete is False:  # merged values (min_patients): interpolate between them
            xs, ps = merged_knots(values)
            xs = np.maximum.accumulate(xs + np.arange(len(xs)) * 1e-12 * max(1.0, abs(xs).max()))
        else:
            qs = np.linspace(0.0, 1.0, 1001)
            xs = np.quantile(values, qs)
            # Keep the knots strictly increasing so the map can be inverted exactly.
            xs = np.maximum.accumulate(xs + np.arange(len(xs)) * 1e-12 * max(1.0, abs(xs).max()))
            ps = np.clip(qs, 0.5 / n, 1 - 0.5 / n)
        self.knots_x_, self.knots_p_ = xs.tolist(), ps.tolist()

    def _restore(self) -> None:
        self._w_ = np.asarray(self.weights_, dtype=np.float64)
        self._m_ = np.asarray(self.means_, dtype=np.float64)
        self._s_ = np.asarray(self.stds_, dtype=np.float64)
        self._kx_ = np.asarray(self.knots_x_, dtype=np.float64)
        self._kp_ = np.asarray(self.knots_p_, dtype=np.float64)
        self._atoms_ = np.asarray(self.atoms_, dtype=np.float64)
        self._atom_search_ = GridSearch(self._atoms_)

    # ------------------------------------------------------------------ spans
    def _spans(self) -> list[SpanInfo]:
        spans = []
        if not self.empty_:
            if self.method == "mode":
                spans = [
                    SpanInfo(1, "tanh", self.column, "value"),
                    SpanInfo(len(self.weights_), "softmax", self.column, "mode"),
                ]
            else:
                spans = [SpanInfo(1, "linear", self.column, "value")]
        if self.has_nulls_:
            spans.append(SpanInfo(2, "softmax", self.column, "null"))
        return spans

    # ------------------------------------------------------------------ transform
    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        raw = self._values(series)
        missing = np.isnan(raw)
        x = np.where(missing, self.fill_value_, raw)
        if self.clip_input_:  # DP: the model learns values inside the public/noisy bounds only
            x = np.clip(x, self.min_, self.max_)
        blocks = []
        if not self.empty_:
            blocks.extend(self._encode(x, rng))
        if self.has_nulls_:
            blocks.append(one_hot(missing.astype(np.int64), 2))
        if not blocks:
            return np.zeros((len(series), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1)

    def _encode(self, x: np.ndarray, rng: np.random.Generator | None) -> list[np.ndarray]:
        if self.method == "identity":
            return [x[:, None]]
        if self.method == "quantile":
            p = np.interp(x, self._kx_, self._kp_)
            return [special.ndtri(p)[:, None]]
        log_p = _log_gauss(x[:, None], self._m_, self._s_) + np.log(self._w_)
        if rng is not None:  # sample the component from its posterior (Gumbel-max)
            log_p = log_p + rng.gumbel(size=log_p.shape)
        comp = np.argmax(log_p, axis=1)
        scaled = (x - self._m_[comp]) / (4 * self._s_[comp])
        return [scaled[:, None], one_hot(comp, len(self._w_))]

    # ------------------------------------------------------------------ inverse
    def _decode(self, data: np.ndarray) -> np.ndarray:
        if self.method == "identity":
            if data.dtype == np.float64:  # the values as made: nothing was rounded
                return data[:, 0]
            x = data[:, 0].astype(np.float64)
            # float32 keeps 24 bits: a value within that error of an exact frequent value is it
            return self._snap(x, np.abs(x) * 2.0**-22)
        if self.method == "quantile":
            p = special.ndtr(data[:, 0].astype(np.float64))
            if self.discrete_:  # few distinct values: decode to the nearest one (exact round trip)
                mid = (self._kp_[1:] + self._kp_[:-1]) / 2
                return self._kx_[np.searchsorted(mid, p)]
            return np.interp(p, self._kp_, self._kx_)
        comp = decode_choice(data[:, 1 : 1 + len(self._w_)])
        comp = np.clip(comp, 0, len(self._w_) - 1)
        scaled = data[:, 0].astype(np.float64)
        x = scaled * 4 * self._s_[comp] + self._m_[comp]
        # The scaled value went through float32 (24 bits): its error, carried to the value.
        error = 4 * self._s_[comp] * np.maximum(np.abs(scaled), 1.0) * 2.0**-22
        return self._snap(x, error)

    def _snap(self, x: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
        """Values within ``tolerance`` of an exact frequent value (``atoms``) become it, so that
        a 0 that went through float32 comes back 0, not 0.0001."""
        atoms = getattr(self, "_atoms_", None)
        if atoms is None or len(atoms) == 0 or len(x) == 0:
            return x
        right = np.clip(self._atom_search_(x), 0, len(atoms) - 1)
        left = np.maximum(right - 1, 0)
        nearest = np.where(
            np.abs(atoms[left] - x) <= np.abs(atoms[right] - x), atoms[left], atoms[right]
        )
        return np.where(np.abs(nearest - x) <= tolerance, nearest, x)

    def decode_values(self, data: np.ndarray) -> np.ndarray:
        """Decoded floats (clipped and rounded), NaN where the null indicator says missing."""
        n = len(data)
        if self.empty_:
            return np.full(n, np.nan)
        x = self._decode(data)
        if self.enforce_min_max:
            x = np.clip(x, self.min_, self.max_)
        if self.decimals_ is not None:
            x = np.round(x, self.decimals_)
        if self.has_nulls_:
            null = decode_choice(data[:, -2:]) == 1
            x = np.where(null, np.nan, x)
        return x

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        return self._restore_dtype(self.decode_values(data))

    def _restore_dtype(self, x: np.ndarray) -> pd.Series:
        missing = np.isnan(x)
        has_nan = bool(missing.any())
        dtype = self.dtype_
        unsigned = dtype.lower().startswith("uint")
        if unsigned:
            x = np.maximum(x, 0.0)
        if self.is_integer_ and _beyond_int64(x[~missing], unsigned):
            return _big_integers(x, missing)
        if dtype.startswith(("int", "uint")):
            dtype = ("UInt64" if unsigned else "Int64") if has_nan else dtype
        elif dtype in ("bool", "boolean", "object", "string", "str", "category"):
            dtype = ("Int64" if has_nan else "int64") if self.is_integer_ else "float64"
        if dtype in ("Int64", "Int32", "Int16", "Int8") or dtype.startswith("UInt"):
            whole = np.uint64 if dtype.startswith("UInt") else np.int64
            return pd.Series(pd.array(np.where(missing, 0, x).astype(whole), dtype=dtype)).mask(
                missing
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.Series(x.astype(dtype))


def _beyond_int64(values: np.ndarray, unsigned: bool) -> bool:
    """Whether whole numbers fall outside what int64 (uint64 for unsigned columns) holds."""
    if len(values) == 0:
        return False
    high = 2.0**64 if unsigned else 2.0**63
    return bool(values.min() < -(2.0**63) or values.max() >= high)


def _big_integers(x: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Whole numbers beyond 64 bits as Python integers (their shortest decimal form), never
    wrapped around to -9223372036854775808."""
    values = [None if m else int(Decimal(repr(float(v)))) for v, m in zip(x, missing, strict=True)]
    return pd.Series(values, dtype=object)
