"""Privacy accounting: Rényi DP of the (sampled) Gaussian mechanism, composition, calibration.

Every mechanism that touches real rows is recorded in a :class:`PrivacyAccountant` ledger and
composed in Rényi differential privacy (RDP), where composition is a sum of the per-order curves.
The total is converted to (ε, δ)-DP once, at the end.

Formulas (neighbouring tables differ by adding or removing one row):

* Gaussian mechanism with L2 sensitivity 1 and noise ``N(0, σ²)``: ``RDP(α) = α / (2σ²)``, i.e.
  ρ-zCDP with ``ρ = 1 / (2σ²)`` (Mironov 2017; Bun & Steinke 2016).
* Sampled Gaussian mechanism (DP-SGD with Poisson sampling at rate ``q``, clipped per-sample
  gradients, noise multiplier ``σ``), Mironov, Talwar & Zhang (2019), with ``A_α`` the α-th moment
  of the likelihood ratio of ``(1-q)N(0,σ²) + qN(1,σ²)`` against ``N(0,σ²)``::

      RDP(α) = log(A_α) / (α - 1)
      integer α:     A_α = Σ_{k=0..α} C(α,k) (1-q)^(α-k) q^k exp((k² - k) / (2σ²))
      fractional α:  A_α = Σ_{i>=0} C(α,i) [ (1-q)^(α-i) q^i exp((i² - i)/(2σ²)) Φ((z₀ - i)/σ)
                                          + (1-q)^i q^(α-i) exp((j² - j)/(2σ²)) Φ((j - z₀)/σ) ]
                     with j = α - i and z₀ = σ² log(1/q - 1) + 1/2.

  ``T`` steps compose to ``T · RDP(α)``.
* RDP to (ε, δ) (Balle et al. 2020, Theorem 21; the conversion Opacus uses)::

      ε(δ) = min_α  RDP(α) + log((α - 1)/α) - (log δ + log α) / (α - 1)

* A release that is RDP except with probability δ' (the thresholded histogram that names
  categories found in the data) adds δ' to the final δ: the ledger's ``delta`` entries are taken
  from δ before the conversion.
* A privacy unit (a patient) with up to ``g`` rows in the table (``group``, see
  :class:`Mechanism`): the Gaussian mechanism's L2 sensitivity becomes ``g``, so its curve is
  exactly ``g²`` times the row-level one. The sampled Gaussian mechanism samples rows, not
  patients; it is charged by the group privacy of RDP (Mironov 2017, Proposition 2): a mechanism
  that is ``(α, ε(α))``-RDP for rows is ``(α / 2^k, 3^k ε(α))``-RDP for groups of ``2^k`` rows
  (``α ≥ 2^(k+1)``), with ``2^k`` the smallest power of 2 at least ``g``
  (:func:`group_sampled_gaussian_rdp`).

All computations are vectorized over the orders and the series terms (numpy/scipy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import special

from clinsynth.errors import ParameterError, PrivacyError

__all__ = [
    "DEFAULT_ORDERS",
    "PrivacyAccountant",
    "calibrate_noise_multiplier",
    "default_delta",
    "epsilon_from_rdp",
    "gaussian_rdp",
    "group_sampled_gaussian_rdp",
    "rho_for_epsilon",
    "sampled_gaussian_rdp",
]

#: Rényi orders: a fine grid near 1 (large ε), integers to 255 and a few large ones (small ε).
DEFAULT_ORDERS: np.ndarray = np.concatenate(
    [1.0 + np.arange(1, 100) / 10.0, np.arange(11, 256, dtype=float), [384.0, 512.0, 1024.0]]
)

_CHUNK = 2048
_MAX_TERMS = 1_000_000


def default_delta(num_rows: int) -> float:
    """The default δ: ``1 / (10 n)``, well below the ``1/n`` at which a row may leak whole.

    >>> default_delta(1000)
    0.0001
    """
    return 1.0 / (10.0 * max(int(num_rows), 1))


# --------------------------------------------------------------------------- RDP curves
def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    k = np.arange(alpha + 1, dtype=float)
    log_terms = (
        special.gammaln(alpha + 1)
        - special.gammaln(k + 1)
        - special.gammaln(alpha - k + 1)
        + k * math.log(q)
        + (alpha - k) * math.log1p(-q)
        + (k * k - k) / (2 * sigma**2)
    )
    return float(special.logsumexp(log_terms))


def _log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    """The two signed series of Mironov et al. (2019, Section 3.3), summed in log space."""
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_1q = math.log(q), math.log1p(-q)
    log_gamma_a = special.gammaln(alpha + 1)
    logs: list[np.ndarray] = []
    signs: list[np.ndarray] = []
    start, size = 0, _CHUNK
    while start < _MAX_TERMS:
        i = np.arange(start, start + size, dtype=float)
        j = alpha - i
        log_binom = log_gamma_a - special.gammaln(i + 1) - special.gammaln(j + 1)
        sign = special.gammasgn(j + 1)  # C(α, i) alternates in sign once i > α
        first = (
            log_binom
            + i * log_q
            + j * log_1q
            + (i * i - i) / (2 * sigma**2)
            + special.log_ndtr((z0 - i) / sigma)
        )
        second = (
            log_binom
            + j * log_q
            + i * log_1q
            + (j * j - j) / (2 * sigma**2)
            + special.log_ndtr((j - z0) / sigma)
        )
        logs += [first, second]
        signs += [sign, sign]
        start += size
        size *= 2
        # Past both α and z₀ the terms shrink polynomially and alternate in sign; A_α >= 1, so
        # a term below e^-30 no longer changes log A_α (the precision Opacus stops at).
        if start > max(alpha, z0) and max(first[-1], second[-1]) < -30:
            break
    value, sign = special.logsumexp(np.concatenate(logs), b=np.concatenate(signs), return_sign=True)
    if sign <= 0:  # cannot happen mathematically (A_α >= 1); guards float cancellation
        raise PrivacyError(f"RDP series did not converge (q={q}, sigma={sigma}, alpha={alpha}).")
    return float(value)


def sampled_gaussian_rdp(
    sample_rate: float,
    noise_multiplier: float,
    steps: int,
    orders: np.ndarray | None = None,
) -> np.ndarray:
    """RDP curve of ``steps`` rounds of the sampled Gaussian mechanism (DP-SGD).

    Parameters
    ----------
    sample_rate : float
        Poisson sampling probability ``q`` of each row in each step.
    noise_multiplier : float
        Noise standard deviation divided by the clipping norm (``σ``).
    steps : int
        Number of noisy gradient steps.
    orders : array, optional
        Rényi orders α (> 1); :data:`DEFAULT_ORDERS` by default.

    Returns
    -------
    ndarray
        ``RDP(α)`` for each order.

    Examples
    --------
    >>> rdp = sampled_gaussian_rdp(1.0, 2.0, 1, np.array([2.0, 8.0]))  # q=1: plain Gaussian
    >>> rdp.tolist()
    [0.25, 1.0]
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    _check_range("sample_rate", sample_rate, 0.0, 1.0)
    if noise_multiplier < 0:
        raise ParameterError(f"The noise multiplier must be >= 0. Got {noise_multiplier!r}.")
    if sample_rate == 0 or steps == 0:
        return np.zeros(len(orders))
    if noise_multiplier == 0:
        return np.full(len(orders), np.inf)
    if sample_rate == 1.0:
        return steps * orders / (2 * noise_multiplier**2)
    out = np.empty(len(orders))
    for n, alpha in enumerate(orders):
        if float(alpha).is_integer():
            log_a = _log_a_integer(sample_rate, noise_multiplier, int(alpha))
        else:
            log_a = _log_a_fractional(sample_rate, noise_multiplier, float(alpha))
        out[n] = log_a / (alpha - 1)
    return steps * out


