"""Privacy by construction: the accountant, DP-SGD, DP column statistics.

* :class:`PrivacyAccountant` records every mechanism that reads real rows and composes them in
  Rényi DP (:func:`sampled_gaussian_rdp`, :func:`gaussian_rdp`, :func:`epsilon_from_rdp`);
  :func:`calibrate_noise_multiplier` finds the DP-SGD noise that spends exactly a budget.
* :class:`DPSGD` privatizes the gradients of any torch network (per-row clipping with
  ``torch.func`` and Gaussian noise) on Poisson batches (:func:`poisson_batch`).
* :class:`DPStatistics` makes the table transformer learn from public bounds or noisy histograms.
* :func:`canary_audit` checks empirically that an attack does no better than epsilon allows
  (:func:`epsilon_lower_bound`, :func:`auc_upper_bound`, :func:`max_certifiable_epsilon`).

See ``docs/PRIVACY.md`` for what is guaranteed and what is not.
"""

from clinsynth.privacy._accountant import (
    DEFAULT_ORDERS,
    PrivacyAccountant,
    calibrate_noise_multiplier,
    default_delta,
    epsilon_from_rdp,
    gaussian_rdp,
    group_sampled_gaussian_rdp,
    rho_for_epsilon,
    sampled_gaussian_rdp,
)
from clinsynth.privacy._audit import (
    auc_upper_bound,
    canary_audit,
    epsilon_lower_bound,
    max_certifiable_epsilon,
)
from clinsynth.privacy._dpsgd import DPSGD, critic_row_loss, functional, poisson_batch
from clinsynth.privacy._statistics import (
    ColumnPrivacy,
    DPStatistics,
    noisy_histogram,
    release_threshold,
)

__all__ = [
    "DEFAULT_ORDERS",
    "DPSGD",
    "ColumnPrivacy",
    "DPStatistics",
    "PrivacyAccountant",
    "auc_upper_bound",
    "calibrate_noise_multiplier",
    "canary_audit",
    "critic_row_loss",
    "default_delta",
    "epsilon_from_rdp",
    "epsilon_lower_bound",
    "functional",
    "gaussian_rdp",
    "group_sampled_gaussian_rdp",
    "max_certifiable_epsilon",
    "noisy_histogram",
    "poisson_batch",
    "release_threshold",
    "rho_for_epsilon",
    "sampled_gaussian_rdp",
]
