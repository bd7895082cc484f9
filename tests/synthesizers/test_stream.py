"""sample_batches: bounded chunks, the same rows whatever the chunk size, rules per chunk."""

from __future__ import annotations

import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, TVAESynthesizer
from clinsynth.constraints import Custom
from clinsynth.errors import ParameterError
from clinsynth.synthesizers import _stream
from conftest import make_mixed_metadata, make_mixed_table


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 100 rows, so that a few hundred rows cross several blocks."""
    monkeypatch.setattr(_stream, "BLOCK_ROWS", 100)


@pytest.fixture(scope="module")
def copula():
    return GaussianCopulaSynthesizer(make_mixed_metadata(), random_state=0).fit(
        make_mixed_table(200)
    )


def _all(model, n, batch_size, seed, **kw):
    chunks = list(model.sample_batches(n, batch_size=batch_size, seed=seed, **kw))
    return chunks, pd.concat(chunks, ignore_index=True)


def test_same_rows_whatever_the_chunk_size(copula, small_blocks):
    chunks, whole = _all(copula, 350, 10_000, 5)
    assert [len(c) for c in chunks] == [350]
    for size in (1, 37, 100, 250):
        parts, rows = _all(copula, 350, size, 5)
        assert all(len(p) == size for p in parts[:-1]) and 0 < len(parts[-1]) <= size
        assert all(p.index.equals(pd.RangeIndex(len(p))) for p in parts)
        pd.testing.assert_frame_equal(rows, whole)
    assert whole["pid"].is_unique  # generated keys continue across blocks
    other = _all(copula, 350, 10_000, 6)[1]
    assert not other["age"].equals(whole["age"])


def test_seed_none_follows_the_models_stream(copula, small_blocks):
    copula.reset_sampling(seed=3)
    first = _all(copula, 120, 50, None)[1]
    second = _all(copula, 120, 50, None)[1]
    copula.reset_sampling(seed=3)
    again = _all(copula, 120, 50, None)[1]
    pd.testing.assert_frame_equal(first, again)
    assert not first["age"].equals(second["age"])


def test_rules_and_conditions_hold_in_every_chunk(small_blocks):
    df = make_mixed_table(300)
    limit = float((df["age"] + df["sbp"]).median())
    df = df[df["age"] + df["sbp"] < limit].reset_index(drop=True)
    rule = Custom(lambda d: (d["age"] + d["sbp"]) < limit, columns=["age", "sbp"], name="sum")
    model = GaussianCopulaSynthesizer(make_mixed_metadata(), constraints=[rule], random_state=1)
    model.fit(df)
    parts, rows = _all(model, 260, 70, 2, conditions={"age": (40, None)})
    assert len(rows) == 260
    for part in parts:
        assert ((part["age"] + part["sbp"]) < limit).all()
        assert (part["age"] >= 40).all()
    pd.testing.assert_frame_equal(_all(model, 260, 260, 2, conditions={"age": (40, None)})[1], rows)


def test_deep_model_same_rows_whatever_the_chunk_size(small_blocks):
    model = TVAESynthesizer(make_mixed_metadata(), epochs=1, random_state=0)
    model.fit(make_mixed_table(120))
    whole = _all(model, 230, 230, 9)[1]
    pd.testing.assert_frame_equal(_all(model, 230, 64, 9)[1], whole)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_rows": -1}, "'num_rows' parameter of sample_batches must be an int >= 0"),
        ({"num_rows": 10, "batch_size": 0}, "'batch_size' parameter .* must be an int >= 1"),
        ({"num_rows": 10, "seed": -2}, "'seed' parameter .* must be None or an int >= 0"),
        ({"num_rows": 2.5}, "'num_rows' parameter of sample_batches must be an int"),
    ],
)
def test_bad_arguments(copula, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        copula.sample_batches(**kwargs)


def test_zero_rows_is_no_chunk(copula):
    assert list(copula.sample_batches(0, seed=1)) == []


def test_blocks_partition_the_run(copula, small_blocks):
    """Any range of blocks made alone is that slice of the run (what a Dask worker does)."""
    whole = _all(copula, 330, 1000, 4)[1]
    tail = pd.concat(_stream.iter_blocks(copula, 330, 4, first=2), ignore_index=True)
    pd.testing.assert_frame_equal(tail, whole.iloc[200:].reset_index(drop=True))


def test_threads_do_not_change_the_rows(copula, small_blocks):
    """Blocks made side by side (fake names and e-mails included: one Faker per thread)."""
    one = pd.concat(_stream.iter_blocks(copula, 450, 8, threads=1), ignore_index=True)
    three = pd.concat(_stream.iter_blocks(copula, 450, 8, threads=3), ignore_index=True)
    pd.testing.assert_frame_equal(one, three)
