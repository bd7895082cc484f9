"""Differential privacy for synthesizers, as a part a model owns: parameters, budget planning,
DP-SGD around a deep model's training step, and the privacy report.

A model that takes ``epsilon`` (``delta``, ``public_bounds`` and, for DP-SGD,
``max_grad_norm``; checks in :data:`DP_PARAMETERS`) gets a :class:`DifferentialPrivacy` as
``self._dp_`` when it is fitted with a budget; when ``epsilon`` is None it is None and nothing
changes. With a budget, the transformer learns its statistics privately (a share of the budget,
:class:`~clinsynth.privacy.DPStatistics`), the model spends the rest (deep models by
:class:`DPSGDTraining`, the training engine's step wrapper), every release is written to one
:class:`~clinsynth.privacy.PrivacyAccountant`, and the result is ``privacy_budget_``, saved in the
bundle manifest under ``"privacy"`` and returned by ``get_privacy_report()``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from clinsynth.errors import ParameterError
from clinsynth.privacy import (
    DPStatistics,
    PrivacyAccountant,
    calibrate_noise_multiplier,
    default_delta,
    rho_for_epsilon,
)

logger = logging.getLogger(__name__)

#: How the ledger is turned into (ε, δ), as written in reports.
ACCOUNTANT = (
    "Renyi DP (Gaussian and sampled Gaussian mechanisms, Mironov et al. 2017/2019); "
    "RDP to (epsilon, delta) by Balle et al. 2020"
)
#: Share of δ reserved for naming categories found in the data (thresholded histograms).
_RELEASE_DELTA_SHARE = 0.1


def _is_epsilon(v: Any) -> bool:
    return v is None or (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    )


def _is_bounds(v: Any) -> bool:
    if v is None:
        return True
    if not isinstance(v, dict):
        return False
    for bounds in v.values():
        if isinstance(bounds, tuple) and len(bounds) == 2:
            continue
        if isinstance(bounds, list):  # a category list, or a JSON round trip of (low, high)
            continue
        return False
    return True


def _rules_outside_budget(rules: list[Any]) -> list[str]:
    """Rules whose fitted state holds values read from the data (beyond dtypes): the allowed
    combinations of FixedCombinations, Positive's smallest value, a Formula's decimals... and
    every rule discovered in the data (discovery read the real rows without noise)."""

    def reads_data(state: Any) -> bool:
        if isinstance(state, list):  # values (allowed combinations), or sub-rules' states
            return any(reads_data(v) if isinstance(v, dict | list) else True for v in state)
        if not isinstance(state, dict):
            return False
        for key, value in state.items():
            if key in ("dtype", "dtypes"):  # the schema, not the patients
                continue
            if not isinstance(value, dict | list) or reads_data(value):
                return True
        return False

    return [
        r.describe()
        for r in rules
        if getattr(r, "discovered", False) or reads_data(getattr(r, "state_", None) or {})
    ]


def _compact(mechanism: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry without the fields at their neutral value (shorter manifests)."""
    neutral = {"noise_multiplier": 0.0, "sample_rate": 1.0, "steps": 1, "count": 1, "delta": 0.0}
    neutral["group"] = 1
    return {k: v for k, v in mechanism.items() if neutral.get(k, object()) != v}


def base_privacy_report(model: Any) -> dict[str, Any]:
    """The privacy facts of any fitted synthesizer (plus its DP budget when it has one)."""
    transformers = model._transformer_.transformers_
    merged = {
        c: int(t.merged_levels_) for c, t in transformers.items() if getattr(t, "merged_levels_", 0)
    }
    report: dict[str, Any] = {
        "differential_privacy": False,
        "guarantee": "none: no differential privacy (use epsilon= or the dp_marginal model)",
        "rare_category_threshold": model.rare_category_threshold,
        "rare_levels_merged": merged,
        "generated_columns": [
            c for c, t in transformers.items() if t.kind in ("id", "pii", "format")
        ],
    }
    budget = getattr(model, "privacy_budget_", None)
    if budget:
        report.update(budget)
        # Rules fit on the real rows outside the DP mechanisms (their state is in the bundle).
        outside = _rules_outside_budget(getattr(model, "_rules_", None) or [])
        report["not_covered"] = outside
        if outside:
            report["guarantee"] = (
                budget["guarantee"] + ", except the values that the rules in 'not_covered' "
                "read from the data"
            )
    return report


