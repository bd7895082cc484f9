"""One-dimensional marginal distributions for the Gaussian copula.

Each marginal maps a normal score ``z`` to a value through a precomputed grid, so sampling a million
values is one ``np.interp`` whatever the family. Families are fitted by moments (microseconds), not
by iterative maximum likelihood, and chosen by the Kolmogorov-Smirnov distance to the data.

When no parametric family fits, ``auto`` falls back on the data itself: the step CDF of the
training values (up to 1000 distinct values), else 1001 interpolated quantiles. The step CDF hands
out training values verbatim, column by column (never whole rows). ``"kde"`` (asked for by name)
is a kernel-smoothed CDF instead: no value of a small table comes back verbatim. It is not the
``auto`` fallback because, measured on the field benchmark, it did not lower the DCR share (five
splits of heart_failure_clinical and breast_cancer_wisconsin: within 0.005) and it raised RHC's
detection AUC from 0.85 to 0.89.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

from clinsynth._search import GridSearch, UniformInterp
from clinsynth.privacy._safe_values import merged_knots

FAMILIES = ("norm", "lognorm", "gamma", "beta", "uniform", "empirical", "kde")
#: The families fitted by moments and compared by KS distance under ``auto``.
PARAMETRIC = FAMILIES[:-2]
#: A parametric family is preferred to the empirical one when its KS distance is at most this.
PARSIMONY = 0.02
#: Up to this many distinct values the empirical marginal is a step CDF; beyond, 1001
#: interpolated quantiles.
_MAX_STEPS = 1000
_KDE_GRID = 1025
#: A KDE's kernels sit on at most this many values (a seeded subsample of larger columns).
_KDE_MAX_CENTRES = 2000
_QUANTILES = np.linspace(0.0, 1.0, 1001)
_Z_GRID = np.linspace(-8.0, 8.0, 4001)
_U_GRID = special.ndtr(_Z_GRID)


def _frozen(family: str, p: dict[str, float]) -> Any:
    if family == "norm":
        return stats.norm(loc=p["loc"], scale=p["scale"])
    if family == "lognorm":
        return stats.lognorm(s=p["s"], loc=p["loc"], scale=p["scale"])
    if family == "gamma":
        return stats.gamma(a=p["a"], loc=p["loc"], scale=p["scale"])
    if family == "beta":
        return stats.beta(a=p["a"], b=p["b"], loc=p["loc"], scale=p["scale"])
    if family == "uniform":
        return stats.uniform(loc=p["loc"], scale=p["scale"])
    raise ValueError(family)


def _moment_fit(family: str, x: np.ndarray) -> dict[str, float] | None:
    """Method-of-moments parameters, or None when the family cannot describe ``x``."""
    mean, std = float(np.mean(x)), float(np.std(x))
    lo, hi = float(np.min(x)), float(np.max(x))
    if std <= 0:
        return None
    if family == "norm":
        return {"loc": mean, "scale": std}
    if family == "uniform":
        return {"loc": lo, "scale": hi - lo}
    if family == "lognorm":
        if lo <= 0:
            return None
        logs = np.log(x)
        return {"s": float(np.std(logs)) or 1e-3, "loc": 0.0, "scale": float(np.exp(np.mean(logs)))}
    if family == "gamma":
        if lo < 0:
            return None
        return {"a": mean**2 / std**2, "loc": 0.0, "scale": std**2 / mean}
    if family == "beta":
        pad = (hi - lo) * 1e-3
        loc, scale = lo - pad, (hi - lo) + 2 * pad
        m, v = (mean - loc) / scale, (std / scale) ** 2
        common = m * (1 - m) / v - 1
        if common <= 0:
            return None
        return {"a": m * common, "b": (1 - m) * common, "loc": loc, "scale": scale}
    return None


def _ks(sorted_x: np.ndarray, cdf: np.ndarray) -> float:
    n = len(sorted_x)
    hi = np.arange(1, n + 1) / n
    lo = np.arange(0, n) / n
    return float(max(np.max(hi - cdf), np.max(cdf - lo)))


class Marginal:
    """A fitted marginal: ``ppf_z(z)`` turns normal scores into values."""

    def __init__(self, family: str, params: dict[str, Any]) -> None:
        self.family = family
        self.params = params
        if family in ("empirical", "kde"):
            self._xs = np.asarray(params["x"], dtype=np.float64)
            ps = np.asarray(params["p"], dtype=np.float64)
            # Work in normal-score space: no ndtr per sampled value.
            self._zs = special.ndtri(np.clip(ps, 1e-15, 1 - 1e-15))
            # Sampling's inverse CDF without a binary search per value (_search.py).
            if params.get("discrete"):
                self._steps = GridSearch(self._zs[1:-1], side="right")
        else:
            grid = _frozen(family, params).ppf(_U_GRID)
            finite = np.isfinite(grid)
            self._zg, self._xg = _Z_GRID[finite], grid[finite]
            # Non-finite values only cut the grid's ends: what is left is still evenly spaced.
            first = int(np.argmax(finite)) if finite.any() else 0
            self._ppf = (
                UniformInterp(self._zg[0], _Z_GRID[1] - _Z_GRID[0], self._xg)
                if len(self._zg) > 1 and bool(finite[first : first + len(self._zg)].all())
                else None
            )

    @classmethod
    def fit(cls, x: np.ndarray, family: str = "auto", discrete: bool | None = None) -> Marginal:
        """Fit ``family`` (or choose the best by KS distance when ``auto``). ``discrete``: an
        empirical marginal is a step function over the distinct values (None: when there are
        at most 1,000), else interpolated quantiles."""
        x = np.asarray(x, dtype=np.float64)
        if family == "empirical" or len(np.unique(x)) < 3:
            return cls._empirical(x, discrete)
        if family == "kde":
            return cls._kde(x)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(x, 5000, replace=False) if len(x) > 5000 else x)
        candidates = PARAMETRIC if family == "auto" else (family,)
        best: tuple[float, str, dict] | None = None
        for fam in candidates:
            params = _moment_fit(fam, x)
            if params is None:
                continue
            d = _ks(sample, _frozen(fam, params).cdf(sample))
            if best is None or d < best[0]:
                best = (d, fam, params)
        if best is None or (family == "auto" and best[0] > PARSIMONY):
            return cls._empirical(x, discrete)
        return cls(best[1], {k: float(v) for k, v in best[2].items()} | {"ks": best[0]})

    @classmethod
    def _kde(cls, x: np.ndarray) -> Marginal:
        """Kernel-smoothed CDF on ``[min, max]``, stored as 1001 of its quantiles.

        Gaussian kernels with Abramson's adaptive bandwidths (narrow where values are dense,
        wide in a skewed lab's sparse tail) around a Silverman pilot; reflected at the observed
        minimum and maximum so the support and the edge density are kept.
        """
        lo, hi = float(np.min(x)), float(np.max(x))
        if len(x) > _KDE_MAX_CENTRES:
            x = np.random.default_rng(0).choice(x, _KDE_MAX_CENTRES, replace=False)
        x = np.sort(x)
        n = len(x)
        spread = min(float(np.std(x)), float(np.subtract(*np.quantile(x, [0.75, 0.25]))) / 1.34)
        if spread <= 0:
            spread = float(np.std(x))
        h = 0.9 * spread * n ** (-0.2)
        if not h > 0:
            return cls._empirical(x)
        # Pilot density at the data (chunked: n x n at most a few million cells here).
        pilot = np.empty(n)
        for i in range(0, n, 512):
            block = x[i : i + 512, None] - x[None, :]
            pilot[i : i + 512] = np.exp(-0.5 * (block / h) ** 2).sum(axis=1)
        pilot /= n * h * np.sqrt(2 * np.pi)
        widths = h * np.sqrt(np.exp(np.mean(np.log(pilot))) / pilot)
        centres = np.concatenate([x, 2 * lo - x, 2 * hi - x])
        widths = np.tile(widths, 3)
        grid = np.linspace(lo, hi, _KDE_GRID)
        cdf = np.zeros(_KDE_GRID)
        for i in range(0, len(centres), 256):
            c, w = centres[i : i + 256], widths[i : i + 256]
            cdf += special.ndtr((grid[:, None] - c[None, :]) / w[None, :]).sum(axis=1)
        cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1e-300)
        # Quantiles of the smoothed distribution: the grid is strictly increasing, so np.interp
        # on (cdf, grid) inverts it (flat stretches of cdf map to their first point).
        cdf = np.maximum.accumulate(cdf)
        keep = np.concatenate([[True], np.diff(cdf) > 0])
        xs = np.interp(_QUANTILES, cdf[keep], grid[keep])
        xs[0], xs[-1] = lo, hi
        return cls("kde", {"x": xs.tolist(), "p": _QUANTILES.tolist(), "bandwidth": h})

    @classmethod
    def _empirical(cls, x: np.ndarray, discrete: bool | None = None) -> Marginal:
        n = len(x)
        uniq, counts = np.unique(x, return_counts=True)
        if len(uniq) <= _MAX_STEPS and discrete is not False:
            # Step CDF: each distinct value owns the interval of its probability mass.
            edges = np.concatenate([[0.0], np.cumsum(counts) / n])
            return cls("empirical", {"x": uniq.tolist(), "p": edges.tolist(), "discrete": True})
        if discrete is False:  # merged values: interpolate between them, no lumps
            xs, ps = merged_knots(x, len(_QUANTILES))
            return cls("empirical", {"x": xs.tolist(), "p": ps.tolist(), "discrete": False})
        qs = _QUANTILES
        return cls(
            "empirical", {"x": np.quantile(x, qs).tolist(), "p": qs.tolist(), "discrete": False}
        )

    def ppf_z(self, z: np.ndarray) -> np.ndarray:
        if self.family in ("empirical", "kde"):
            if self.params.get("discrete"):
                return self._xs[self._steps(z)]
            return np.interp(z, self._zs, self._xs)
        if self._ppf is not None:
            return self._ppf(z)
        return np.interp(z, self._zg, self._xg)

    def z_bounds(self, low: float | None, high: float | None) -> tuple[float, float]:
        """The normal-score interval whose values fall in ``[low, high]``."""
        lo, hi = -np.inf, np.inf
        if self.family in ("empirical", "kde"):
            if self.params.get("discrete"):
                if low is not None:
                    lo = self._zs[np.searchsorted(self._xs, low, side="left")]
                if high is not None:
                    hi = self._zs[np.searchsorted(self._xs, high, side="right")]
            else:
                if low is not None:
                    lo = float(np.interp(low, self._xs, self._zs, left=-np.inf, right=np.inf))
                if high is not None:
                    hi = float(np.interp(high, self._xs, self._zs, left=-np.inf, right=np.inf))
            return float(lo), float(hi)
        if low is not None:
            lo = float(np.interp(low, self._xg, self._zg, left=-np.inf, right=np.inf))
        if high is not None:
            hi = float(np.interp(high, self._xg, self._zg, left=-np.inf, right=np.inf))
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Marginal:
        return cls(data["family"], data["params"])
