import json

import numpy as np
import pytest
from evaldata import population, population_metadata, splits

from clinsynth.errors import ParameterError
from clinsynth.evaluation import evaluate_privacy


def test_copy_of_training_set_fails():
    train, holdout, _, md = splits()
    report = evaluate_privacy(train, train.copy(), md, holdout=holdout, sensitive_columns=["risk"])
    m = report.metrics
    assert m["dcr_share"] > 0.99
    assert m["mia_auc"] > 0.9
    assert m["domias_auc"] > 0.65
    assert m["exact_copy_share"] == 1.0
    assert report.get_score() < 0.1
    risks = report.get_details("Risks").set_index("Risk")
    for name in (
        "Distance To Closest Record",
        "Membership Inference",
        "Membership Inference (DOMIAS)",
        "Exact Copies",
    ):
        assert risks.loc[name, "Verdict"] == "high"
        assert "differential privacy (epsilon <= 3)" in risks.loc[name, "Advice"]
    for name in ("Singling Out", "Linkability", "Inference (risk)"):
        assert risks.loc[name, "Verdict"] == "high"
        assert risks.loc[name, "CI Low"] > 0.9
    assert report.get_details("Distance To Closest Record")["dcr_share"].iloc[0] == m["dcr_share"]
    assert report.get_details("Membership Inference")["mia_auc"].iloc[0] == m["mia_auc"]
    assert report.statement.startswith("Measurable privacy risk")


def test_fresh_sample_of_true_distribution_passes():
    train, holdout, fresh, md = splits()
    report = evaluate_privacy(train, fresh, md, holdout=holdout, sensitive_columns=["risk"])
    m = report.metrics
    assert abs(m["dcr_share"] - 0.5) < 2 * m["dcr_share_se"]
    assert abs(m["mia_auc"] - 0.5) < 0.06
    assert abs(m["domias_auc"] - 0.5) < 3 * m["domias_auc_se"]
    assert m["exact_copy_share"] == 0.0
    assert report.get_score() > 0.85
    verdicts = report.get_details("Risks")["Verdict"]
    assert set(verdicts) == {"low"}
    assert (report.get_details("Risks")["Advice"] == "No action needed.").all()
    for res in (m["singling_out"], m["linkability"], m["inference"]["risk"]):
        assert res["ci_low"] == 0.0
    assert report.statement.startswith("No measurable privacy risk")


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


# The DCR share compares against every training row, corrected for the sizes (here 1500 training
# rows and 300 holdout rows): the old estimator, which subsampled the training rows to the
# holdout's size, read a verbatim copy as about 0.6 here.
@pytest.mark.parametrize("seed", [7, 11])
def test_dcr_share_reads_a_verbatim_copy_as_one_whatever_the_sizes(seed):
    big_train = population(1500, seed=seed)
    holdout = population(300, seed=seed + 1)
    md = population_metadata()
    report = evaluate_privacy(big_train, big_train.copy(), md, holdout=holdout)
    assert report.metrics["dcr_share"] >= 0.95
    assert report.metrics["dcr_share_raw_expected"] == pytest.approx(1500 / 1800)
    risk = report.get_details("Risks").set_index("Risk").loc["Distance To Closest Record"]
    assert risk["Verdict"] == "high"


@pytest.mark.parametrize("seed", [7, 11, 13])
def test_real_holdout_judged_as_synthetic_reads_one_half(seed):
    big_train = population(1500, seed=seed)
    holdout = population(300, seed=seed + 1)
    unseen = population(500, seed=seed + 2)  # real patients the model never saw
    report = evaluate_privacy(big_train, unseen, population_metadata(), holdout=holdout)
    m = report.metrics
    assert 0 < m["dcr_share_se"] < 0.06
    assert abs(m["dcr_share"] - 0.5) <= 2 * m["dcr_share_se"]
    assert report.sampling == {}  # every training row was used


