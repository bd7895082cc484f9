"""Tiny tables built in code: one column per kind, missing values included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata


def make_mixed_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """A small patient table with every column kind and some missing values."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    weight = np.round(rng.normal(75, 12, n) + (age - 50) * 0.2, 1)
    weight[rng.random(n) < 0.15] = np.nan
    sbp = np.round(110 + 0.5 * age + rng.normal(0, 8, n)).astype(int)
    sex = rng.choice(["F", "M"], n)
    stage = rng.choice(["I", "II", "III", "IV"], n, p=[0.4, 0.3, 0.2, 0.1])
    smoker = rng.random(n) < 0.3
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    admitted = pd.Series(dates.strftime("%Y-%m-%d"), dtype=object)
    admitted[rng.random(n) < 0.1] = None
    code = rng.choice([0, 1, 2], n)
    diagnosis = pd.Series(rng.choice(["copd", "chf", "ards", "sepsis"], n), dtype=object)
    diagnosis[rng.random(n) < 0.2] = None
    return pd.DataFrame(
        {
            "pid": np.arange(1000, 1000 + n),
            "age": age,
            "weight": weight,
            "sbp": sbp,
            "sex": sex,
            "stage": stage,
            "smoker": smoker,
            "admitted": admitted,
            "code": code,
            "diagnosis": diagnosis,
            "email": [f"patient{i}@hospital.org" for i in range(n)],
            "name": [f"Real Person{i}" for i in range(n)],
        }
    )


def make_mixed_metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "columns": {
                "pid": {"sdtype": "id"},
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "weight": {"sdtype": "numerical", "computer_representation": "Float"},
                "sbp": {"sdtype": "numerical", "computer_representation": "Int64"},
                "sex": {"sdtype": "categorical"},
                "stage": {"sdtype": "ordinal", "order": ["I", "II", "III", "IV"]},
                "smoker": {"sdtype": "boolean"},
                "admitted": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
                "code": {"sdtype": "categorical"},
                "diagnosis": {"sdtype": "categorical"},
                "email": {"sdtype": "email", "pii": True},
                "name": {"sdtype": "name", "pii": True},
            },
            "primary_key": "pid",
        }
    )


@pytest.fixture
def mixed_df() -> pd.DataFrame:
    return make_mixed_table()


@pytest.fixture
def mixed_metadata() -> Metadata:
    return make_mixed_metadata()
