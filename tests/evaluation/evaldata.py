"""A small patient population with known dependencies, drawn with any seed from one distribution.

Not a conftest.py: the suite imports the top-level ``conftest`` by name, and a second one would
shadow it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from clinsynth import Metadata


def draw_population(n: int, seed: int) -> pd.DataFrame:
    """Correlated numbers, dependent categories, a date, a boolean, missing values, an id, PII."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 12, n)
    sex = rng.choice(["F", "M"], n)
    bmi = 18 + 0.15 * age + rng.normal(0, 2, n)
    sbp = 90 + 0.7 * age + (sex == "M") * 8 + rng.normal(0, 6, n)
    risk = np.where(
        age > 62,
        rng.choice(["high", "medium", "low"], n, p=[0.7, 0.2, 0.1]),
        rng.choice(["high", "medium", "low"], n, p=[0.1, 0.3, 0.6]),
    )
    smoker = rng.random(n) < np.where(sex == "M", 0.45, 0.15)
    admitted = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 400, n) + (age * 4).astype(int), unit="D"
    )
    df = pd.DataFrame(
        {
            "pid": [f"P{seed:02d}-{i:05d}" for i in range(n)],
            "age": age.round(1),
            "bmi": bmi.round(2),
            "sex": sex,
            "sbp": sbp.round(1),
            "risk": risk,
            "smoker": smoker,
            "admitted": admitted,
            "email": [f"person{seed}.{i}@example.org" for i in range(n)],
        }
    )
    df.loc[rng.random(n) < 0.05, "bmi"] = np.nan
    df.loc[rng.random(n) < 0.05, "risk"] = None
    return df


def population_metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "columns": {
                "pid": {"sdtype": "id"},
                "age": {"sdtype": "numerical"},
                "bmi": {"sdtype": "numerical"},
                "sex": {"sdtype": "categorical"},
                "sbp": {"sdtype": "numerical"},
                "risk": {"sdtype": "categorical"},
                "smoker": {"sdtype": "boolean"},
                "admitted": {"sdtype": "datetime"},
                "email": {"sdtype": "email"},
            },
            "primary_key": "pid",
        }
    )


@cache
def _cached(n: int, seed: int) -> pd.DataFrame:
    return draw_population(n, seed)


def population(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """A fresh copy of a cached draw (tests may modify it)."""
    return _cached(n, seed).copy()


def splits() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Metadata]:
    """Training data, holdout, a fresh sample of the true distribution, and the metadata."""
    return population(500, 0), population(500, 1), population(500, 2), population_metadata()
