"""The public seam multitable uses: sampling given a context (and its strata), on any model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata, TVAESynthesizer


def _table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ctx = rng.normal(size=n)
    return pd.DataFrame(
        {
            "ctx": ctx,
            "y": 2 * ctx + rng.normal(scale=0.3, size=n),
            "sex": rng.choice(["F", "M"], n),
        }
    )


@pytest.fixture(scope="module")
def models():
    df = _table()
    md = Metadata.detect_from_dataframe(df)
    tiny = {"embedding_dim": 4, "compress_dims": (16,), "decompress_dims": (16,), "epochs": 3}
    return {
        "copula": GaussianCopulaSynthesizer(md, random_state=0).fit(df),
        "tvae": TVAESynthesizer(md, random_state=0, **tiny).fit(df),
    }


@pytest.mark.parametrize("name", ["copula", "tvae"])
def test_one_row_per_requested_context(models, name):
    model = models[name]
    context = pd.DataFrame({"ctx": [-2.0, 0.0, 2.0]})
    rows = np.array([0, 0, 1, 2, 2, 2])
    out = model.sample_given_context(context, np.random.default_rng(1), rows=rows)
    assert len(out) == len(rows) and list(out.columns) == ["y", "sex"]
    again = model.sample_given_context(context, np.random.default_rng(1), rows=rows)
    pd.testing.assert_frame_equal(out, again)  # the caller's stream decides the rows
    empty = model.sample_given_context(pd.DataFrame(index=range(4)), np.random.default_rng(1))
    assert len(empty) == 4


def test_copula_conditions_exactly_and_others_by_rank(models):
    context = pd.DataFrame({"ctx": [-2.0, 2.0]})
    rows = np.repeat([0, 1], 50)
    out = models["copula"].sample_given_context(context, np.random.default_rng(2), rows=rows)
    low, high = out["y"].iloc[:50], out["y"].iloc[50:]
    assert low.mean() < -3 and high.mean() > 3
    matched = models["tvae"].sample_given_context(context, np.random.default_rng(2), rows=rows)
    assert matched["y"].iloc[:50].mean() <= matched["y"].iloc[50:].mean()


def test_context_strata_is_json_and_empty_without_strata(models):
    df = _table()
    assert models["tvae"].context_strata(df, ["ctx"]) == []
    assert models["copula"].context_strata(df, ["ctx"]) == []  # one stratum
