"""The grid index behind sampling's inverse CDFs gives exactly np.searchsorted's answers."""

import numpy as np
import pytest

from clinsynth._search import GridSearch, UniformInterp
from clinsynth._utils import one_blas_thread


def _knot_sets():
    rng = np.random.default_rng(0)
    yield np.sort(rng.normal(size=700))  # normal scores of a step CDF
    yield np.sort(rng.integers(0, 40, 300)).astype(float)  # repeated knots
    yield np.sort(rng.lognormal(size=2000)) * 1e6  # a skewed lab, large values
    yield np.sort(np.concatenate([rng.normal(size=50), 1e-9 * rng.normal(size=80)]))  # clustered
    yield np.array([-1.0, 0.0, 0.5, 2.0, 2.0])
    yield np.array([3.0])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grid_search_equals_searchsorted(side, dtype):
    rng = np.random.default_rng(1)
    for knots in _knot_sets():
        x = np.concatenate(
            [
                rng.normal(scale=3 * (np.abs(knots).max() + 1), size=5000),
                knots,
                np.nextafter(knots, np.inf),
                np.nextafter(knots, -np.inf),
                [np.nan, np.inf, -np.inf, knots[0] - 1, knots[-1] + 1],
            ]
        ).astype(dtype)
        expected = np.searchsorted(knots, x.astype(np.float64), side=side)
        assert np.array_equal(GridSearch(knots, side)(x), expected)


def test_grid_search_uses_its_index_on_spread_knots():
    # The fast path must be the one answering (not the searchsorted fallback).
    assert GridSearch(np.sort(np.random.default_rng(0).normal(size=500)))._start is not None


def test_uniform_interp_equals_np_interp():
    xs = np.linspace(-8.0, 8.0, 4001)
    ys = np.cumsum(np.random.default_rng(0).random(4001))
    x = np.concatenate([np.random.default_rng(1).normal(scale=5, size=10_000), [-9, 9, np.nan]])
    got = UniformInterp(xs[0], xs[1] - xs[0], ys)(x)
    want = np.interp(x, xs, ys)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-9, equal_nan=True)


def test_one_blas_thread_restores_the_limit():
    from threadpoolctl import threadpool_info

    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with one_blas_thread(), one_blas_thread():
        inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert all(n == 1 for n in inside)
    assert after == before
