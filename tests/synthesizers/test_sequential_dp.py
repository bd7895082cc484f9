"""SequentialSynthesizer with differential privacy: the patient is the unit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clinsynth import SequentialSynthesizer, load
from clinsynth.errors import ParameterError, PrivacyError
from clinsynth.privacy import PrivacyAccountant
from clinsynth.simulate import simulate_lab_trajectories
from clinsynth.synthesizers._sequential_dp import SHARES, truncate

FAST = {"epochs": 1, "batch_size": 64, "hidden_dim": 16, "latent_dim": 4}


@pytest.fixture(scope="module")
def visits():
    return simulate_lab_trajectories(200, mean_visits=5, seed=0)


@pytest.fixture(scope="module")
def fitted(visits):
    df, md = visits
    return SequentialSynthesizer(
        md, epsilon=3.0, max_sequence_length=6, random_state=0, **FAST
    ).fit(df)


def test_budget_is_per_patient_and_spent_exactly(fitted, visits):
    report = fitted.get_privacy_report()
    assert report["differential_privacy"] is True
    assert "for each patient (sequence key 'patient_id')" in report["guarantee"]
    assert report["epsilon"] == 3.0
    assert report["delta"] == pytest.approx(1 / (10 * 200))
    # DP-SGD's noise is calibrated on the composed ledger: the whole model spends epsilon.
    assert 2.9 < report["epsilon_spent"] <= 3.0
    ledger = PrivacyAccountant.from_dict({"mechanisms": report["ledger"]})
    assert ledger.get_epsilon(report["delta"]) == pytest.approx(report["epsilon_spent"])
    names = " ".join(m["name"] for m in report["ledger"])
    assert "DP-SGD on event network" in names and "log gap" in names
    assert {"statistics", "training", "selection", "measurement"} <= set(report["consumers"])
    assert report["mechanism"].startswith("DP-SGD")
    assert report["max_sequence_length"] == 6
    assert any("bound every event" in item for item in report["not_covered"])
    assert fitted.get_loss_values().empty  # no real-data loss is released


def test_sample_keeps_temporal_logic_and_length_cap(fitted, visits):
    real, _ = visits
    syn = fitted.sample(60)
    assert list(syn.columns) == list(real.columns)
    assert syn["patient_id"].nunique() == 60
    assert syn.groupby("patient_id").size().max() <= 6
    assert (syn.groupby("patient_id", sort=False)["day"].diff().dropna() > 0).all()
    assert (syn["day"] <= syn["followup_days"]).all()


def test_save_load_keeps_the_ledger(fitted, tmp_path):
    path = fitted.save(tmp_path / "seq")
    again = load(path)
    assert again.get_privacy_report() == fitted.get_privacy_report()
    assert (
        again.get_privacy_budget()["epsilon_spent"] == fitted.get_privacy_budget()["epsilon_spent"]
    )
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(again.sample(5), fitted.sample(5))


def test_truncation_keeps_the_first_events():
    events = pd.DataFrame({"pid": ["a"] * 4 + ["b"] * 2, "t": [1, 2, 3, 4, 1, 2]})
    kept = truncate(events, "pid", 3)
    assert kept["t"].tolist() == [1, 2, 3, 1, 2]


def test_smaller_budget_more_noise(fitted, visits):
    df, md = visits
    model = SequentialSynthesizer(
        md, epsilon=1.0, max_sequence_length=6, random_state=0, **FAST
    ).fit(df)
    sigma = model.get_privacy_report()["noise_multiplier"]
    assert sigma > fitted.get_privacy_report()["noise_multiplier"] > 0
    assert model.get_privacy_report()["epsilon_spent"] <= 1.0
    assert math.isclose(sum(SHARES.values()), 0.4)


@pytest.mark.parametrize("epsilon", [0, -1.0, float("inf"), float("nan")])
def test_bad_epsilon(visits, epsilon):
    df, md = visits
    with pytest.raises(ParameterError, match="'epsilon' parameter of SequentialSynthesizer"):
        SequentialSynthesizer(md, epsilon=epsilon, **FAST).fit(df)


def test_delta_must_be_below_one_over_patients(visits):
    df, md = visits
    with pytest.raises(PrivacyError, match=r"below 1/n with n = 200 patients"):
        SequentialSynthesizer(md, epsilon=1.0, delta=0.01, **FAST).fit(df)


def test_without_epsilon_nothing_changes(visits):
    df, md = visits
    model = SequentialSynthesizer(md, random_state=0, **FAST).fit(df)
    report = model.get_privacy_report()
    assert report["differential_privacy"] is False
    assert "epsilon=" in report["guarantee"]
    assert model.max_sequence_length_ is None
    assert model.sample(10).groupby("patient_id").size().max() >= 1
    assert np.isfinite(model.get_loss_values()["loss"]).all()
