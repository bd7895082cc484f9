"""``sample_precision="bfloat16"``: reduced-precision matrix products when sampling."""

from __future__ import annotations

import numpy as np
import pytest
from deep_helpers import (  # noqa: F401
    autocast_dtypes,
    learning_metadata,
    learning_table,
    one_thread,
)

from clinsynth import get_synthesizer
from clinsynth.errors import ParameterError

DEEP = ["tvae", "ctgan", "cwgan", "hvaegan", "tabddpm"]


@pytest.mark.parametrize("name", DEEP)
def test_bfloat16_sampling_gives_valid_rows_close_to_float32(name: str) -> None:
    data = learning_table(300)
    extra = {"condition_column": "group"} if name == "cwgan" else {}
    model = get_synthesizer(name)(
        learning_metadata(), epochs=3, batch_size=100, random_state=0, **extra
    )
    model.fit(data)
    model.sample_precision = "float32"  # CTGAN's default is "auto"
    model.reset_sampling()
    full = model.sample(2000)
    model.sample_precision = "bfloat16"
    model.reset_sampling()
    low = model.sample(2000)
    assert low.shape == full.shape and list(low.dtypes) == list(full.dtypes)
    assert not low.isna().any().any()
    assert set(low["group"]) <= set(data["group"])
    for column in ("x", "y"):
        assert data[column].min() <= low[column].min() and low[column].max() <= data[column].max()
        # Same noise, products rounded to bfloat16: the same rows up to a small perturbation.
        spread = float(full[column].std())
        assert abs(float(low[column].mean()) - float(full[column].mean())) < 0.1 * spread
    same = np.mean(low["group"].to_numpy() == full["group"].to_numpy())
    assert same > 0.8


def test_bad_sample_precision_is_a_clear_error() -> None:
    with pytest.raises(ParameterError, match="sample_precision"):
        get_synthesizer("tvae")(learning_metadata(), sample_precision="fp8").fit(
            learning_table(100)
        )
    model = get_synthesizer("tvae")(learning_metadata(), epochs=1, random_state=0)
    model.fit(learning_table(100))
    model.sample_precision = "half"
    with pytest.raises(ParameterError, match="sample_precision"):
        model.sample(10)


@pytest.mark.parametrize("fast", [True, False])
def test_auto_sample_precision_follows_the_hardware(
    monkeypatch,
    autocast_dtypes,  # noqa: F811
    fast: bool,
) -> None:
    import torch

    from clinsynth.synthesizers import _deep

    monkeypatch.setattr(_deep, "fast_bfloat16", lambda device: fast)
    model = get_synthesizer("ctgan")(learning_metadata(), epochs=1, batch_size=100, random_state=0)
    assert model.sample_precision == "auto"  # CTGAN's default; the others keep float32
    assert get_synthesizer("tvae")(learning_metadata()).sample_precision == "float32"
    model.fit(learning_table(200))
    expected = "bfloat16" if fast else "float32"
    assert model._sample_precision(torch.device("cpu")) == expected
    assert len(model.sample(50)) == 50
    assert autocast_dtypes == ([torch.bfloat16] if fast else [])
