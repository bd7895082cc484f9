import numpy as np
import pytest
from evaldata import population, splits

from clinsynth.errors import ParameterError
from clinsynth.evaluation import evaluate_privacy


def test_copy_of_training_set_fails():
    train, holdout, _, md = splits()
    report = evaluate_privacy(train, train.copy(), md, holdout=holdout, sensitive_columns=["risk"])
    m = report.metrics
    assert m["dcr_share"] > 0.99
    assert m["mia_auc"] > 0.9
    assert m["exact_copy_share"] == 1.0
    assert report.get_score() < 0.1
    risks = report.get_details("Risks").set_index("Risk")
    for name in ("Distance To Closest Record", "Membership Inference", "Exact Copies"):
        assert risks.loc[name, "Verdict"] == "high"
        assert "differential privacy (epsilon <= 3)" in risks.loc[name, "Advice"]
    assert risks.loc["Singling Out", "Verdict"] == "high"
    assert risks.loc["Inference (risk)", "Verdict"] == "high"
    assert report.get_details("Distance To Closest Record")["dcr_share"].iloc[0] == m["dcr_share"]
    assert report.get_details("Membership Inference")["mia_auc"].iloc[0] == m["mia_auc"]


def test_fresh_sample_of_true_distribution_passes():
    train, holdout, fresh, md = splits()
    report = evaluate_privacy(train, fresh, md, holdout=holdout, sensitive_columns=["risk"])
    m = report.metrics
    assert abs(m["dcr_share"] - 0.5) < 0.06
    assert abs(m["mia_auc"] - 0.5) < 0.06
    assert m["exact_copy_share"] == 0.0
    assert report.get_score() > 0.85
    verdicts = report.get_details("Risks")["Verdict"]
    assert set(verdicts) == {"low"}
    assert (report.get_details("Risks")["Advice"] == "No action needed.").all()


def test_noisy_copy_is_caught_without_exact_copies():
    train, holdout, _, md = splits()
    rng = np.random.default_rng(0)
    noisy = train.assign(age=train["age"] + rng.normal(0, 0.3, len(train)))
    report = evaluate_privacy(train, noisy, md, holdout=holdout)
    assert report.metrics["exact_copy_share"] == 0.0
    assert report.metrics["dcr_share"] > 0.95 and report.metrics["mia_auc"] > 0.85
    assert report.get_score() < 0.2
    singling = report.get_details("Risks").set_index("Risk").loc["Singling Out"]
    assert "quasi-identifiers such as" in singling["Advice"]


def test_unequal_sizes_are_normalized_by_subsampling_train():
    _, holdout, _, md = splits()
    big_train = population(1500, seed=7)
    fresh = population(500, seed=8)
    report = evaluate_privacy(big_train, fresh, md, holdout=holdout.iloc[:300])
    sizes = report.sampling["Distances, membership and attacks"]
    assert sizes["train"] == sizes["holdout"] == 300
    assert abs(report.metrics["dcr_share"] - 0.5) < 0.07


def test_report_is_json_ready_and_validates_columns():
    train, holdout, fresh, md = splits()
    report = evaluate_privacy(train, fresh, md, holdout=holdout, max_rows=200, n_attacks=100)
    import json

    json.dumps(report.to_dict(), allow_nan=False)
    with pytest.raises(ParameterError, match="sensitive_columns"):
        evaluate_privacy(train, fresh, md, holdout=holdout, sensitive_columns=["email"])


def test_quasi_identifiers_drive_singling_out_advice():
    train, holdout, _, md = splits()
    report = evaluate_privacy(
        train, train.copy(), md, holdout=holdout, quasi_identifiers=["age", "sex"]
    )
    assert set(report.metrics["singling_out"]["columns_most_used"]) <= {"age", "sex"}
    advice = report.get_details("Risks").set_index("Risk").loc["Singling Out", "Advice"]
    assert "'age'" in advice
