"""Differential privacy for synthesizers: parameters, budget planning, the privacy report.

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
        self._accountant_ = PrivacyAccountant()
        rho = rho_for_epsilon(float(self.epsilon), self._dp_delta * (1 - _RELEASE_DELTA_SHARE))
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
        )

    def _finish_privacy(self, **details: Any) -> None:
        """Write ``privacy_budget_`` from the ledger (call at the end of ``_fit``)."""
        summary = self._accountant_.summary(self._dp_delta)
        self.privacy_budget_ = {
            "differential_privacy": True,
            "guarantee": (
                f"({self.epsilon}, {self._dp_delta:.3g})-differential privacy for "
                "each training row (add/remove one row)"
            ),
            "epsilon": float(self.epsilon),
            "epsilon_spent": summary["epsilon"],
            "delta": self._dp_delta,
            "accountant": ACCOUNTANT,
            "consumers": summary["consumers"],
            "public_bounds": sorted((self.public_bounds or {}).keys()),
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


class DPSGDMixin(DPMixin):
    """DP-SGD bookkeeping for the deep synthesizers (see :class:`~clinsynth.privacy.DPSGD`).

    A model calls :meth:`_dp_prepare` once its networks and training tensor exist, draws each
    private step's rows with :meth:`_dp_batch` (Poisson sampling at ``q = batch_size / n``),
    lets ``self._dp_sgd.step(row_loss, ...)`` write the private gradients, and calls
    :meth:`_dp_finish` after training. The noise multiplier is calibrated so that the
    transformer's statistics plus ``epochs`` of steps spend exactly ``epsilon``.
    """

    def _dp_check_training(self) -> None:
        if not self.dp_enabled:
            return
        name = type(self).__name__
        if getattr(self, "validation_split", 0):
            raise ParameterError(
                f"validation_split of {name} must be 0 with epsilon: the validation loss is "
                "computed on real rows outside the privacy budget."
            )
        if getattr(self, "early_stopping_patience", None) is not None:
            raise ParameterError(
                f"early_stopping_patience of {name} must be None with epsilon: stopping on a "
                "real-data loss spends privacy outside the budget."
            )

    def _dp_prepare(
        self, modules: dict[str, Any], num_rows: int, steps: int, generator: Any
    ) -> None:
        """Calibrate the noise for ``steps`` private steps and build the DP-SGD engine."""
        from clinsynth.privacy import DPSGD

        batch = min(int(self.batch_size), int(num_rows))  # type: ignore[attr-defined]
        self._dp_rate = batch / num_rows
        self._dp_steps_planned = int(steps)
        self._dp_noise = self._calibrate_sgd(self._dp_rate, self._dp_steps_planned)
        self._dp_sgd = DPSGD(
            modules,
            noise_multiplier=self._dp_noise,
            max_grad_norm=float(self.max_grad_norm),
            sample_rate=self._dp_rate,
            num_rows=num_rows,
            generator=generator,
        )
        self._dp_networks = (
            sorted(modules)
            if isinstance(modules, dict)
            else [n for n, m in self._networks().items() if m is modules]
        )  # type: ignore[attr-defined]

    def _dp_batch(self, num_rows: int, generator: Any) -> Any:
        from clinsynth.privacy import poisson_batch

        return poisson_batch(num_rows, self._dp_rate, generator, device=generator.device)

    def _dp_finish(self) -> None:
        """Record the training in the ledger and write ``privacy_budget_``.

        The planned steps are recorded: every epoch runs (no early stopping with DP), and a fit
        resumed from a checkpoint has taken them all, some before the interruption.
        """
        steps = self._dp_steps_planned
        self._accountant_.add_sampled_gaussian(
            "DP-SGD on " + ", ".join(self._dp_networks),
            self._dp_noise,
            sample_rate=self._dp_rate,
            steps=steps,
            consumer="training",
        )
        self._finish_privacy(
            mechanism="DP-SGD (Poisson sampling, per-row clipping, Gaussian noise)",
            networks=self._dp_networks,
            max_grad_norm=float(self.max_grad_norm),
            noise_multiplier=self._dp_noise,
            sample_rate=self._dp_rate,
            steps=steps,
            epochs=int(self.epochs),  # type: ignore[attr-defined]
        )
        self._dp_sgd = None


class DPDeepMixin(DPSGDMixin):
    """``epsilon``/``delta``/``max_grad_norm``/``public_bounds`` for a deep synthesizer.

    Put it before :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` in the bases; the model
    then implements ``_dp_modules()`` (the networks that read real rows) and a private branch of
    ``_train_step`` that draws ``self._dp_batch(...)`` and calls ``self._dp_sgd.step(...)``.
    The noise is calibrated in ``_prepare_training`` for the whole schedule
    (``epochs × steps per epoch × _dp_steps_per_step()``) and the budget is written in
    ``_release_training``. With ``epsilon=None`` nothing changes.
    """

    def __init__(
        self,
        metadata: Any,
        *,
        epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        public_bounds: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)  # type: ignore[call-arg]
        self._init_dp(epsilon, delta, max_grad_norm, public_bounds)

    def _check_params(self) -> None:
        super()._check_params()  # type: ignore[misc]
        self._dp_check_training()

    def _prepare_training(self, data: Any, generator: Any) -> None:
        super()._prepare_training(data, generator)  # type: ignore[misc]
        self._dp_sgd = None
        if self.dp_enabled:
            n = len(data)
            per_epoch = self._steps_per_epoch(n) or math.ceil(  # type: ignore[attr-defined]
                n / max(1, min(int(self.batch_size), n))
            )  # type: ignore[attr-defined]
            steps = int(self.epochs) * per_epoch * self._dp_steps_per_step()  # type: ignore
            self._dp_prepare(self._dp_modules(), n, steps, generator)

    def _release_training(self) -> None:
        super()._release_training()  # type: ignore[misc]
        if getattr(self, "_dp_sgd", None) is not None:
            self._dp_finish()

    def _dp_modules(self) -> Any:
        """The networks whose training reads real rows (one module, or a dict of them)."""
        raise NotImplementedError

    def _dp_steps_per_step(self) -> int:
        """Private updates per training step (a GAN's critic steps)."""
        return 1
