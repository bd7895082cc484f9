"""Shared pieces of the deep-synthesizer tests: a table that shows learning, one torch thread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from clinsynth import Metadata


def learning_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Two strongly correlated numbers (r ~ 0.95) and a category with a rare level (5%).

    An untrained model fails both checks of :func:`assert_learned`: its columns are unrelated and
    its levels come out near-uniform.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n)
    y = 2 * x + rng.normal(0, 6, n)
    group = rng.choice(["common", "medium", "rare"], n, p=[0.65, 0.30, 0.05])
    return pd.DataFrame({"x": x.round(2), "y": y.round(2), "group": group})


def learning_metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "columns": {
                "x": {"sdtype": "numerical"},
                "y": {"sdtype": "numerical"},
                "group": {"sdtype": "categorical"},
            }
        }
    )


def condition_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A diagnosis (one level rare) that shifts a lab value; a second value follows the first."""
    rng = np.random.default_rng(seed)
    condition = rng.choice(["healthy", "copd", "diabetes"], n, p=[0.6, 0.35, 0.05])
    center = pd.Series(condition).map({"healthy": 30.0, "copd": 50.0, "diabetes": 80.0})
    glucose = center.to_numpy() + rng.normal(0, 5, n)
    hba1c = glucose / 10 + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {"condition": condition, "glucose": glucose.round(1), "hba1c": hba1c.round(2)}
    )


def condition_metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "columns": {
                "condition": {"sdtype": "categorical"},
                "glucose": {"sdtype": "numerical"},
                "hba1c": {"sdtype": "numerical"},
            }
        }
    )


#: Centre of the glucose of each condition in :func:`condition_table`.
CENTERS = {"healthy": 30.0, "copd": 50.0, "diabetes": 80.0}


def assert_learned_conditions(model, tolerance: float = 8.0) -> None:
    """Each condition's glucose is centred right, glucose and HbA1c move together (r 0.99),
    and the rare condition keeps its 5%. An untrained generator fails all three."""
    for level, center in CENTERS.items():
        rows = model.sample(500, conditions={"condition": level})
        assert abs(rows["glucose"].median() - center) < tolerance, (level, rows["glucose"].median())
    rows = model.sample(3000)
    assert rows["glucose"].corr(rows["hba1c"]) > 0.6, rows["glucose"].corr(rows["hba1c"])
    assert 0.02 <= (rows["condition"] == "diabetes").mean() <= 0.10


def assert_learned(real: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    r_real = real["x"].corr(real["y"])
    r_syn = synthetic["x"].corr(synthetic["y"])
    # The real r is 0.96; an untrained model gives about 0.
    assert r_syn > 0.6 and abs(r_syn - r_real) < 0.36, (r_real, r_syn)
    freq = synthetic["group"].value_counts(normalize=True)
    assert 0.015 <= freq.get("rare", 0.0) <= 0.10, freq.to_dict()
    assert abs(freq.get("medium", 0.0) - 0.30) < 0.12, freq.to_dict()


#: Small TVAE that learns ``learning_table`` in 300 epochs (the learning checks).
LEARNING_TVAE = {
    "epochs": 300,
    "batch_size": 100,
    "embedding_dim": 16,
    "compress_dims": (64, 64),
    "decompress_dims": (64, 64),
}
#: Small CTGAN that learns ``condition_table`` in 300 epochs.
LEARNING_CTGAN = {
    "epochs": 300,
    "batch_size": 50,
    "pac": 5,
    "embedding_dim": 32,
    "generator_dim": (64, 64),
    "discriminator_dim": (64, 64),
}


@pytest.fixture(scope="module")
def one_thread_module():
    """:func:`one_thread` for a whole module (use as an autouse fixture there)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread, and the test machines are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def autocast_dtypes(monkeypatch) -> list:
    """The dtype of every ``torch.autocast`` entered during the test, in order."""
    seen: list = []
    original = torch.autocast.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("dtype"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.autocast, "__init__", spy)
    return seen
