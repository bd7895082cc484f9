"""The accountant: RDP of the (sampled) Gaussian mechanism, conversion, calibration, ledger."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from clinsynth.errors import ParameterError, PrivacyError
from clinsynth.privacy import (
    PrivacyAccountant,
    calibrate_noise_multiplier,
    default_delta,
    epsilon_from_rdp,
    gaussian_rdp,
    rho_for_epsilon,
    sampled_gaussian_rdp,
)

#: Opacus' default orders, so both libraries optimize over the same grid.
OPACUS_ORDERS = np.array([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), dtype=float)
RUNS = [(0.01, 1.0, 1000), (0.1, 0.7, 300), (0.004, 3.0, 5000), (0.5, 5.0, 10), (0.02, 0.6, 50)]


def _opacus():
    pytest.importorskip("opacus", reason="Opacus (dev extra) is the reference accountant")
    from opacus.accountants.analysis import rdp
    from opacus.accountants.utils import get_noise_multiplier

    return rdp, get_noise_multiplier


@pytest.mark.parametrize(("q", "sigma", "steps"), RUNS)
def test_rdp_and_epsilon_match_opacus(q, sigma, steps):
    rdp, _ = _opacus()
    mine = sampled_gaussian_rdp(q, sigma, steps, OPACUS_ORDERS)
    ref = np.asarray(
        rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=list(OPACUS_ORDERS))
    )
    np.testing.assert_allclose(mine, ref, rtol=1e-6)
    with warnings.catch_warnings():
        # Opacus warns when the best order is at the edge of its grid; not our concern here.
        warnings.simplefilter("ignore", UserWarning)
        ref_eps, ref_order = rdp.get_privacy_spent(orders=OPACUS_ORDERS, rdp=ref, delta=1e-5)
    eps, order = epsilon_from_rdp(mine, 1e-5, OPACUS_ORDERS)
    assert eps == pytest.approx(ref_eps, rel=1e-6) and order == ref_order


def test_fractional_order_against_numerical_integration():
    """A_α = E_{z~N(0,σ²)} [((1-q) + q·exp((2z-1)/(2σ²)))^α], integrated by quadrature."""
    q, sigma, alpha = 0.05, 1.3, 2.7
    density = stats.norm(0, sigma).pdf

    def integrand(z):
        return density(z) * ((1 - q) + q * math.exp((2 * z - 1) / (2 * sigma**2))) ** alpha

    a_alpha, _ = integrate.quad(integrand, -40, 40, limit=200)
    expected = math.log(a_alpha) / (alpha - 1)
    assert sampled_gaussian_rdp(q, sigma, 1, np.array([alpha]))[0] == pytest.approx(
        expected, rel=1e-7
    )


def test_full_batch_is_the_gaussian_mechanism():
    orders = np.array([2.0, 3.5, 10.0])
    np.testing.assert_allclose(sampled_gaussian_rdp(1.0, 2.0, 3, orders), 3 * orders / 8)
    np.testing.assert_allclose(gaussian_rdp(2.0, orders, count=3), 3 * orders / 8)
    assert not sampled_gaussian_rdp(0.0, 1.0, 10, orders).any()


@pytest.mark.parametrize(
    ("target", "q", "steps"),
    [(0.5, 0.02, 500), (1.0, 0.01, 1000), (3.0, 0.1, 200), (10.0, 0.05, 2000)],
)
def test_calibration_spends_the_budget_and_agrees_with_opacus(target, q, steps):
    _, get_noise_multiplier = _opacus()
    sigma = calibrate_noise_multiplier(target, 1e-5, q, steps, orders=OPACUS_ORDERS)
    eps = epsilon_from_rdp(
        sampled_gaussian_rdp(q, sigma, steps, OPACUS_ORDERS), 1e-5, OPACUS_ORDERS
    )[0]
    assert target * (1 - 2e-3) <= eps <= target  # exactly the budget, never more
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = get_noise_multiplier(
            target_epsilon=target,
            target_delta=1e-5,
            sample_rate=q,
            steps=steps,
            epsilon_tolerance=0.001,
        )
    assert sigma == pytest.approx(ref, rel=0.01)


def test_rho_conversion_is_exact():
    for eps, delta in [(0.5, 1e-6), (1.0, 1e-5), (8.0, 1e-4)]:
        rho = rho_for_epsilon(eps, delta)
        assert epsilon_from_rdp(gaussian_rdp(1 / math.sqrt(2 * rho)), delta)[0] == pytest.approx(
            eps, rel=1e-6
        )


def test_ledger_composes_and_reports_consumers():
    acc = PrivacyAccountant()
    acc.add_gaussian("age histogram", 10.0, consumer="statistics")
    acc.add_sampled_gaussian("critic", 1.2, sample_rate=0.02, steps=800)
    both = epsilon_from_rdp(gaussian_rdp(10.0) + sampled_gaussian_rdp(0.02, 1.2, 800), 1e-5)[0]
    assert acc.get_epsilon(1e-5) == pytest.approx(both)
    summary = acc.summary(1e-5)
    alone = summary["consumers"]["training"]["epsilon_alone"]
    assert alone < summary["epsilon"] < alone + summary["consumers"]["statistics"]["epsilon_alone"]
    # Calibrating against what is already spent still meets the total budget.
    sigma = calibrate_noise_multiplier(1.0, 1e-5, 0.02, 800, extra_rdp=gaussian_rdp(10.0))
    acc2 = PrivacyAccountant()
    acc2.add_gaussian("stats", 10.0)
    acc2.add_sampled_gaussian("sgd", sigma, sample_rate=0.02, steps=800)
    assert 0.998 <= acc2.get_epsilon(1e-5) <= 1.0
    assert PrivacyAccountant.from_dict(acc2.to_dict()).get_epsilon(1e-5) == acc2.get_epsilon(1e-5)


def test_delta_slack_and_exhausted_budget():
    acc = PrivacyAccountant()
    acc.add_gaussian("h", 5.0)
    acc.add_delta("naming levels", 1e-6)
    assert acc.get_epsilon(1e-5) > PrivacyAccountant([acc.mechanisms[0]]).get_epsilon(1e-5)
    with pytest.raises(PrivacyError, match="delta"):
        acc.get_epsilon(1e-6)
    with pytest.raises(PrivacyError, match="already spent"):
        calibrate_noise_multiplier(0.1, 1e-5, 0.01, 100, extra_rdp=gaussian_rdp(0.5))


def test_parameter_errors():
    with pytest.raises(ParameterError, match="sample_rate"):
        sampled_gaussian_rdp(1.5, 1.0, 10)
    with pytest.raises(ParameterError, match="delta"):
        epsilon_from_rdp(gaussian_rdp(1.0), 0.0)
    assert default_delta(500) == pytest.approx(2e-4)