def gaussian_rdp(
    noise_multiplier: float, orders: np.ndarray | None = None, count: int = 1
) -> np.ndarray:
    """RDP curve of ``count`` Gaussian releases with sensitivity 1 and noise ``σ``: ``cα/(2σ²)``.

    >>> gaussian_rdp(1.0, np.array([2.0]), count=3).tolist()
    [3.0]
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    return count * orders / (2.0 * noise_multiplier**2)


def group_sampled_gaussian_rdp(
    sample_rate: float,
    noise_multiplier: float,
    steps: int,
    group: int,
    orders: np.ndarray | None = None,
) -> np.ndarray:
    """RDP curve of DP-SGD for a unit with up to ``group`` rows (rows are sampled and clipped
    one by one): RDP group privacy, ``3^k · RDP(⌈2^k α⌉)`` with ``2^k >= group`` (the
    integer order above ``2^k α`` bounds its RDP from above), infinite for ``α < 2``.
    Without sampling (``q = 1``): the Gaussian mechanism's exact ``group²`` scaling.

    >>> orders = np.array([2.0, 4.0])
    >>> group_sampled_gaussian_rdp(0.01, 1.0, 10, 1, orders).tolist() == (
    ...     sampled_gaussian_rdp(0.01, 1.0, 10, orders).tolist())
    True
    >>> group_sampled_gaussian_rdp(1.0, 2.0, 1, 3, orders).tolist()  # 9 x alpha / 8
    [2.25, 4.5]
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    group = int(group)
    if group < 1:
        raise ParameterError(f"The group size must be an int >= 1. Got {group!r}.")
    if group == 1:
        return sampled_gaussian_rdp(sample_rate, noise_multiplier, steps, orders)
    if sample_rate == 1.0:
        return group**2 * sampled_gaussian_rdp(sample_rate, noise_multiplier, steps, orders)
    k = math.ceil(math.log2(group))
    out = np.full(len(orders), np.inf)
    valid = orders >= 2.0
    # RDP grows with the order: the next integer order bounds it from above, and the integer
    # series is fast (the fractional one at large orders is not).
    scaled, where = np.unique(np.ceil(orders[valid] * 2.0**k), return_inverse=True)
    out[valid] = 3.0**k * sampled_gaussian_rdp(sample_rate, noise_multiplier, steps, scaled)[where]
    return out


def epsilon_from_rdp(
    rdp: np.ndarray, delta: float, orders: np.ndarray | None = None
) -> tuple[float, float]:
    """The smallest ε with (ε, δ)-DP implied by an RDP curve, and the order that gives it.

    >>> eps, order = epsilon_from_rdp(gaussian_rdp(1.0), 1e-5)
    >>> round(eps, 3)
    4.729
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    _check_range("delta", delta, 0.0, 1.0, open_low=True, open_high=True)
    with np.errstate(invalid="ignore", over="ignore"):
        eps = (
            np.asarray(rdp, dtype=float)
            + np.log1p(-1.0 / orders)
            - (math.log(delta) + np.log(orders)) / (orders - 1)
        )
    if np.all(np.isnan(eps)) or np.all(np.isinf(eps)):
        return math.inf, math.nan
    best = int(np.nanargmin(eps))
    return float(max(eps[best], 0.0)), float(orders[best])


def rho_for_epsilon(epsilon: float, delta: float, orders: np.ndarray | None = None) -> float:
    """The zCDP ρ whose curve ``αρ`` converts to exactly ``(epsilon, delta)``.

    >>> rho = rho_for_epsilon(1.0, 1e-5)
    >>> abs(epsilon_from_rdp(rho * DEFAULT_ORDERS, 1e-5)[0] - 1.0) < 1e-9
    True
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    low, high = 0.0, max(epsilon, 1.0)
    while epsilon_from_rdp(high * orders, delta, orders)[0] < epsilon:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        if epsilon_from_rdp(mid * orders, delta, orders)[0] <= epsilon:
            low = mid
        else:
            high = mid
    return low


