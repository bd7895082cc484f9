"""Sampling on a Dask LocalCluster (2 worker processes on loopback): the same rows as one
process, one Parquet part per partition, _SUCCESS last, nothing left when workers die."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer
from clinsynth.errors import SamplingError
from clinsynth.io._chunked import write_chunks
from clinsynth.synthesizers import _dask, _stream
from conftest import make_mixed_metadata, make_mixed_table

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BLOCK = _stream.BLOCK_ROWS


@pytest.fixture(scope="module")
def client():
    # No retry of a part whose worker died: the dead-worker test fails at once.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        )
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


@pytest.fixture(scope="module")
def model():
    metadata = make_mixed_metadata()  # without the fake personal data (Faker is slow)
    for column in ("email", "name"):
        del metadata.get_table().columns[column]
    data = make_mixed_table(150).drop(columns=["email", "name"])
    return GaussianCopulaSynthesizer(metadata, random_state=0).fit(data)


def test_same_rows_on_one_or_two_workers(client, model, tmp_path):
    num_rows = BLOCK + 123
    out = tmp_path / "parts"
    manifest = _dask.sample_to_parquet(
        model, num_rows, out, client=client, seed=11, partition_rows=BLOCK
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == num_rows == manifest["rows"]
    parts = pd.read_parquet(out)  # the folder reads as one table (the _SUCCESS file is skipped)
    assert len(parts) == num_rows and parts["pid"].is_unique
    # One partition on one worker: the same rows again, and the folder replaced whole.
    _dask.sample_to_parquet(model, num_rows, out, client=client, seed=11, partition_rows=10**7)
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-00000.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(out), parts)
    # And the rows this process makes: its second block is the second part.
    tail = _stream.iter_blocks(model, num_rows, 11, first=1)
    write_chunks(tail, tmp_path / "tail.parquet", num_rows=0)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "tail.parquet"),
        pd.read_parquet(out).iloc[BLOCK:].reset_index(drop=True),
    )


def test_cli_scheduler_writes_the_parts(client, model, tmp_path, capsys):
    from clinsynth.cli import main

    model.save(tmp_path / "model")
    out = tmp_path / "parts"
    args = ["sample", tmp_path / "model", "-n", 1000, "--seed", 2, "-o", out, "-q"]
    assert main([str(a) for a in [*args, "--scheduler", client.scheduler.address]]) == 0
    assert "Generated 1000 rows in 1 part ->" in capsys.readouterr().out
    expected = pd.concat(model.sample_batches(1000, seed=2), ignore_index=True)
    assert pd.read_parquet(out)["pid"].tolist() == expected["pid"].tolist()


def test_the_parts_are_evaluated_on_the_cluster(client, model, tmp_path):
    """Fidelity of the written parts, computed by the workers partition by partition (before
    the dead-worker test, which leaves a worker that dies when it samples)."""
    from clinsynth.evaluation import evaluate_quality, evaluate_quality_dask

    out = tmp_path / "parts"
    _dask.sample_to_parquet(model, BLOCK + 2000, out, client=client, seed=5, partition_rows=BLOCK)
    real = make_mixed_table(150).drop(columns=["email", "name"])
    on_cluster = evaluate_quality_dask(real, out, model.metadata, detection=False)
    in_memory = evaluate_quality(real, pd.read_parquet(out), model.metadata, detection=False)
    assert on_cluster.metrics["rows"]["synthetic"] == BLOCK + 2000
    assert on_cluster.get_score() == pytest.approx(in_memory.get_score(), abs=5e-3)


def test_a_dead_worker_fails_the_run_and_leaves_nothing(client, model, tmp_path):
    def die_when_sampling():
        import clinsynth.synthesizers._dask as worker_side

        worker_side._model = lambda *a, **k: os._exit(1)

    client.run(die_when_sampling)
    out = tmp_path / "parts"
    try:
        with pytest.raises(SamplingError, match="Dask workers died"):
            _dask.sample_to_parquet(model, BLOCK + 1, out, client=client, seed=1)
        assert list(tmp_path.iterdir()) == []
    finally:
        client.restart()  # fresh workers: the survivor would still die when it samples


def test_an_unreachable_scheduler_is_one_clear_error():
    with pytest.raises(SamplingError, match=r"Cannot reach the Dask scheduler at 'tcp://127"):
        _dask.connect("tcp://127.0.0.1:9", timeout=1)
