"""A small clinical table holding one rule of every kind discovery finds."""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUPS = {"copd": "lung", "asthma": "lung", "chf": "heart", "mi": "heart", "arf": "kidney"}


def logic_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Columns and the rule each pair obeys on every row:

    - ``dx`` determines ``dx_class`` (functional dependency);
    - ``cd4_late`` is present exactly when ``followed == 1`` (skip pattern);
    - ``bmi = 10000 * weight / height ** 2`` rounded to 1 decimal; ``total = fee_a + fee_b``;
    - ``died_in_hospital = 1`` implies ``died = 1`` (implication);
    - ``los <= followup_days`` (order);
    - ``dose`` is a multiple of 5 (grid); ``cost`` is exactly 0 on a third of the rows.
    """
    rng = np.random.default_rng(seed)
    dx = rng.choice(list(GROUPS), n, p=[0.3, 0.15, 0.25, 0.2, 0.1])
    height = np.round(rng.normal(170, 9, n), 1)
    weight = np.round(rng.normal(76, 13, n), 1)
    fee_a = np.round(rng.gamma(3.0, 200.0, n), 2)
    fee_b = np.round(rng.gamma(2.0, 150.0, n), 2)
    followed = rng.integers(0, 2, n)
    cd4 = np.round(rng.normal(350, 90, n))
    los = rng.integers(1, 30, n)
    died = (rng.random(n) < 0.35).astype(int)
    in_hospital = np.where(died == 1, (rng.random(n) < 0.45).astype(int), 0)
    cost = np.round(rng.lognormal(7, 1, n), 2)
    cost[rng.random(n) < 0.33] = 0.0
    return pd.DataFrame(
        {
            "dx": dx,
            "dx_class": [GROUPS[d] for d in dx],
            "height": height,
            "weight": weight,
            "bmi": np.round(weight / (height / 100) ** 2, 1),
            "fee_a": fee_a,
            "fee_b": fee_b,
            "total": np.round(fee_a + fee_b, 2),
            "followed": followed,
            "cd4_late": np.where(followed == 1, cd4, np.nan),
            "died": died,
            "died_in_hospital": in_hospital,
            "los": los,
            "followup_days": los + rng.integers(0, 20, n),
            "dose": rng.choice(np.arange(10, 301, 5), n),
            "cost": cost,
        }
    )


#: The rule every model must keep, as (kind, what its description says).
EXPECTED = [
    ("functional_dependency", "dx determines dx_class"),
    ("skip_pattern", "cd4_late is present exactly when followed is 1"),
    ("formula", "bmi = 10000 * `weight` / `height` ** 2"),
    ("formula", "total = `fee_a` + `fee_b`"),
    ("implication", "died_in_hospital = 1 implies died = 1"),
    ("inequality", "los <= followup_days"),
    ("grid", "dose is a multiple of 5"),
    ("point_mass", "cost is exactly 0 on many rows"),
]
