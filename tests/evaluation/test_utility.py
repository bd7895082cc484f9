import numpy as np
import pytest
from evaldata import splits

from clinsynth.errors import ParameterError
from clinsynth.evaluation import evaluate_utility


def test_classification_true_distribution_vs_shuffled_labels():
    train, holdout, fresh, md = splits()
    good = evaluate_utility(train, fresh, md, target="risk", holdout=holdout)
    shuffled = fresh.assign(risk=np.random.default_rng(0).permutation(fresh["risk"].to_numpy()))
    bad = evaluate_utility(train, shuffled, md, target="risk", holdout=holdout)
    assert good.metrics["task"] == "classification"
    for model in ("HistGradientBoosting", "Linear"):
        assert good.metrics["tstr"][model] == pytest.approx(good.metrics["trtr"][model], abs=0.05)
        assert bad.metrics["tstr"][model] < bad.metrics["trtr"][model] - 0.15
    assert good.get_score() > 0.85
    assert bad.get_score() < 0.3
    details = good.get_details("ML Efficacy")
    assert {"Model", "Metric", "tstr", "trtr", "ratio"} <= set(details.columns)
    assert set(details["Metric"]) == {"ROC AUC", "F1"}
    importance = good.get_details("Feature Importance")
    assert "risk" not in set(importance["Column"]) and "email" not in set(importance["Column"])
    assert good.metrics["feature_importance_spearman"] > 0.3


def test_binary_and_regression():
    train, holdout, fresh, md = splits()
    binary = evaluate_utility(train, fresh, md, target="smoker", holdout=holdout)
    assert binary.get_score() > 0.7
    reg = evaluate_utility(train, fresh, md, target="sbp", holdout=holdout)
    assert reg.metrics["metric"] == "R2" and reg.metrics["trtr"]["Linear"] > 0.5
    assert reg.get_score() > 0.85
    noise = fresh.assign(sbp=np.random.default_rng(1).permutation(fresh["sbp"].to_numpy()))
    assert evaluate_utility(train, noise, md, target="sbp", holdout=holdout).get_score() < 0.2


def test_single_class_synthetic_data_does_not_crash():
    train, holdout, fresh, md = splits()
    one_class = fresh.assign(smoker=True)
    report = evaluate_utility(train, one_class, md, target="smoker", holdout=holdout)
    assert report.metrics["tstr"]["HistGradientBoosting"] == pytest.approx(0.5)
    assert report.get_score() == pytest.approx(0.0)


def test_bad_target():
    train, holdout, fresh, md = splits()
    with pytest.raises(ParameterError, match="target"):
        evaluate_utility(train, fresh, md, target="email", holdout=holdout)
    with pytest.raises(ParameterError, match="regression"):
        evaluate_utility(train, fresh, md, target="sex", holdout=holdout, task="regression")