#: The differential-privacy parameters and their checks, for a model's
#: ``_parameter_constraints`` (a model with a budget takes ``epsilon``, ``delta``,
#: ``public_bounds`` and, when it trains by DP-SGD, ``max_grad_norm``).
DP_PARAMETERS: dict[str, tuple[Any, str]] = {
    "epsilon": (_is_epsilon, "None or a finite float > 0"),
    "delta": (
        lambda v: v is None or (isinstance(v, float) and 0 < v < 1),
        "None or a float in (0, 1)",
    ),
    "max_grad_norm": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
        "a float > 0",
    ),
    "public_bounds": (
        _is_bounds,
        "None or a dict of column to (low, high) or a list of levels",
    ),
}


class DifferentialPrivacy:
    """The differential privacy of one fit: budget, ledger, DP-SGD and the budget report.

    A model with a budget owns one as ``self._dp_``, built at the start of
    :meth:`~clinsynth.synthesizers.BaseSynthesizer.fit` (:meth:`from_model`; None when
    ``epsilon`` is None, and then nothing changes). The whole interface:

    1. :meth:`plan` (called by ``fit``): fixes δ, opens the
       :class:`~clinsynth.privacy.PrivacyAccountant` (``accountant``) and returns the
       transformer's share of the budget as a :class:`~clinsynth.privacy.DPStatistics`.
    2. The model spends the rest: by DP-SGD (:meth:`sgd`, a :class:`DPSGDTraining` that the
       deep models' training engine runs instead of the plain step), or with its own
       mechanisms written to ``accountant`` (``rho`` is the whole budget in zCDP).
    3. :meth:`budget` turns the ledger into the model's ``privacy_budget_`` (saved in the bundle
       manifest under ``"privacy"``, read back by :func:`restore_budget`).

    A new DP option is one keyword argument here with a neutral default (the behaviour without
    it unchanged), read from the model's parameter of the same name in :meth:`from_model`
    (``getattr(model, name, default)``) and, when it changes the guarantee, written by
    :meth:`budget`; the models that take it add the parameter and its check.

    Parameters
    ----------
    epsilon : float
        Total privacy budget ε (the transformer's statistics and the model together).
    delta : float, optional
        δ of the (ε, δ) guarantee; default ``1 / (10 n)`` for ``n`` training rows.
    max_grad_norm : float
        Per-row gradient clipping norm of DP-SGD.
    public_bounds : dict, optional
        Public knowledge that costs no budget: ``{"age": (0, 110)}`` for numbers and dates,
        ``{"sex": ["F", "M"]}`` for category lists. Columns without it get DP ranges and
        thresholded category discovery, which cost budget and cut rare tails.
    statistics_share : float
        Share of the budget (in zCDP ρ) spent on the transformer's statistics.
    n_bins : int
        Bins of the transformer's DP histograms.
    seed : int
        Seed of the transformer's DP noise.
    rows_per_unit : int
        The most rows one privacy unit (a patient) has in the training data; a schema model
        that protects patients sets the model's ``dp_rows_per_unit`` before ``fit``. The
        sensitivity is then that many rows: the noise is planned for ``rho / rows_per_unit²``
        and the ledger charges each release per unit (``docs/PRIVACY.md``, section 2.5).

    Examples
    --------
    >>> dp = DifferentialPrivacy(1.0, seed=0)
    >>> stats = dp.plan(1000)
    >>> dp.delta_, round(stats.rho / dp.rho, 3)
    (0.0001, 0.1)
    >>> dp.budget()["epsilon_spent"]  # nothing spent yet
    0.0
    """

    def __init__(
        self,
        epsilon: float,
        delta: float | None = None,
        *,
        max_grad_norm: float = 1.0,
        public_bounds: dict[str, Any] | None = None,
        statistics_share: float = 0.1,
        n_bins: int = 32,
        seed: int = 0,
        rows_per_unit: int = 1,
    ) -> None:
        self.epsilon = float(epsilon)
        self.delta = delta
        self.max_grad_norm = float(max_grad_norm)
        self.public_bounds = public_bounds or {}
        self.statistics_share = float(statistics_share)
        self.n_bins = int(n_bins)
        self.seed = int(seed)
        self.rows_per_unit = int(rows_per_unit)
        #: Set by :meth:`plan`: δ, the ledger and the whole budget in zCDP ρ.
        self.delta_: float = float("nan")
        self.accountant = PrivacyAccountant()
        self.rho = float("nan")

    @classmethod
    def from_model(cls, model: Any, **options: Any) -> DifferentialPrivacy | None:
        """The part for ``model``'s parameters (``epsilon``, ``delta``, ``max_grad_norm``,
        ``public_bounds``, ``random_state``); None without a budget. ``options``: the
        keyword arguments of the class (a model's own statistics share or bins)."""
        epsilon = getattr(model, "epsilon", None)
        if epsilon is None:
            return None
        rng = np.random.default_rng(model.random_state)
        return cls(
            epsilon,
            model.delta,
            max_grad_norm=getattr(model, "max_grad_norm", 1.0),
            public_bounds=model.public_bounds,
            seed=int(rng.integers(0, 2**31 - 1)),
            rows_per_unit=int(getattr(model, "dp_rows_per_unit", 1)),
            **options,
        )

    def plan(self, num_rows: int) -> DPStatistics:
        """Fix δ for ``num_rows`` training rows, open the ledger, and return the transformer's
        share of the budget."""
        self.delta_ = float(self.delta) if self.delta is not None else default_delta(num_rows)
        self.accountant = PrivacyAccountant(contribution=self.rows_per_unit)
        rho = rho_for_epsilon(self.epsilon, self.delta_ * (1 - _RELEASE_DELTA_SHARE))
        self.rho = rho / self.rows_per_unit**2  # sensitivity: a unit's rows
        bounds = {k: tuple(v) if isinstance(v, tuple) else v for k, v in self.public_bounds.items()}
        return DPStatistics(
            rho=self.rho * self.statistics_share,
            delta=self.delta_ * _RELEASE_DELTA_SHARE,
            public_bounds=bounds,
            n_bins=self.n_bins,
            random_state=self.seed,
            accountant=self.accountant,
        )

    def calibrate_sgd(self, sample_rate: float, steps: int) -> float:
        """The DP-SGD noise multiplier that spends the rest of ε in ``steps`` steps."""
        return calibrate_noise_multiplier(
            self.epsilon,
            self.delta_ - self.accountant.delta_slack(),
            sample_rate,
            steps,
            extra_rdp=self.accountant.rdp(),
            group=self.rows_per_unit,
        )

    def sgd(
        self,
        modules: Any,
        networks: list[str],
        *,
        num_rows: int,
        batch_size: int,
        steps: int,
        generator: Any,
    ) -> DPSGDTraining:
        """DP-SGD for ``steps`` private updates of ``modules`` (named ``networks``) over
        ``num_rows`` rows in Poisson batches of ``batch_size`` rows on average, its noise
        calibrated to spend the rest of the budget."""
        rate = min(int(batch_size), int(num_rows)) / num_rows
        return DPSGDTraining(
            modules,
            networks,
            num_rows=num_rows,
            sample_rate=rate,
            steps=steps,
            noise_multiplier=self.calibrate_sgd(rate, int(steps)),
            max_grad_norm=self.max_grad_norm,
            generator=generator,
        )

    def budget(self, **details: Any) -> dict[str, Any]:
        """The model's ``privacy_budget_`` from the ledger, with the mechanism's ``details``."""
        summary = self.accountant.summary(self.delta_)
        c = self.rows_per_unit
        unit = (
            "each training row (add/remove one row)"
            if c == 1
            else f"each privacy unit with up to {c} rows here (add/remove one unit)"
        )
        return {
            "differential_privacy": True,
            "guarantee": f"({self.epsilon}, {self.delta_:.3g})-differential privacy for {unit}",
            "epsilon": self.epsilon,
            "epsilon_spent": summary["epsilon"],
            "delta": self.delta_,
            "accountant": ACCOUNTANT,
            "consumers": summary["consumers"],
            "public_bounds": sorted(self.public_bounds.keys()),
            **({"rows_per_unit": self.rows_per_unit} if self.rows_per_unit > 1 else {}),
            **details,
            "ledger": [_compact(m) for m in self.accountant.to_dict()["mechanisms"]],
        }


