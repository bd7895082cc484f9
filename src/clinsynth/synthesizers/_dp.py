"""Differential privacy for synthesizers: parameters, budget planning, the privacy report, and
DP-SGD around a deep model's training step (:class:`DPSGDTraining`, which
:class:`~clinsynth.synthesizers._deep.DeepSynthesizer` builds when ``epsilon`` is given).

:class:`DPMixin` gives a synthesizer ``epsilon``, ``delta``, ``max_grad_norm`` and
``public_bounds``; when ``epsilon`` is None nothing changes. With a budget, the transformer learns
its statistics privately (a share of the budget, :class:`~clinsynth.privacy.DPStatistics`), the
model spends the rest, every release is written to one
:class:`~clinsynth.privacy.PrivacyAccountant`, and the result is ``privacy_budget_``, saved in the
bundle manifest under ``"privacy"`` and returned by ``get_privacy_report()``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

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
        if getattr(r, "discovered", False) or reads_data(getattr(r, "state", None) or {})
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
        c: int(t.merged_levels) for c, t in transformers.items() if getattr(t, "merged_levels", 0)
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


class DPMixin:
    """Differential-privacy parameters and bookkeeping shared by the private synthesizers.

    Parameters
    ----------
    epsilon : float, optional
        Total privacy budget ε of the model (transformer statistics and training together).
        None trains without differential privacy.
    delta : float, optional
        δ of the (ε, δ) guarantee; default ``1 / (10 n)`` for ``n`` training rows.
    max_grad_norm : float
        Per-row gradient clipping norm of DP-SGD.
    public_bounds : dict, optional
        Public knowledge that costs no budget: ``{"age": (0, 110)}`` for numbers and dates,
        ``{"sex": ["F", "M"]}`` for category lists. Columns without it get DP ranges and
        thresholded category discovery, which cost budget and cut rare tails.

    A schema model that protects patients sets ``dp_rows_per_unit`` (the most rows one patient
    has in this table) before ``fit``: the budget is then per patient (sensitivity scaled).
    """

    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
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
    #: Share of the budget (in zCDP ρ) spent on the transformer's statistics.
    _statistics_share: ClassVar[float] = 0.1

    def _init_dp(
        self,
        epsilon: float | None,
        delta: float | None,
        max_grad_norm: float,
        public_bounds: dict[str, Any] | None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.public_bounds = public_bounds

    @property
    def dp_enabled(self) -> bool:
        """Whether this model trains with differential privacy."""
        return getattr(self, "epsilon", None) is not None

    # ------------------------------------------------------------------ planning
    def _privacy_statistics(self, num_rows: int) -> DPStatistics | None:
        """Plan the budget and hand the transformer its share (called by ``fit``)."""
        self.privacy_budget_ = None
        if not self.dp_enabled:
            return None
        self._dp_rows = int(num_rows)
        self._dp_delta = float(self.delta) if self.delta is not None else default_delta(num_rows)
        # A schema's patient may own several rows (``dp_rows_per_unit``, set by the schema
        # model): sensitivity c, so the row-level noise is planned for rho / c².
        unit_rows = int(getattr(self, "dp_rows_per_unit", 1))
        self._accountant_ = PrivacyAccountant(contribution=unit_rows)
        rho = rho_for_epsilon(float(self.epsilon), self._dp_delta * (1 - _RELEASE_DELTA_SHARE))
        rho = rho / unit_rows**2
        self._dp_rho_total = rho
        bounds = {
            k: tuple(v) if isinstance(v, tuple) else v
            for k, v in (self.public_bounds or {}).items()
        }
        return DPStatistics(
            rho=rho * self._statistics_share,
            delta=self._dp_delta * _RELEASE_DELTA_SHARE,
            public_bounds=bounds,
            n_bins=self._dp_bins(),
            random_state=int(self._dp_seed()),
            accountant=self._accountant_,
        )

    def _dp_bins(self) -> int:
        return 32

    def _dp_seed(self) -> int:
        rng = np.random.default_rng(self.random_state)  # type: ignore[attr-defined]
        return int(rng.integers(0, 2**31 - 1))

    def _remaining_delta(self) -> float:
        return self._dp_delta - self._accountant_.delta_slack()

    def _calibrate_sgd(self, sample_rate: float, steps: int) -> float:
        """The DP-SGD noise multiplier that spends the rest of ε in ``steps`` steps."""
        return calibrate_noise_multiplier(
            float(self.epsilon),
            self._remaining_delta(),
            sample_rate,
            steps,
            extra_rdp=self._accountant_.rdp(),
            group=self._accountant_.contribution,
        )

    def _finish_privacy(self, **details: Any) -> None:
        """Write ``privacy_budget_`` from the ledger (call at the end of ``_fit``)."""
        summary = self._accountant_.summary(self._dp_delta)
        unit_rows = self._accountant_.contribution
        unit = (
            "each training row (add/remove one row)"
            if unit_rows == 1
            else f"each privacy unit with up to {unit_rows} rows here (add/remove one unit)"
        )
        self.privacy_budget_ = {
            "differential_privacy": True,
            "guarantee": f"({self.epsilon}, {self._dp_delta:.3g})-differential privacy for {unit}",
            "epsilon": float(self.epsilon),
            "epsilon_spent": summary["epsilon"],
            "delta": self._dp_delta,
            "accountant": ACCOUNTANT,
            "consumers": summary["consumers"],
            "public_bounds": sorted((self.public_bounds or {}).keys()),
            **({"rows_per_unit": unit_rows} if unit_rows > 1 else {}),
            **details,
            "ledger": [_compact(m) for m in self._accountant_.to_dict()["mechanisms"]],
        }

    def get_privacy_budget(self) -> dict[str, Any] | None:
        """The DP budget of the fitted model (None without differential privacy)."""
        return getattr(self, "privacy_budget_", None)

    def _load_manifest_extra(self, manifest: dict[str, Any]) -> None:
        privacy = manifest.get("privacy") or {}
        if not privacy.get("differential_privacy"):
            self.privacy_budget_ = None
            return
        derived = (
            "rare_category_threshold",
            "rare_levels_merged",
            "generated_columns",
            "not_covered",
        )
        budget = {k: v for k, v in privacy.items() if k not in derived}
        budget["guarantee"] = budget["guarantee"].split(", except")[0]  # re-derived on report
        self.privacy_budget_ = budget

    def _require_epsilon(self) -> None:
        if self.epsilon is None:
            raise ParameterError(
                f"{type(self).__name__} is a differentially private model: give it a budget, "
                "e.g. epsilon=1.0 (smaller is more private; 0.5-3 is typical)."
            )


class DPSGDTraining:
    """DP-SGD wrapped around a model's training step, with its share of the ledger.

    Built once the networks and the training tensor exist (:meth:`plan`, which calibrates the
    noise so that the transformer's statistics plus ``steps`` private steps spend exactly
    ``epsilon``). The model's private training step draws its rows with :meth:`batch` (Poisson
    sampling at ``q = batch_size / n``) and lets :meth:`step` write the private gradients of a
    per-row loss (:class:`~clinsynth.privacy.DPSGD`); :meth:`record` writes the training into
    the accountant when training ends and returns what the privacy report says of it.
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

    @classmethod
    def plan(
        cls, model: Any, modules: Any, num_rows: int, steps: int, generator: Any
    ) -> DPSGDTraining:
        """Calibrate the noise of ``model`` (a deep model with a budget: ``batch_size``,
        ``max_grad_norm``, ``_networks()`` and :class:`DPMixin`'s planning) for ``steps``
        private steps over ``num_rows`` rows, on the networks ``modules``."""
        batch = min(int(model.batch_size), int(num_rows))
        rate = batch / num_rows
        networks = (
            sorted(modules)
            if isinstance(modules, dict)
            else [n for n, m in model._networks().items() if m is modules]
        )
        return cls(
            modules,
            networks,
            num_rows=num_rows,
            sample_rate=rate,
            steps=steps,
            noise_multiplier=model._calibrate_sgd(rate, int(steps)),
            max_grad_norm=float(model.max_grad_norm),
            generator=generator,
        )

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
