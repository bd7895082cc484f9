"""A planted outlier: a private model must not reproduce it; a model without noise does.

For (ε, δ)-DP, any event ``E`` about the synthetic data (here "a row near the outlier") has
``P[E | outlier in the data] <= e^ε P[E | outlier left out] + δ``. Without the outlier no row
comes near it, so with it the event may have probability at most ``δ`` (about 0).
"""

from __future__ import annotations

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
