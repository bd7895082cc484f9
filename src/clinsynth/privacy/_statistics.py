"""Differentially private column statistics: what the transformer learns in DP mode.

Every statistic of a column comes either from public knowledge the user states (numeric bounds,
category lists) or from a Gaussian mechanism whose cost is written to a
:class:`~clinsynth.privacy.PrivacyAccountant`. The building block is a histogram: each row falls in
exactly one bin, so adding or removing a row changes one count by 1 (L2 sensitivity 1), and noise
``N(0, σ²)`` gives ``ρ = 1/(2σ²)`` zCDP. Everything else (ranges, the number of decimals, category
frequencies, fill values, a mixture fit) is post-processing of noisy histograms.

Categories that are not public are *discovered* with a thresholded histogram: noisy counts of the
levels present in the data, a level is named only when its noisy count exceeds
``τ = 1 + σ·Φ⁻¹(1 - δ')``, so a level held by a single row is named with probability at most ``δ'``
(the ``delta`` entry of the ledger). Rows of levels that are not named go to an "other" bucket
whose count is measured with a second Gaussian release.

When the privacy unit is a patient with up to ``c`` rows (``contribution``), a histogram
changes by up to ``c`` in L2 norm: the ledger charges each release ``c²`` times (the
accountant's ``group``), and a level is named only above ``τ = c + σ·Φ⁻¹(1 - δ'/c)``, so that
the up to ``c`` levels one patient may hold are named with probability at most ``δ'`` together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import special

from clinsynth.errors import ParameterError
from clinsynth.privacy._accountant import PrivacyAccountant

logger = logging.getLogger(__name__)

__all__ = ["ColumnPrivacy", "DPStatistics", "noisy_histogram", "release_threshold"]


def release_threshold(sigma: float, delta: float, contribution: int = 1) -> float:
    """Noisy count a level found in the data needs to be named: ``c + σ·Φ⁻¹(1 - δ/c)`` for a
    unit with up to ``c`` rows (``contribution``; 1: ``1 + σ·Φ⁻¹(1 - δ)``).

    >>> round(release_threshold(10.0, 1e-6), 1)
    48.5
    """
    c = int(contribution)
    return c + sigma * float(special.ndtri(1.0 - delta / c))


def noisy_histogram(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Counts plus independent ``N(0, σ²)`` noise (the Gaussian mechanism, sensitivity 1).

    >>> noisy_histogram(np.array([10, 0]), 0.0, np.random.default_rng(0)).tolist()
    [10.0, 0.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    return counts + sigma * rng.standard_normal(counts.shape)


@dataclass
class DPStatistics:
    """How a :class:`~clinsynth.transform.TableTransformer` measures statistics privately.

    Parameters
    ----------
    rho : float
        zCDP budget of all column statistics together; split evenly over the columns.
    delta : float
        Failure probability allowed to all category discoveries together.
    public_bounds : dict, optional
        Public knowledge per column: ``(low, high)`` for numbers and dates (values outside are
        clipped), a list of levels for categorical columns. Nothing else is read for free.
    n_bins : int
        Bins of the numeric histograms.
    random_state : int, optional
        Seed of the noise.
    accountant : PrivacyAccountant
        Where every release is recorded (consumer ``"statistics"``); its ``contribution``
        (rows per privacy unit) sets the threshold of category discovery.

    Examples
    --------
    >>> dp = DPStatistics(rho=0.05, delta=1e-6, public_bounds={"age": (0, 110)}, random_state=0)
    >>> cols = dp.split(["age", "sex"])
    >>> round(cols["age"].rho, 3)
    0.025
    """

    rho: float
    delta: float = 1e-7
    public_bounds: Mapping[str, Any] = field(default_factory=dict)
    n_bins: int = 32
    random_state: int | None = None
    accountant: PrivacyAccountant = field(default_factory=PrivacyAccountant)

    @property
    def generated(self) -> ColumnPrivacy:
        """The marker handed to generated columns (ids, PII): DP mode, no budget to spend."""
        return ColumnPrivacy(
            "", 0.0, 0.0, None, self.n_bins, np.random.default_rng(0), self.accountant
        )

    def split(self, columns: list[str]) -> dict[str, ColumnPrivacy]:
        """One :class:`ColumnPrivacy` per column, sharing the budget evenly."""
        if not (self.rho > 0):
            raise ParameterError(f"The statistics budget rho must be > 0. Got {self.rho!r}.")
        seeds = np.random.SeedSequence(self.random_state).spawn(max(len(columns), 1))
        share = self.rho / max(len(columns), 1)
        return {
            c: ColumnPrivacy(
                c,
                share,
                self.delta / max(len(columns), 1),
                self.public_bounds.get(c),
                self.n_bins,
                np.random.default_rng(seed),
                self.accountant,
            )
            for c, seed in zip(columns, seeds, strict=False)
        }


@dataclass
class ColumnPrivacy:
    """The budget of one column and the mechanisms that spend it (see the module docstring)."""

    column: str
    rho: float
    delta: float
    public: Any
    n_bins: int
    rng: np.random.Generator
    accountant: PrivacyAccountant

    # ------------------------------------------------------------------ mechanisms
    def sigma(self, share: float) -> float:
        """Noise of a histogram that spends ``share`` of this column's ρ."""
        if not self.rho > 0:
            raise ParameterError(f"Column '{self.column}' has no privacy budget to spend.")
        return 1.0 / math.sqrt(2.0 * self.rho * share)

    def histogram(self, counts: np.ndarray, share: float, what: str) -> tuple[np.ndarray, float]:
        """A noisy histogram spending ``share`` of the column budget; recorded in the ledger."""
        sigma = self.sigma(share)
        self.accountant.add_gaussian(f"{self.column}: {what}", sigma)
        return noisy_histogram(counts, sigma, self.rng), sigma

    # ------------------------------------------------------------------ numbers
    def numeric_range(self, values: np.ndarray, share: float) -> tuple[float, float]:
        """DP bounds from two noisy histograms on grids that do not depend on the data.

        First a signed-log grid (4 bins per decade from 1e-3 to 1e13, both signs): the occupied
        span, bins whose noisy count exceeds 3σ. Then ``n_bins`` equal bins on that span widened
        by one coarse bin each side: the span of bins above 2σ. Sparse tails are cut; public
        bounds are always better.
        """
        mags = 10.0 ** np.arange(-3.0, 13.01, 0.25)
        edges = np.concatenate([-mags[::-1], [0.0], mags])
        coarse, noisy = self._occupied(values, edges, share / 2, 3.0, "range (coarse)")
        if coarse is None:  # nothing clears 3σ (few rows, small budget): mostly noise
            logger.warning(
                "Column '%s' has no public bounds and its differentially private range is "
                "mostly noise at this budget; give public_bounds={'%s': (low, high)}.",
                self.column,
                self.column,
            )
        i, j = coarse if coarse is not None else (int(np.argmax(noisy)),) * 2
        low, high = float(edges[max(i - 1, 0)]), float(edges[min(j + 2, len(edges) - 1)])
        fine_edges = np.linspace(low, high, self.n_bins + 1)
        fine, _ = self._occupied(values, fine_edges, share / 2, 2.0, "range (fine)")
        if fine is None:
            return float(edges[i]), float(edges[j + 1])
        return float(fine_edges[fine[0]]), float(fine_edges[fine[1] + 1])

    #: A bin whose noisy count exceeds this many σ holds data (chance: 3e-7 a bin).
    STRONG_CUT: ClassVar[float] = 5.0

    def _occupied(
        self, values: np.ndarray, edges: np.ndarray, share: float, cut: float, what: str
    ) -> tuple[tuple[int, int] | None, np.ndarray]:
        """The first and last occupied bins (or None), and the noisy counts.

        Bins over ``STRONG_CUT·σ`` hold data; from the first and last of them the range
        extends through neighbouring bins over ``cut·σ`` (a gap of one bin allowed). An empty
        bin far from the data clears ``3σ`` by chance now and then (about one histogram in
        seven on the 130-bin coarse grid); taking it as occupied stretched a body temperature's
        range to 1e9, and every value drawn from that range with it. With no bin over
        ``STRONG_CUT·σ`` (few rows, small budget), the range grows from the fullest bin.
        """
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        noisy, sigma = self.histogram(counts, share, what)
        weak = noisy > cut * sigma
        strong = np.flatnonzero(noisy > max(self.STRONG_CUT, cut) * sigma)
        if len(strong) == 0:
            if not weak.any():
                return None, noisy
            # Few rows or a small budget: the fullest bin and its occupied neighbours.
            strong = np.array([int(np.argmax(np.where(weak, noisy, -np.inf)))])
        first, last = int(strong[0]), int(strong[-1])
        while True:
            step = next((k for k in (1, 2) if first - k >= 0 and weak[first - k]), 0)
            if not step:
                break
            first -= step
        while True:
            step = next((k for k in (1, 2) if last + k < len(weak) and weak[last + k]), 0)
            if not step:
                break
            last += step
        return (first, last), noisy

    def numeric_histogram(
        self, values: np.ndarray, n_missing: int, low: float, high: float, share: float
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Noisy counts of ``n_bins`` equal bins on ``[low, high]`` plus a missing bin.

        Returns ``(edges, counts, missing, sigma)``; counts are clipped at 0 (post-processing).
        """
        edges = np.linspace(low, high, self.n_bins + 1)
        counts, _ = np.histogram(np.clip(values, low, high), bins=edges)
        noisy, sigma = self.histogram(np.append(counts, n_missing), share, "histogram")
        noisy = np.maximum(noisy, 0.0)
        return edges, noisy[:-1], float(noisy[-1]), sigma

    def granularity(self, values: np.ndarray, units: np.ndarray, share: float) -> int:
        """Index of the coarsest unit (e.g. 1, 0.1, 0.01) that nearly every value is a
        multiple of: a noisy histogram of each value's coarsest unit; the first unit with at
        most 1% (or 2σ) of the values needing a finer one. ``len(units)`` means none fits."""
        scale = np.maximum(1.0, np.abs(values))
        fits = np.stack(
            [np.abs(values / u - np.round(values / u)) * u <= 1e-9 * scale for u in units], axis=1
        )
        first = np.where(fits.any(axis=1), fits.argmax(axis=1), len(units))
        counts = np.bincount(first, minlength=len(units) + 1)
        noisy, sigma = self.histogram(counts, share, "granularity")
        total = max(float(noisy.sum()), 1.0)
        finer = np.cumsum(noisy[::-1])[::-1]  # finer[k]: values needing unit k or finer
        for k in range(len(units)):
            bins = len(noisy) - k - 1  # the sum of m noisy bins has noise sd σ√m
            if finer[k + 1] <= max(0.01 * total, 2 * sigma * np.sqrt(bins)):
                return k
        return len(units)

    # ------------------------------------------------------------------ categories
    def public_levels(
        self, counts: np.ndarray, n_missing: int, n_other: int
    ) -> tuple[np.ndarray, float, float, float]:
        """Noisy counts of public levels (every one, seen or not), missing and other rows.

        One histogram: each row is in one public level, missing, or outside the list (other).
        Returns ``(counts, missing, other, sigma)``, clipped at 0.
        """
        noisy, sigma = self.histogram(
            np.concatenate([counts, [n_missing, n_other]]), 1.0, "level counts"
        )
        noisy = np.maximum(noisy, 0.0)
        return noisy[:-2], float(noisy[-2]), float(noisy[-1]), sigma

    def discover_levels(
        self, counts: np.ndarray, n_missing: int
    ) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Name the levels found in the data whose noisy count clears the release threshold.

        ``counts``: row counts of the distinct values found. Half the budget goes to the
        thresholded histogram (missing is a public level of it), half to the count of the rows
        whose level is not named (other). Returns ``(named, named_counts, missing, other,
        sigma)``: indices into ``counts`` and noisy counts clipped at 0.
        """
        noisy, sigma = self.histogram(np.append(counts, n_missing), 0.5, "level counts")
        tau = release_threshold(sigma, self.delta, self.accountant.contribution)
        self.accountant.add_delta(f"{self.column}: naming levels", self.delta)
        named = np.flatnonzero(noisy[:-1] > tau)
        hidden = np.ones(len(counts), dtype=bool)
        hidden[named] = False
        other, _ = self.histogram(np.array([counts[hidden].sum()]), 0.5, "other count")
        return (
            named,
            np.maximum(noisy[named], 0.0),
            float(max(noisy[-1], 0.0)),
            float(max(other[0], 0.0)),
            sigma,
        )

    def count(self, n: int, share: float, what: str) -> float:
        """One noisy count (e.g. the missing values of a generated column)."""
        noisy, _ = self.histogram(np.array([n]), share, what)
        return float(max(noisy[0], 0.0))


def sample_from_histogram(
    edges: np.ndarray, counts: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Points drawn uniformly within bins with the histogram's weights (post-processing).

    >>> x = sample_from_histogram(np.array([0.0, 1.0, 2.0]), np.array([0.0, 5.0]), 100,
    ...                           np.random.default_rng(0))
    >>> bool(((x >= 1) & (x <= 2)).all())
    True
    """
    weights = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    weights = np.ones_like(weights) if weights.sum() <= 0 else weights
    bins = rng.choice(len(weights), size=size, p=weights / weights.sum())
    return edges[bins] + rng.random(size) * (edges[bins + 1] - edges[bins])