def calibrate_noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    *,
    extra_rdp: np.ndarray | None = None,
    orders: np.ndarray | None = None,
    tolerance: float = 1e-3,
    group: int = 1,
) -> float:
    """The smallest noise multiplier whose DP-SGD run stays within ``(target_epsilon, delta)``.

    Bisection on σ: the result's ε is at most the target and within ``tolerance·ε`` of it.
    ``extra_rdp`` is the curve already spent (e.g. by the transformer's DP statistics), so the
    whole model meets the target. ``group``: the rows of one privacy unit (the curve of
    :func:`group_sampled_gaussian_rdp`).

    Raises
    ------
    PrivacyError
        When ``extra_rdp`` alone exceeds the budget.

    Examples
    --------
    >>> sigma = calibrate_noise_multiplier(1.0, 1e-5, sample_rate=0.01, steps=1000)
    >>> 1.4 < sigma < 1.6
    True
    """
    orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=float)
    base = np.zeros(len(orders)) if extra_rdp is None else np.asarray(extra_rdp, dtype=float)
    if epsilon_from_rdp(base, delta, orders)[0] >= target_epsilon:
        raise PrivacyError(
            f"The budget epsilon={target_epsilon} is already spent before training "
            "(by the transformer's statistics). Give public bounds/categories or a larger "
            "epsilon."
        )

    def eps(sigma: float) -> float:
        return epsilon_from_rdp(
            base + group_sampled_gaussian_rdp(sample_rate, sigma, steps, group, orders),
            delta,
            orders,
        )[0]

    low, high = 0.0, 1.0
    while eps(high) > target_epsilon:
        low, high = high, high * 2
        if high > 1e6:
            raise PrivacyError(
                f"No noise level reaches epsilon={target_epsilon} in {steps} steps at sampling "
                f"rate {sample_rate:.4g}. Use fewer epochs, a smaller batch or a larger epsilon."
            )
    for _ in range(60):
        mid = (low + high) / 2
        value = eps(mid)
        if value <= target_epsilon:
            high = mid
            if target_epsilon - value <= tolerance * target_epsilon:
                break
        else:
            low = mid
    return high


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    ok = (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high
    )
    if not isinstance(value, int | float | np.floating) or not ok:
        lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
        raise ParameterError(f"'{name}' must be in {lo}{low}, {high}{hi}. Got {value!r}.")


# --------------------------------------------------------------------------- the ledger
Consumer = Literal["statistics", "training", "selection", "measurement"]


@dataclass
class Mechanism:
    """One entry of the ledger: what touched the data, and how much privacy it cost.

    ``kind`` is ``gaussian`` (``count`` releases, sensitivity 1, noise ``noise_multiplier``),
    ``sampled_gaussian`` (``steps`` DP-SGD steps at ``sample_rate``) or ``delta`` (a release
    that fails with probability ``delta``, e.g. naming categories found in the data).
    ``group`` is the most rows one privacy unit (a patient) has in the data the mechanism
    read (1: the row is the unit); the curve is the unit's (module docstring).
    """

    name: str
    consumer: str
    kind: str
    noise_multiplier: float = 0.0
    sample_rate: float = 1.0
    steps: int = 1
    count: int = 1
    delta: float = 0.0
    group: int = 1