def test_singling_out_control_is_corrected_for_a_smaller_holdout():
    # no leak is possible: the "synthetic" rows are unseen real rows, the holdout is 5x smaller
    # than the training set, so the control rate must be extrapolated to the training size
    big_train = population(1500, seed=21)
    holdout = population(300, seed=22)
    unseen = population(1500, seed=23)
    report = evaluate_privacy(big_train, unseen, population_metadata(), holdout=holdout)
    so = report.metrics["singling_out"]
    assert so["control_size_correction"] == "extrapolated"
    assert so["ci_low"] == 0.0
    assert abs(so["attack_rate"] - so["control_rate"]) < so["control_rate_error"]
    copied = evaluate_privacy(big_train, big_train, population_metadata(), holdout=holdout)
    assert copied.metrics["singling_out"]["ci_low"] > 0.8


def test_attack_risk_follows_the_published_formula():
    from clinsynth.evaluation._attacks import attack_risk, success_rate

    # Wilson centre and half-width: (k + z^2/2) / (n + z^2), z / (n + z^2) sqrt(k(n-k)/n + z^2/4)
    rate, error = success_rate(30, 100)
    assert rate == pytest.approx((30 + 1.959964**2 / 2) / (100 + 1.959964**2))
    assert error == pytest.approx(1.959964 / (100 + 1.959964**2) * np.sqrt(21 + 1.959964**2 / 4))
    # risk = (main - control) / (1 - control), errors propagated; the anonymeter package reports
    # 0.12207 (0, 0.26368) for these counts
    res = attack_risk(30, 20, 100, 100, baseline=5, n_baseline=100)
    assert res["risk"] == pytest.approx(0.12207, abs=1e-5)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((0.0, 0.26368), abs=1e-5)
    assert not res["weak_attack"]
    assert attack_risk(20, 30, 100, 100)["risk"] == 0.0  # clipped: control does better


def test_report_is_json_ready_and_says_what_it_measured():
    train, holdout, fresh, md = splits()
    report = evaluate_privacy(
        train, fresh, md, holdout=holdout, max_rows=200, n_attacks=100, sensitive_columns=["bmi"]
    )
    out = report.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["statement"] == report.statement
    for figure in ("singling out", "linkability", "inference of 'bmi'", "DCR share", "DOMIAS"):
        assert figure in report.statement
    assert report.metrics["inference"]["bmi"]["secret_kind"] == "numeric"
    assert report.sampling["Distances, membership and attacks"] == {
        "holdout": 200,
        "synthetic": 200,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sensitive_columns": ["email"]}, "sensitive_columns"),
        ({"quasi_identifiers": ["nope"]}, "quasi_identifiers"),
        ({"aux_columns": (["age"], [])}, "aux_columns"),
        ({"aux_columns": (["age", "sex"], ["sex", "bmi"])}, "aux_columns"),
        ({"aux_columns": ["age", "sex"]}, "aux_columns"),
        ({"n_attacks": 0}, "n_attacks"),
        ({"max_rows": -5}, "max_rows"),
    ],
)
def test_nonsense_parameters_get_one_clear_error(kwargs, match):
    train, holdout, fresh, md = splits()
    with pytest.raises(ParameterError, match=match):
        evaluate_privacy(train, fresh, md, holdout=holdout, **kwargs)


def test_quasi_identifiers_drive_singling_out_advice():
    train, holdout, _, md = splits()
    report = evaluate_privacy(
        train, train.copy(), md, holdout=holdout, quasi_identifiers=["age", "sex"]
    )
    assert set(report.metrics["singling_out"]["columns_most_used"]) <= {"age", "sex"}
    advice = report.get_details("Risks").set_index("Risk").loc["Singling Out", "Advice"]
    assert "'age'" in advice


def test_statement_and_attacks_reach_the_html_and_json_reports(tmp_path):
    from clinsynth.evaluation import evaluate

    train, holdout, fresh, md = splits()
    result = evaluate(
        train, fresh, md, holdout=holdout, sensitive_columns=["risk"], detection=False
    )
    result.save_html(tmp_path / "report.html")
    result.save_json(tmp_path / "report.json")
    page = (tmp_path / "report.html").read_text()
    statement = result.privacy.statement
    assert statement and statement[:60] in page
    assert "Re-identification attacks (Giomi et al. 2023)" in page
    saved = json.loads((tmp_path / "report.json").read_text())["reports"]["privacy"]
    assert saved["statement"] == statement
    attacks = {row["Attack"] for row in saved["details"]["Re-identification Attacks"]}
    assert attacks == {"Singling Out", "Linkability", "Inference (risk)"}
