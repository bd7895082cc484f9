"""``reset_sampling(seed=...)``: a chosen sampling seed gives repeatable, different rows."""

from __future__ import annotations

import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer
from clinsynth.errors import ParameterError
from conftest import make_mixed_metadata, make_mixed_table


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    model = GaussianCopulaSynthesizer(make_mixed_metadata(), random_state=0)
    model.fit(make_mixed_table())
    model.reset_sampling(seed=7)
    first = model.sample(30)
    model.reset_sampling(seed=7)
    pd.testing.assert_frame_equal(first, model.sample(30))
    model.reset_sampling(seed=8)
    assert not first.equals(model.sample(30))
    model.reset_sampling()  # back to the model's own stream
    own = model.sample(30)
    model.reset_sampling()
    pd.testing.assert_frame_equal(own, model.sample(30))


def test_bad_seed_is_a_parameter_error() -> None:
    model = GaussianCopulaSynthesizer(make_mixed_metadata(), random_state=0)
    model.fit(make_mixed_table())
    with pytest.raises(ParameterError, match="'seed' parameter of reset_sampling"):
        model.reset_sampling(seed=-1)