@dataclass
class PrivacyAccountant:
    """A ledger of every mechanism that read real rows, composed in Rényi DP.

    Examples
    --------
    >>> acc = PrivacyAccountant()
    >>> acc.add_gaussian("age histogram", noise_multiplier=20.0, consumer="statistics")
    >>> acc.add_sampled_gaussian("discriminator", 1.1, sample_rate=0.01, steps=1000)
    >>> round(acc.get_epsilon(1e-5), 2)
    1.72
    >>> sorted(acc.summary(1e-5)["consumers"])
    ['statistics', 'training']
    """

    mechanisms: list[Mechanism] = field(default_factory=list)
    orders: np.ndarray = field(default_factory=lambda: DEFAULT_ORDERS.copy())
    #: Rows of one privacy unit in the data read by the mechanisms added from now on.
    contribution: int = 1

    def add_gaussian(
        self, name: str, noise_multiplier: float, *, count: int = 1, consumer: str = "statistics"
    ) -> None:
        """Record ``count`` Gaussian releases of sensitivity-1 queries with noise ``σ``."""
        self.mechanisms.append(
            Mechanism(
                name,
                consumer,
                "gaussian",
                noise_multiplier=float(noise_multiplier),
                count=int(count),
                group=int(self.contribution),
            )
        )

    def add_sampled_gaussian(
        self,
        name: str,
        noise_multiplier: float,
        *,
        sample_rate: float,
        steps: int,
        consumer: str = "training",
    ) -> None:
        """Record ``steps`` DP-SGD steps (Poisson sampling, clipped gradients, noise ``σ``)."""
        self.mechanisms.append(
            Mechanism(
                name,
                consumer,
                "sampled_gaussian",
                noise_multiplier=float(noise_multiplier),
                sample_rate=float(sample_rate),
                steps=int(steps),
                group=int(self.contribution),
            )
        )

    def add_zcdp(
        self, name: str, rho: float, *, count: int = 1, consumer: str = "statistics"
    ) -> None:
        """Record ``count`` ρ-zCDP releases (e.g. the exponential mechanism: ``ρ = ε₀²/8``).

        Stored as the Gaussian mechanism with the same curve, ``σ = 1/sqrt(2ρ)``.
        """
        self.mechanisms.append(
            Mechanism(
                name,
                consumer,
                "gaussian",
                noise_multiplier=float(1.0 / math.sqrt(2.0 * rho)),
                count=int(count),
                group=int(self.contribution),
            )
        )

    def add_delta(self, name: str, delta: float, *, consumer: str = "statistics") -> None:
        """Record a release that is private except with probability ``delta``."""
        self.mechanisms.append(Mechanism(name, consumer, "delta", delta=float(delta)))

    def extend(self, other: PrivacyAccountant) -> None:
        self.mechanisms.extend(other.mechanisms)

    # ------------------------------------------------------------------ totals
    def _curve(self, m: Mechanism) -> np.ndarray:
        if m.kind == "gaussian":  # sensitivity g: exactly g² times the curve
            return m.group**2 * gaussian_rdp(m.noise_multiplier, self.orders, m.count)
        if m.kind == "sampled_gaussian":
            return group_sampled_gaussian_rdp(
                m.sample_rate, m.noise_multiplier, m.steps, m.group, self.orders
            )
        return np.zeros(len(self.orders))

    def rdp(self, consumer: str | None = None) -> np.ndarray:
        """The composed RDP curve (of one consumer, or of all)."""
        total = np.zeros(len(self.orders))
        for m in self.mechanisms:
            if consumer is None or m.consumer == consumer:
                total = total + self._curve(m)
        return total

    def delta_slack(self, consumer: str | None = None) -> float:
        return float(
            sum(m.delta for m in self.mechanisms if consumer is None or m.consumer == consumer)
        )

    def get_epsilon(self, delta: float, consumer: str | None = None) -> float:
        """ε of the whole ledger (or one consumer alone) at the total ``delta``."""
        rdp_delta = delta - self.delta_slack(consumer)
        if rdp_delta <= 0:
            raise PrivacyError(
                f"delta={delta:g} is smaller than the failure probability of the category "
                f"releases ({self.delta_slack(consumer):g}). Give a larger delta."
            )
        if not self.mechanisms:
            return 0.0
        return epsilon_from_rdp(self.rdp(consumer), rdp_delta, self.orders)[0]

    def summary(self, delta: float) -> dict[str, Any]:
        """Total ε and, per consumer, the ε it would cost alone and its mechanisms."""
        consumers: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(m.consumer for m in self.mechanisms):
            entries = [m for m in self.mechanisms if m.consumer == name]
            consumers[name] = {
                "epsilon_alone": self.get_epsilon(delta, name),
                "mechanisms": len(entries),
            }
        return {"epsilon": self.get_epsilon(delta), "delta": delta, "consumers": consumers}

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"mechanisms": [asdict(m) for m in self.mechanisms]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrivacyAccountant:
        fields = set(Mechanism.__dataclass_fields__)
        entries = data.get("mechanisms", [])
        return cls([Mechanism(**{k: v for k, v in m.items() if k in fields}) for m in entries])
