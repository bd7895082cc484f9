"""Fitted state ends in ``_`` (CONVENTIONS, scikit-learn's habit) in every column transformer,
whichever method and whether fitted on the data, with differential privacy or read from a bundle;
the bundle keys stay those of the format (``"levels"``, not ``"levels_"``)."""

from __future__ import annotations

import json

import pytest

from clinsynth.privacy import DPStatistics, rho_for_epsilon
from clinsynth.transform import TableTransformer
from clinsynth.transform._base import ColumnTransformer


def _unmarked(t: ColumnTransformer) -> list[str]:
    fresh = type(t)(t.column, **{p: getattr(t, p) for p in t._params})
    return sorted(k for k in vars(t) if k not in vars(fresh) and not k.endswith("_"))


def _privacy() -> DPStatistics:
    return DPStatistics(rho=rho_for_epsilon(5.0, 1e-6), delta=1e-7, random_state=0)


@pytest.mark.parametrize("numerical", ["mode", "quantile", "identity"])
@pytest.mark.parametrize("private", [False, True])
def test_every_transformer_marks_its_fitted_state(mixed_df, mixed_metadata, numerical, private):
    tt = TableTransformer(
        mixed_metadata,
        numerical=numerical,
        rare_category_threshold=5,
        privacy=_privacy() if private else None,
    ).fit(mixed_df)
    kinds = set()
    for t in tt.transformers_.values():
        kinds.add(type(t).__name__)
        assert _unmarked(t) == [], t.column
        saved = json.loads(json.dumps(t.to_dict()))
        assert set(saved["state"]) == set(t._state)  # the bundle keys did not change
        assert not any(key.endswith("_") for key in saved["state"])
        again = type(t).from_dict(saved)
        assert _unmarked(again) == [], t.column
        assert again.to_dict() == saved
    assert {"NumericalTransformer", "CategoricalTransformer", "DatetimeTransformer"} <= kinds
    assert {"IdTransformer", "PiiTransformer"} <= kinds
