import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer
from clinsynth.errors import SamplingError
from clinsynth.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    df, md = simulate_cohort(4000, seed=1)
    return df, md, GaussianCopulaSynthesizer(md, random_state=0).fit(df)


@pytest.mark.parametrize("condition", ["healthy", "diabetes", "hypertension", "heart_disease"])
def test_condition_keeps_its_conditional_distribution(cohort, condition):
    df, _, model = cohort
    rows = model.sample(1000, conditions={"condition": condition})
    assert len(rows) == 1000 and (rows["condition"] == condition).all()
    real = df[df["condition"] == condition]
    for col in ("hba1c", "systolic_bp", "fasting_glucose", "ldl_cholesterol"):
        spread = df[col].std()
        # close to the condition's own mean, not to the population's
        assert abs(rows[col].mean() - real[col].mean()) < 0.15 * spread, col
    shift = abs(real["hba1c"].mean() - df["hba1c"].mean())
    if shift > 0.3 * df["hba1c"].std():
        assert abs(rows["hba1c"].mean() - df["hba1c"].mean()) > 0.5 * shift


def test_rare_condition_is_fast_and_exact(cohort):
    df, _, model = cohort
    low = df["age"].quantile(0.99)
    rows = model.sample(10_000, conditions={"condition": "diabetes", "age": (low, None)})
    # Native: one round of exactly the rows asked for, no rejection loop (a 1% tail of a
    # condition would need ~100x the draws by rejection).
    assert model.conditioning_stats_ == {
        "method": "native conditioning",
        "draws": 10_000,
        "rounds": 1,
    }
    assert len(rows) == 10_000 and (rows["age"] >= low).all()
    assert (rows["condition"] == "diabetes").all()


def test_sample_from_conditions_one_row_per_condition(cohort):
    import pandas as pd

    _, _, model = cohort
    conds = pd.DataFrame(
        {
            "condition": ["diabetes", "healthy", None, "diabetes"],
            "sex": ["female", None, "male", "male"],
        }
    )
    out = model.sample_from_conditions(conds)
    assert len(out) == 4
    assert out["condition"].iloc[[0, 1, 3]].tolist() == ["diabetes", "healthy", "diabetes"]
    assert out["sex"].iloc[[0, 2, 3]].tolist() == ["female", "male", "male"]


def test_impossible_conditions_say_why(cohort):
    _, _, model = cohort
    with pytest.raises(SamplingError, match="never seen"):
        model.sample(5, conditions={"condition": "gout"})
    with pytest.raises(SamplingError, match="contradictory"):
        model.sample(5, conditions={"age": (70, 30)})
    with pytest.raises(SamplingError, match="not a column"):
        model.sample(5, conditions={"zodiac": "leo"})


def test_conditions_are_reproducible(cohort):
    _, _, model = cohort
    model.reset_sampling()
    a = model.sample(50, conditions={"condition": "heart_disease"})
    model.reset_sampling()
    b = model.sample(50, conditions={"condition": "heart_disease"})
    assert a.equals(b)
    assert np.isfinite(a.select_dtypes("number").to_numpy(dtype=float)).all()


def test_models_declare_their_conditioning_strategy():
    """Each model declares how it meets a condition: the noise-space and diffusion models check
    their own rows, the copula, the trees and the CWGAN give candidates, the others reject."""
    from clinsynth.synthesizers import get_synthesizer, list_synthesizers

    kinds = {}
    for name in list_synthesizers():
        if name == "auto":  # the chosen model's strategy, once fitted
            continue
        cls = get_synthesizer(name)
        strategy = cls.__new__(cls).conditioning()  # binds the model's method, reads no state
        kinds[name] = (type(strategy).__name__, strategy.kind, strategy.checks_rows)
    assert kinds["tvae"] == ("CheckedRows", "latent importance", True)
    assert kinds["hvaegan"] == ("CheckedRows", "latent importance", True)
    assert kinds["ctgan"][0] == "CheckedRows" and "latent importance" in kinds["ctgan"][1]
    assert kinds["tabddpm"] == ("CheckedRows", "diffusion splitting", True)
    assert kinds["gaussian_copula"] == ("Candidates", "truncation", False)
    assert kinds["cart"] == ("Candidates", "sequential importance", False)
    assert kinds["cwgan"] == ("Candidates", "conditional vector", False)
    assert kinds["dp_marginal"] == ("Rejection", "rejection", False)


def test_strategies_pass_their_arguments_through():
    """A checking strategy gets ``max_rounds``; auto's delegation asks it with its own budget
    and passes candidates through; rejection has no native way."""
    from clinsynth.synthesizers._conditioning import (
        Candidates,
        CheckedRows,
        ConditionedRows,
        Delegated,
        Rejection,
    )

    rng = np.random.default_rng(0)
    seen = []

    def rows(n, parsed, rng, max_rounds):
        seen.append((n, max_rounds))
        return ConditionedRows(pd.DataFrame({"a": range(n)}), n, 1, "test")

    checked = CheckedRows("test", rows)
    assert len(checked.rows(4, {}, rng, max_rounds=7).rows) == 4 and seen == [(4, 7)]
    assert checked.candidates(4, {}, rng) is None
    out = Delegated(checked, max_rounds=3).candidates(5, {}, rng)
    assert isinstance(out, ConditionedRows) and seen[-1] == (5, 3)
    drawn = Delegated(Candidates("c", lambda n, p, r: np.ones((n, 2)))).candidates(2, {}, rng)
    assert drawn.shape == (2, 2)
    assert Rejection().candidates(3, {}, rng) is None
    assert Rejection().rows(3, {}, rng, max_rounds=1) is None


def test_auto_conditions_through_its_chosen_models_strategy():
    """Auto declares the chosen model's strategy (delegated): the copula's truncation, so its
    conditional rows come natively, without rejection."""
    from clinsynth.synthesizers import AutoSynthesizer
    from clinsynth.synthesizers._conditioning import Delegated

    df, md = simulate_cohort(600, seed=2)
    auto = AutoSynthesizer(md, candidates=["gaussian_copula"], random_state=0).fit(df)
    strategy = auto.conditioning()
    assert isinstance(strategy, Delegated) and strategy.kind == "truncation"
    rows = auto.sample(40, conditions={"condition": "diabetes"})
    assert len(rows) == 40 and (rows["condition"] == "diabetes").all()
    assert auto.conditioning_stats_["method"] == "native conditioning"
