"""Differential privacy of the sequential synthesizer, with the patient as the unit.

The training example of the event network is one whole sequence, so DP-SGD over
Poisson-sampled sequences with per-sequence clipping clips per patient: adding or removing a
patient changes one example (each sequence is cut to its first ``max_sequence_length`` events,
:func:`truncate`, which bounds the work of a step and the number of events the context model
learns). The statistics read from the events use one event (and one gap) drawn at random per
patient, so that a patient is one row of each histogram: with ``L`` events per patient the
noise of a row-level histogram would have to grow ``L`` times for the same signal.

One (ε, δ) for the patient, one ledger, split in zCDP: ``ρ`` of (ε, 0.9 δ) is shared by a
fixed rule (:data:`SHARES`), each part charged at the patient level:

* ``context`` (20 %): the per-patient table (context columns, number of events, first time,
  event rate) is learned by :class:`~clinsynth.synthesizers.DPMarginalSynthesizer` with the
  (ε, δ) of that ρ; its ledger joins the model's.
* ``encoder`` (5 %): the statistics of the network's encoding of that table (normal scores,
  levels), one row per patient.
* ``events`` (10 %): the event columns' transformer statistics
  (:class:`~clinsynth.privacy.DPStatistics`) on one random event per patient.
* ``gaps`` (5 %): the quantile knots of the log gaps between events, from a DP range and a
  noisy histogram of one random gap per patient.
* the rest: DP-SGD on the event network, its noise calibrated on the composed ledger so that
  the whole model spends exactly ε (:func:`~clinsynth.privacy.calibrate_noise_multiplier`).

The time resolution comes from the metadata (:func:`~clinsynth.synthesizers._sequence_data.
declared_axis`). Inside a schema, the schema model sets ``dp_rows_per_unit``
(the events a patient keeps) and ``dp_sequences_per_unit`` (sequences a patient may have: 1
under the patients' table); every release is then charged for that many sequences (Gaussian
releases exactly, DP-SGD by RDP group privacy).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import PrivacyError
from clinsynth.privacy import DEFAULT_ORDERS, DPStatistics, epsilon_from_rdp, rho_for_epsilon
from clinsynth.synthesizers._dp import DifferentialPrivacy

#: Events kept per patient by default with differential privacy (the first ones in time).
DEFAULT_MAX_SEQUENCE_LENGTH = 32
#: Shares of the patient's zCDP budget; DP-SGD spends the rest (about 60 %).
SHARES = {"context": 0.20, "encoder": 0.05, "events": 0.10, "gaps": 0.05}
#: δ share the DP statistics keep for naming categories found in the data.
_RELEASE_DELTA_SHARE = 0.1
#: Quantile knots of the private gap distribution, and the bins of its histogram.
_GAP_KNOTS, _GAP_BINS = 50, 64
#: What the model reads from the real rows outside the DP mechanisms.
NOT_COVERED = [
    "the number of patients and of events (the training sizes)",
    "which context columns bound every event of a patient (an end of follow-up no event "
    "passes, a birth date none precedes): a structural choice made on the real rows",
]


def truncate(events: pd.DataFrame, key: str, max_length: int) -> pd.DataFrame:
    """The first ``max_length`` events of each patient (``events`` sorted by patient and
    time)."""
    rank = events.groupby(key, sort=False).cumcount().to_numpy()
    if (rank < max_length).all():
        return events
    return events[rank < max_length].reset_index(drop=True)


class SequencePrivacy:
    """The budget of one DP fit of a sequential model (see the module notes).

    Parameters
    ----------
    model : SequentialSynthesizer
        Its ``epsilon``, ``delta``, ``max_grad_norm``, ``public_bounds``, ``random_state``,
        ``max_sequence_length`` and, inside a schema, ``dp_rows_per_unit`` and
        ``dp_sequences_per_unit``.
    n_sequences : int
        Sequences (patients) in the training data.
    """

    def __init__(self, model: Any, n_sequences: int) -> None:
        self.schema = getattr(model, "dp_rows_per_unit", None) is not None
        self.sequences_per_unit = int(getattr(model, "dp_sequences_per_unit", 1) or 1)
        self.max_length = int(model.max_sequence_length_)
        self.events_per_unit = int(model.dp_rows_per_unit) if self.schema else self.max_length
        if model.delta is not None and not self.schema and not model.delta < 1.0 / n_sequences:
            raise PrivacyError(
                f"The 'delta' parameter of {type(model).__name__} must be below 1/n with n = "
                f"{n_sequences} patients, i.e. below {1.0 / n_sequences:.3g} (a larger delta "
                f"may release a whole patient). Got {model.delta!r}. Leave it out for 1/(10 n)."
            )
        dp = DifferentialPrivacy.from_model(model)
        assert dp is not None  # epsilon is set
        dp.rows_per_unit = self.sequences_per_unit
        dp.plan(n_sequences)  # δ and the ledger; its own statistics share is not used
        self.dp = dp
        self.delta = dp.delta_
        self.rho = rho_for_epsilon(dp.epsilon, self.delta * (1 - _RELEASE_DELTA_SHARE))
        self._seeds = np.random.SeedSequence(dp.seed).spawn(4)

    @property
    def accountant(self) -> Any:
        return self.dp.accountant

    # ------------------------------------------------------------------ the parts
    def statistics(
        self, part: str, n_bins: int = 32, bounds: dict[str, Any] | None = None
    ) -> DPStatistics:
        """The DP statistics of the event columns (``"events"``), the gaps (``"gaps"``) or
        the context encoding (``"encoder"``): one row per sequence each. ``bounds``: public
        bounds of the model's own columns (the user's win)."""
        share = SHARES[part]
        c = self.sequences_per_unit
        self.accountant.contribution = c
        seed = self._seeds[("events", "gaps", "encoder").index(part)]
        return DPStatistics(
            rho=self.rho * share / c**2,
            delta=self.delta * _RELEASE_DELTA_SHARE * share,
            public_bounds={**(bounds or {}), **self._public()},
            n_bins=n_bins,
            random_state=int(seed.generate_state(1)[0]),
            accountant=self.accountant,
        )

    def _public(self) -> dict[str, Any]:
        """The user's public bounds, as :meth:`DifferentialPrivacy.plan` reads them."""
        return {
            k: tuple(v) if isinstance(v, tuple) else v for k, v in self.dp.public_bounds.items()
        }

    def count_bounds(self) -> dict[str, tuple[int, int]]:
        """Public bounds of the number of events of a sequence: at most the events kept."""
        from clinsynth.synthesizers._sequence_data import N_EVENTS

        most = min(self.max_length, self.events_per_unit) if self.schema else self.max_length
        return {N_EVENTS: (1, most)}

    def one_per_sequence(self, first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Row positions of one random event of each sequence (sequence ``i``: rows
        ``first[i]`` to ``first[i] + lengths[i] - 1``)."""
        rng = np.random.default_rng(self._seeds[3])
        return first + np.floor(rng.random(len(first)) * lengths).astype(np.int64)

    def context_budget(self) -> tuple[float, float]:
        """``(ε, δ)`` of the context model: the ε of its ρ share at its δ share."""
        share = SHARES["context"]
        delta = self.delta * share
        rdp = self.rho * share * DEFAULT_ORDERS
        epsilon = epsilon_from_rdp(rdp, delta * (1 - _RELEASE_DELTA_SHARE))[0]
        return float(epsilon) * (1 - 1e-9), float(delta)

    def absorb(self, context_model: Any) -> None:
        """The context model's ledger joins this one (already at the patient level)."""
        self.accountant.mechanisms.extend(context_model._dp_.accountant.mechanisms)

    def gap_knots(self, log_gaps: np.ndarray) -> list[float]:
        """Quantile knots of the log gaps (>= 0) from a DP range and a noisy histogram."""
        cp = self.statistics("gaps", n_bins=_GAP_BINS).split(["log gap"])["log gap"]
        low, high = cp.numeric_range(log_gaps, 0.5)
        low, high = max(low, 0.0), max(high, max(low, 0.0) + 1e-3)
        edges, counts, _, _ = cp.numeric_histogram(log_gaps, 0, low, high, 0.5)
        if counts.sum() <= 0:
            counts = np.ones_like(counts)
        cdf = np.r_[0.0, np.cumsum(counts)] / counts.sum()
        probs = (np.arange(_GAP_KNOTS) + 0.5) / _GAP_KNOTS
        knots = np.maximum.accumulate(np.interp(probs, cdf, edges))
        return [float(v) for v in knots]

    # ------------------------------------------------------------------ training
    def sgd(self, modules: Any, n: int, batch_size: int, steps: int, generator: Any) -> Any:
        """DP-SGD over ``n`` sequences for ``steps`` steps, calibrated to spend the rest."""
        return self.dp.sgd(
            modules,
            ["event network"],
            num_rows=n,
            batch_size=batch_size,
            steps=steps,
            generator=generator,
        )

    def budget(self, key: str, **details: Any) -> dict[str, Any]:
        """The model's ``privacy_budget_``: the ledger's figures, per patient."""
        out = self.dp.budget(**details)
        per = (
            f"each patient (sequence key '{key}'): adding or removing one patient with all "
            f"their events (the first {self.max_length} of each sequence are learned)"
        )
        if self.schema:
            per = (
                f"each patient of the schema, with up to {self.sequences_per_unit} "
                f"sequence(s) and {self.events_per_unit} events here"
            )
        out["guarantee"] = f"({self.dp.epsilon}, {self.delta:.3g})-differential privacy for {per}"
        out["privacy_unit"] = key
        out["max_sequence_length"] = self.max_length
        out["budget_split"] = (
            "zCDP rho of (epsilon, 0.9 delta): context model "
            f"{SHARES['context']:.0%}, event statistics {SHARES['events']:.0%}, gaps "
            f"{SHARES['gaps']:.0%}, DP-SGD the rest (calibrated on the composed ledger)"
        )
        out["sequence_not_covered"] = list(NOT_COVERED)
        out.pop("rows_per_unit", None)
        if self.sequences_per_unit > 1:
            out["sequences_per_unit"] = self.sequences_per_unit
        if not math.isfinite(out["epsilon_spent"]):
            raise PrivacyError("The privacy ledger of the sequential model is not finite.")
        return out
