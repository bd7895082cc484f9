"""The per-column mixture of mode-specific normalization: as many components as the data asks
for, and a float32 encoding that still gives the values back."""

import numpy as np
import pandas as pd

from clinsynth import Metadata
from clinsynth.transform import NumericalTransformer, TableTransformer, fit_gmm_1d


def _modes(values: np.ndarray) -> int:
    return len(NumericalTransformer("x").fit(pd.Series(values)).weights_)


def test_component_count_follows_the_data():
    rng = np.random.default_rng(0)
    unimodal = rng.normal(50, 10, 1000).round(2)
    trimodal = np.r_[rng.normal(0, 1, 400), rng.normal(20, 1, 300), rng.normal(40, 1, 300)]
    assert _modes(unimodal) <= 2  # the old fixed mixture kept all 10
    assert _modes(trimodal.round(3)) == 3
    weights, means, _ = fit_gmm_1d(trimodal)
    np.testing.assert_allclose(np.sort(means), [0, 20, 40], atol=0.5)
    np.testing.assert_allclose(weights.sum(), 1.0)


def test_wide_column_still_round_trips_in_float32():
    # One component over 0 .. 288,360 would leave 0 as -0.002 after float32: more are used.
    df = pd.DataFrame({"x": [0.0, 0.0, 0.0, 0.0, 1.0, 288359.875, -1.0] * 3})
    md = Metadata.from_dict({"columns": {"x": {"sdtype": "numerical"}}})
    tt = TableTransformer(md).fit(df)
    back = tt.inverse_transform(tt.transform(df))
    np.testing.assert_array_equal(back["x"].to_numpy(), df["x"].to_numpy())
