"""How the models are built: a shallow hierarchy, and differential privacy as a part.

Every registered model is at most two classes below ``BaseSynthesizer``; what varies (the DP
budget and DP-SGD, the GANs' training step, latent codes) is an object or a function the model
owns, checked here on its own.
"""

from __future__ import annotations

import pytest
import torch

from clinsynth import TVAESynthesizer, list_synthesizers
from clinsynth.privacy import PrivacyAccountant
from clinsynth.synthesizers import BaseSynthesizer
from clinsynth.synthesizers._dp import (
    DP_PARAMETERS,
    DifferentialPrivacy,
    DPSGDTraining,
    PrivateStep,
    restore_budget,
)


@pytest.mark.parametrize("name", sorted(list_synthesizers(sequential=True)))
def test_every_model_is_at_most_two_classes_below_the_base(name):
    mro = list_synthesizers(sequential=True)[name].__mro__
    below = mro[: mro.index(BaseSynthesizer)]
    assert len(below) <= 2, [c.__name__ for c in below]
    assert not [c for c in below if "Mixin" in c.__name__]


def test_dp_models_check_the_dp_parameters():
    for name in ("tvae", "ctgan", "cwgan", "hvaegan", "tabddpm", "dp_marginal"):
        constraints = {}
        for klass in reversed(list_synthesizers()[name].__mro__):
            constraints.update(vars(klass).get("_parameter_constraints", {}))
        for key in ("epsilon", "delta", "public_bounds"):
            assert constraints[key] is DP_PARAMETERS[key], (name, key)


def test_the_part_plans_the_transformer_share_and_reports_the_ledger():
    dp = DifferentialPrivacy(2.0, public_bounds={"sex": ["F", "M"], "age": (0, 110)}, seed=3)
    stats = dp.plan(500)
    assert dp.delta_ == pytest.approx(1 / 5000)  # the default 1 / (10 n)
    assert stats.rho == pytest.approx(0.1 * dp.rho)
    assert stats.accountant is dp.accountant
    budget = dp.budget(mechanism="test")
    assert budget["differential_privacy"] is True and budget["epsilon"] == 2.0
    assert budget["public_bounds"] == ["age", "sex"] and budget["mechanism"] == "test"
    assert budget["guarantee"].startswith("(2.0, 0.0002)-differential privacy")


def test_dp_sgd_is_calibrated_to_spend_the_rest_of_the_budget():
    dp = DifferentialPrivacy(1.0, 1e-5)
    dp.plan(1000)
    dp.accountant.add_zcdp("statistics", 0.1 * dp.rho, consumer="statistics")
    net = torch.nn.Linear(3, 1)
    sgd = dp.sgd(
        net,
        ["net"],
        num_rows=1000,
        batch_size=50,
        steps=200,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(sgd, DPSGDTraining) and sgd.sample_rate == pytest.approx(0.05)
    details = sgd.record(dp.accountant)
    assert details["steps"] == 200 and details["networks"] == ["net"]
    spent = dp.budget(**details)["epsilon_spent"]
    assert 0.99 <= spent <= 1.0


def test_the_step_wrapper_hands_the_private_step_its_dp_sgd():
    seen = []
    sgd = DPSGDTraining(
        torch.nn.Linear(2, 1),
        ["net"],
        num_rows=10,
        sample_rate=0.5,
        steps=1,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        generator=torch.Generator(),
    )
    step = sgd.wrap(lambda dp: seen.append(dp) or {"loss": 0.0})
    assert step(torch.arange(3)) == {"loss": 0.0} and seen == [sgd]
    assert PrivateStep(None, step).updates == 1


def test_from_model_reads_the_parameters_and_is_none_without_a_budget(mixed_metadata):
    assert DifferentialPrivacy.from_model(TVAESynthesizer(mixed_metadata)) is None
    model = TVAESynthesizer(mixed_metadata, epsilon=3.0, max_grad_norm=2.0, random_state=7)
    first, second = (DifferentialPrivacy.from_model(model) for _ in range(2))
    assert first.epsilon == 3.0 and first.max_grad_norm == 2.0
    assert first.seed == second.seed  # the transformer's DP noise follows random_state


def test_restore_budget_drops_what_the_report_derives():
    budget = DifferentialPrivacy(1.0, seed=0)
    budget.plan(100)
    saved = budget.budget()
    manifest = {
        "privacy": {
            **saved,
            "guarantee": saved["guarantee"] + ", except the values that the rules read",
            "rare_category_threshold": 5,
            "rare_levels_merged": {},
            "generated_columns": ["pid"],
            "not_covered": ["a rule"],
        }
    }
    assert restore_budget(manifest) == saved
    assert restore_budget({"privacy": {"differential_privacy": False}}) is None
    assert restore_budget({}) is None


def _tiny_tvae(metadata, **params):
    return TVAESynthesizer(
        metadata,
        epochs=1,
        batch_size=40,
        embedding_dim=4,
        compress_dims=(8,),
        decompress_dims=(8,),
        random_state=0,
        **params,
    )


def test_with_epsilon_the_engine_runs_only_the_private_step(mixed_df, mixed_metadata, monkeypatch):
    def plain(self, idx):
        raise AssertionError("the plain step ran with epsilon")

    monkeypatch.setattr(TVAESynthesizer, "_train_step", plain)
    model = _tiny_tvae(mixed_metadata, epsilon=5.0).fit(mixed_df)
    assert isinstance(model._dp_, DifferentialPrivacy)
    assert isinstance(model._dp_.accountant, PrivacyAccountant)
    assert model.privacy_budget_["steps"] == 2  # 80 rows, batches of 40, one epoch
    assert model.get_privacy_budget() is model.privacy_budget_


def test_without_epsilon_there_is_no_part_and_no_private_step(
    mixed_df, mixed_metadata, monkeypatch
):
    def private(self, dp):
        raise AssertionError("the private step ran without epsilon")

    monkeypatch.setattr(TVAESynthesizer, "_dp_train_step", private)
    model = _tiny_tvae(mixed_metadata).fit(mixed_df)
    assert model._dp_ is None and model.privacy_budget_ is None
    assert model.dp_enabled is False and model.get_privacy_budget() is None
