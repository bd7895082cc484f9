"""Rare conditions on the noise models (TVAE, HVAE-GAN, CTGAN): importance resampling in the
model's noise space gives exactly the rows asked for, from few draws, following the model's own
conditional distribution (what plain rejection from the model gives)."""

import numpy as np
import pandas as pd
import pytest

from clinsynth import CTGANSynthesizer, HVAEGANSynthesizer, Metadata, TVAESynthesizer
from clinsynth.errors import SamplingError
from clinsynth.synthesizers._latent_conditioning import NoiseProposal, choose, inclusion

SIR = "importance resampling in the noise space"
MODELS = {
    "tvae": lambda md: TVAESynthesizer(
        md,
        epochs=2,
        embedding_dim=16,
        compress_dims=(32,),
        decompress_dims=(32,),
        batch_size=200,
        random_state=0,
    ),
    "hvaegan": lambda md: HVAEGANSynthesizer(
        md,
        epochs=2,
        group_embedding_dim=4,
        embedding_dim=8,
        compress_dims=(32,),
        decompress_dims=(32,),
        discriminator_dim=(32,),
        batch_size=200,
        random_state=0,
    ),
    "ctgan": lambda md: CTGANSynthesizer(
        md,
        epochs=2,
        embedding_dim=16,
        generator_dim=(32,),
        discriminator_dim=(32,),
        batch_size=200,
        pac=10,
        random_state=0,
    ),
}


def _table(n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    condition = rng.choice(["healthy", "diabetes", "heart"], n, p=[0.6, 0.25, 0.15])
    age = rng.normal(55, 12, n) + np.where(condition == "heart", 8, 0)
    return pd.DataFrame(
        {
            "age": age.round(),
            "bmi": (24 + 0.08 * (age - 55) + rng.normal(0, 3, n)).round(1),
            "sex": rng.choice(["female", "male"], n),
            "smoking": rng.choice(["never", "former", "current"], n, p=[0.5, 0.3, 0.2]),
            "condition": condition,
        }
    )


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request):
    df = _table()
    model = MODELS[request.param](Metadata.detect_from_dataframe(df)).fit(df)
    # A condition that about 1% of the model's own rows meet: its most common level and the
    # top of age within it.
    plain = model.sample(60_000)
    level = plain["condition"].value_counts().index[0]
    ages = plain.loc[plain["condition"] == level, "age"]
    low = float(ages.quantile(1 - 0.01 * len(plain) / len(ages)))
    conditions = {"condition": level, "age": (low, None)}
    hits = plain[(plain["condition"] == level) & (plain["age"] >= low)]
    return request.param, model, conditions, hits, len(hits) / len(plain)


def test_rare_condition_exact_rows_from_few_draws(fitted):
    _, model, conditions, _, rate = fitted
    level, (low, _) = conditions["condition"], conditions["age"]
    rows = model.sample(300, conditions=conditions, max_tries_per_batch=30)
    assert len(rows) == 300
    assert (rows["condition"] == level).all() and (rows["age"] >= low).all()
    stats = model.conditioning_stats_
    assert stats["method"] == SIR  # not a fall-back to rejection
    # Rejection needs about 300 / rate draws; the noise space much fewer.
    assert stats["draws"] < 0.5 * 300 / rate, (stats, rate)


def test_resampling_keeps_the_models_conditional_distribution(fitted):
    _, model, conditions, hits, _ = fitted
    rows = model.sample(len(hits), conditions=conditions)
    # Another number and another category, against plain rejection from the same model.
    spread = hits["bmi"].std()
    assert abs(rows["bmi"].mean() - hits["bmi"].mean()) < 0.3 * spread
    assert 0.6 < rows["bmi"].std() / spread < 1.6
    for column in ("smoking", "sex"):
        ours = rows[column].value_counts(normalize=True)
        theirs = hits[column].value_counts(normalize=True)
        gap = ours.sub(theirs, fill_value=0).abs().max()
        assert gap < 0.12, (column, ours.to_dict(), theirs.to_dict())
    assert not rows.duplicated().all()


def test_conditional_sampling_is_reproducible(fitted):
    _, model, conditions, _, _ = fitted
    model.reset_sampling(seed=5)
    a = model.sample(50, conditions=conditions)
    model.reset_sampling(seed=5)
    b = model.sample(50, conditions=conditions)
    pd.testing.assert_frame_equal(a, b)


def test_budget_too_small_says_how_many(fitted):
    _, model, conditions, _, _ = fitted
    with pytest.raises(SamplingError, match="Could make only"):
        model.sample(5000, conditions=conditions, max_tries_per_batch=1)


def test_common_condition_needs_one_round(fitted):
    _, model, _, _, _ = fitted
    rows = model.sample(200, conditions={"age": (None, 1e9)})
    assert len(rows) == 200 and model.conditioning_stats_["rounds"] == 1


def test_proposal_weights_are_unbiased():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((400, 20))
    target[:, 3] = rng.normal(2.5, 0.3, 400)  # a condition moved one coordinate
    q = NoiseProposal.fit(target, np.ones(400))
    assert q.coords.tolist() == [3]
    z = q.draw(200_000, rng)
    w = np.exp(q.log_weight(z))
    assert abs(w.mean() - 1) < 0.03  # E_q[p/q] = 1
    # Weighted, the draws from q are N(0, 1) again.
    assert abs(np.average(z[:, 3], weights=w)) < 0.05
    assert abs(np.average(z[:, 3] ** 2, weights=w) - 1) < 0.1


def test_choice_without_replacement():
    rng = np.random.default_rng(1)
    w = rng.pareto(1.5, 5000)
    p, cut = inclusion(w, 1000)
    assert abs(p.sum() - 1000) < 1e-6 and p.max() <= 1 and 0 <= cut < 1
    idx = choose(w, 1000, rng)
    assert len(idx) == len(set(idx.tolist())) == 1000
