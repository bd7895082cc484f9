"""The memorization guard of the deep models: a held-out slice, the DCR share measured during
training, training stopped (and earlier weights kept) when the model starts copying rows."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from deep_helpers import learning_metadata, learning_table, one_thread  # noqa: F401

import clinsynth
from clinsynth import TVAESynthesizer
from clinsynth.errors import ParameterError
from clinsynth.synthesizers._guard import MemorizationGuard, check_every, guard_rows
from clinsynth.synthesizers.nn import TrainingEngine

TINY = {"embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,), "batch_size": 50}


def _frames(n: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    data = learning_table(n, seed=3)
    return data.iloc[: n - 300], data.iloc[n - 300 :], learning_metadata().get_table()


def test_a_copy_of_the_training_rows_stops_training_and_fresh_rows_do_not() -> None:
    train, holdout, table = _frames()
    copying = MemorizationGuard(
        0.55, train, holdout, table, generate=lambda n: train.sample(n, replace=True), seed=0
    )
    assert copying(1) is False
    assert copying.log[0]["dcr_share"] > 0.9
    fresh = learning_table(2000, seed=99)
    honest = MemorizationGuard(
        0.55, train, holdout, table, generate=lambda n: fresh.iloc[:n], seed=0
    )
    assert honest(1) is True
    assert abs(honest.log[0]["dcr_share"] - 0.5) < 0.1


def test_the_engine_keeps_the_weights_of_the_last_accepted_check() -> None:
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    seen: dict[int, torch.Tensor] = {}

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = (net(x[idx]) - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    def guard(epoch: int) -> bool:
        seen[epoch] = net.weight.detach().clone()
        return epoch < 4

    engine = TrainingEngine(
        {"net": net},
        {"opt": opt},
        step,
        n_rows=64,
        batch_size=16,
        epochs=10,
        generator=torch.Generator().manual_seed(0),
        guard=guard,
        guard_every=2,
    )
    history = engine.run()
    assert sorted(seen) == [2, 4]
    assert history.stopped_by_guard == 4 and history.guard_epoch == 2
    assert len(history.epoch["loss"]) == 4
    assert torch.equal(net.weight, seen[2])


def test_a_deep_fit_watches_memorization_and_keeps_the_record_through_save(tmp_path) -> None:
    data = learning_table(600, seed=1)
    model = TVAESynthesizer(
        learning_metadata(), epochs=4, random_state=0, memorization_guard=0.55, **TINY
    ).fit(data)
    assert [c["epoch"] for c in model.memorization_] == [1, 2, 3, 4]
    assert all(0.0 <= c["dcr_share"] <= 1.0 for c in model.memorization_)
    assert model.stopped_by_guard_ is None
    model.save(tmp_path / "m.zip")
    loaded = clinsynth.load(tmp_path / "m.zip")
    assert loaded.memorization_ == model.memorization_
    assert loaded.stopped_by_guard_ is None


def test_without_the_guard_or_with_privacy_every_row_is_trained_on() -> None:
    data = learning_table(600, seed=1)
    off = TVAESynthesizer(learning_metadata(), epochs=1, random_state=0, **TINY).fit(data)
    assert off.memorization_ == []
    private = TVAESynthesizer(
        learning_metadata(), epochs=1, random_state=0, epsilon=5.0, memorization_guard=0.55, **TINY
    ).fit(data)
    assert private.memorization_ == []


def test_small_tables_are_not_watched_and_bad_thresholds_are_refused() -> None:
    assert guard_rows(399) == 0 and guard_rows(400) == 80 and guard_rows(10**6) == 2000
    assert guard_rows(5000) == 500
    assert check_every(300) == 60 and check_every(3) == 1
    with pytest.raises(ParameterError, match="memorization_guard"):
        TVAESynthesizer(learning_metadata(), memorization_guard=0.3).fit(learning_table(50))
