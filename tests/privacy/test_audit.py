"""A planted outlier: a private model must not reproduce it, and the canary audit of a DP-SGD
model certifies no more than its epsilon; a model without noise does both.

For (ε, δ)-DP, any event ``E`` about the synthetic data (here "a row near the outlier") has
``P[E | outlier in the data] <= e^ε P[E | outlier left out] + δ``. Without the outlier no row
comes near it, so with it the event may have probability at most ``δ`` (about 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clinsynth import DPMarginalSynthesizer, Metadata

OUTLIER = {"age": 108, "sbp": 215.0, "weight": 195.0}
PUBLIC = {"age": (0, 110), "sbp": (60.0, 220.0), "weight": (30.0, 200.0), "sex": ["F", "M"]}


def _data(n: int, seed: int, planted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, n)
    df = pd.DataFrame(
        {
            "age": age,
            "sbp": np.round(100 + 0.5 * age + rng.normal(0, 10, n)),
            "weight": np.round(rng.normal(75, 12, n), 1),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    if planted:
        df.loc[0, list(OUTLIER)] = list(OUTLIER.values())
    return df


def _metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "columns": {
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "sbp": {"sdtype": "numerical"},
                "weight": {"sdtype": "numerical"},
                "sex": {"sdtype": "categorical"},
            }
        }
    )


def _near(syn: pd.DataFrame) -> int:
    return int(
        (
            (syn["age"] - OUTLIER["age"]).abs().le(3)
            & (syn["sbp"] - OUTLIER["sbp"]).abs().le(6)
            & (syn["weight"] - OUTLIER["weight"]).abs().le(6)
        ).sum()
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_outlier_is_reproduced_only_without_privacy(seed):
    md = _metadata()
    counts = {}
    for epsilon in (0.5, 1e7):  # 1e7: the same model with no meaningful noise
        for planted in (True, False):
            model = DPMarginalSynthesizer(
                md, epsilon=epsilon, public_bounds=PUBLIC, n_bins=32, random_state=seed
            ).fit(_data(400, seed, planted))
            counts[epsilon, planted] = _near(model.sample(10_000))
    assert counts[1e7, True] >= 5 and counts[1e7, False] == 0  # memorized without privacy
    assert counts[0.5, True] == 0 and counts[0.5, False] == 0  # not with epsilon = 0.5


# ------------------------------------------------------------------ the audit of a DP-SGD model
def _closeness(syn: pd.DataFrame) -> float:
    """The attack: minus the distance (in public-range units) from the outlier to the nearest
    synthetic row; higher means "the outlier was in the training data"."""
    d = np.zeros(len(syn))
    for col in ("age", "sbp", "weight"):
        low, high = PUBLIC[col]
        d += ((syn[col].to_numpy(dtype=float) - OUTLIER[col]) / (high - low)) ** 2
    return -float(np.sqrt(np.nanmin(d)))


#: 7 fits each way certify at most 0.36 at 95%: enough to catch a violation of epsilon = 0.3.
RUNS, EPSILON = 7, 0.3
SMALL_TVAE = {
    "batch_size": 50,
    "embedding_dim": 8,
    "compress_dims": (32,),
    "decompress_dims": (32,),
}


@pytest.fixture
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: threads only add contention
    yield
    torch.set_num_threads(before)


def _tvae_audit(epsilon: float | None, epochs: int) -> dict:
    from clinsynth import TVAESynthesizer
    from clinsynth.privacy import canary_audit

    md = _metadata()
    canary = pd.DataFrame([{**OUTLIER, "sex": "F"}]).astype(_data(2, 0, False).dtypes.to_dict())

    def fit_sample(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        params = {**SMALL_TVAE, "epochs": epochs, "random_state": seed}
        if epsilon is not None:
            params |= {"epsilon": epsilon, "public_bounds": PUBLIC}
        return TVAESynthesizer(md, **params).fit(rows).sample(1000)

    return canary_audit(
        fit_sample,
        _data(99, 100, planted=False),
        canary,
        _closeness,
        runs=RUNS,
        epsilon=math.inf if epsilon is None else epsilon,
        delta=1 / (10 * 100),
    )


@pytest.mark.slow
def test_dp_sgd_tvae_audit_stays_below_the_claimed_epsilon(one_torch_thread):
    # Without noise the same attack separates the two worlds every time and certifies more
    # than the epsilon claimed below: the audit can catch a DP-SGD that leaks.
    plain = _tvae_audit(None, epochs=40)
    assert plain["attack_auc"] == 1.0
    assert plain["epsilon_lower_bound"] > EPSILON
    private = _tvae_audit(EPSILON, epochs=5)
    assert private["max_certifiable_epsilon"] > EPSILON
    assert private["passed"] and private["epsilon_lower_bound"] < EPSILON
    assert private["attack_auc"] <= private["auc_upper_bound"]


def test_epsilon_lower_bound_and_auc_bound():
    from clinsynth.privacy import auc_upper_bound, epsilon_lower_bound, max_certifiable_epsilon

    # perfect separation in 10 runs certifies exactly what 10 runs can: log(b / (1 - b))
    best = max_certifiable_epsilon(10)
    b = 0.025**0.1
    assert best == pytest.approx(math.log(b / (1 - b)))
    assert epsilon_lower_bound(np.ones(10), np.zeros(10), delta=0.0) == pytest.approx(best)
    assert epsilon_lower_bound(np.zeros(10), np.zeros(10), delta=0.0) == 0.0
    rng = np.random.default_rng(0)
    assert epsilon_lower_bound(rng.normal(size=50), rng.normal(size=50), delta=1e-3) < 0.5
    assert auc_upper_bound(1.0, 0.0) == pytest.approx(math.e / (1 + math.e), abs=1e-4)
    assert auc_upper_bound(math.inf, 0.0) == 1.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a: a.epsilon_lower_bound([1.0], [0.0], delta=1.5), "'delta'"),
        (lambda a: a.epsilon_lower_bound([], [0.0], delta=0.0), "'scores_in'"),
        (lambda a: a.epsilon_lower_bound([1.0], [np.nan], delta=0.0), "'scores_out'"),
        (lambda a: a.epsilon_lower_bound([1.0], [0.0], 0.0, confidence=95), "'confidence'"),
        (lambda a: a.auc_upper_bound(-1.0, 0.0), "'epsilon'"),
        (lambda a: a.max_certifiable_epsilon(0), "'runs'"),
        (
            lambda a: a.canary_audit(
                None,
                pd.DataFrame({"x": [1]}),
                pd.DataFrame({"x": [1, 2]}),
                None,
                runs=2,
                epsilon=1.0,
                delta=0.0,
            ),
            "'canary'",
        ),
    ],
)
def test_audit_parameters_get_one_clear_error(call, match):
    import clinsynth.privacy as audit
    from clinsynth.errors import ParameterError

    with pytest.raises(ParameterError, match=match):
        call(audit)


def _sequence_audit(epsilon: float) -> dict:
    """A canary patient whose every creatinine is 9.5 (the others' are near 1)."""
    from clinsynth import SequentialSynthesizer
    from clinsynth.privacy import canary_audit
    from clinsynth.simulate import simulate_lab_trajectories

    visits, md = simulate_lab_trajectories(60, mean_visits=4, seed=0)
    md.get_table().constraints = []  # rules read the data outside the budget
    canary = visits[visits["patient_id"] == visits["patient_id"].iloc[0]].copy()
    canary["patient_id"] = "CANARY"
    canary["creatinine"] = 9.5
    public = {"creatinine": (0.0, 10.0), "age": (18.0, 95.0)}

    def fit_sample(tables: dict, seed: int) -> pd.DataFrame:
        model = SequentialSynthesizer(
            md,
            epsilon=epsilon,
            public_bounds=public,
            max_sequence_length=6,
            epochs=1,
            batch_size=32,
            hidden_dim=8,
            latent_dim=2,
            random_state=seed,
        )
        return model.fit(tables["visits"]).sample(60)

    def closeness(syn: pd.DataFrame) -> float:
        return -float(np.nanmin(np.abs(syn["creatinine"].to_numpy(dtype=float) - 9.5)))

    return canary_audit(
        fit_sample,
        {"visits": visits},
        {"visits": canary},
        closeness,
        runs=RUNS,
        epsilon=epsilon,
        delta=1e-3,
    )


@pytest.mark.slow
def test_dp_sequential_audit_stays_below_the_claimed_epsilon(one_torch_thread):
    # The canary is a whole patient (all their events): the unit of the sequential model.
    private = _sequence_audit(EPSILON)
    assert private["max_certifiable_epsilon"] > EPSILON
    assert private["passed"] and private["epsilon_lower_bound"] < EPSILON
    assert private["attack_auc"] <= private["auc_upper_bound"]