def restore_budget(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The ``privacy_budget_`` a bundle's manifest holds (None without differential privacy):
    the inverse of :meth:`DifferentialPrivacy.budget` after the privacy report added its
    derived fields."""
    privacy = manifest.get("privacy") or {}
    if not privacy.get("differential_privacy"):
        return None
    derived = (
        "rare_category_threshold",
        "rare_levels_merged",
        "generated_columns",
        "not_covered",
    )
    budget = {k: v for k, v in privacy.items() if k not in derived}
    budget["guarantee"] = budget["guarantee"].split(", except")[0]  # re-derived on report
    return budget


def require_epsilon(model: Any) -> None:
    """Raise the parameter error of a model that is private by design and has no budget."""
    if model.epsilon is None:
        raise ParameterError(
            f"{type(model).__name__} is a differentially private model: give it a budget, "
            "e.g. epsilon=1.0 (smaller is more private; 0.5-3 is typical)."
        )


class PrivateStep(NamedTuple):
    """How a deep model trains by DP-SGD, as its ``_dp_training()`` declares it.

    ``modules``: the networks whose training reads real rows (one module, or a dict of them);
    ``step(dp)``: one private training step, which draws its rows with ``dp.batch(...)`` and
    writes private gradients with ``dp.step(...)`` (``dp`` a :class:`DPSGDTraining`) and
    returns the step's losses; ``updates``: private updates per step (a GAN's critic steps).
    """

    modules: Any
    step: Callable[[DPSGDTraining], dict[str, Any]]
    updates: int = 1


class DPSGDTraining:
    """DP-SGD wrapped around a model's training step, with its share of the ledger.

    Built by :meth:`DifferentialPrivacy.sgd` once the networks and the training tensor exist,
    its noise calibrated so that the transformer's statistics plus ``steps`` private steps
    spend exactly ``epsilon``. The training engine runs the model's private step with it
    (:meth:`wrap`); that step draws its rows with :meth:`batch` (Poisson sampling at
    ``q = batch_size / n``) and lets :meth:`step` write the private gradients of a per-row loss
    (:class:`~clinsynth.privacy.DPSGD`); :meth:`record` writes the training into the
    accountant when training ends and returns what the privacy report says of it.
    """

    def __init__(
        self,
        modules: Any,
        networks: list[str],
        *,
        num_rows: int,
        sample_rate: float,
        steps: int,
        noise_multiplier: float,
        max_grad_norm: float,
        generator: Any,
    ) -> None:
        from clinsynth.privacy import DPSGD

        self.networks = networks
        self.sample_rate = sample_rate
        self.steps = int(steps)
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.engine = DPSGD(
            modules,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            sample_rate=sample_rate,
            num_rows=num_rows,
            generator=generator,
        )

    def wrap(self, private_step: Any) -> Any:
        """The engine's training step ``step(idx)`` that runs ``private_step(self)``: a private
        step draws its own Poisson batch, so the engine's batch indices are not used."""

        def step(idx: Any) -> Any:
            return private_step(self)

        return step

    def batch(self, num_rows: int, generator: Any) -> Any:
        """Indices of a Poisson-sampled batch of the training rows."""
        from clinsynth.privacy import poisson_batch

        return poisson_batch(num_rows, self.sample_rate, generator, device=generator.device)

    def step(self, row_loss: Any, *tensors: Any) -> Any:
        """Write the private gradients of ``row_loss`` over ``tensors`` (one row each)."""
        return self.engine.step(row_loss, *tensors)

    def record(self, accountant: PrivacyAccountant) -> dict[str, Any]:
        """Add the training to the ledger; what the privacy report says of it.

        The planned steps are recorded: every epoch runs (no early stopping with DP), and a fit
        resumed from a checkpoint has taken them all, some before the interruption.
        """
        accountant.add_sampled_gaussian(
            "DP-SGD on " + ", ".join(self.networks),
            self.noise_multiplier,
            sample_rate=self.sample_rate,
            steps=self.steps,
            consumer="training",
        )
        return {
            "mechanism": "DP-SGD (Poisson sampling, per-row clipping, Gaussian noise)",
            "networks": self.networks,
            "max_grad_norm": self.max_grad_norm,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }
