"""The metric registry: every metric reads its value from its family's report, and the
leaderboard and the CLI take their metric names and words from it."""

from __future__ import annotations

import pytest
from evaldata import splits

from clinsynth.evaluation import (
    Metric,
    evaluate_privacy,
    evaluate_quality,
    evaluate_utility,
    get_metric,
    metrics,
    register_metric,
)
from clinsynth.evaluation._metrics import REPORT_OF
from clinsynth.synthesizers._auto_board import LEADERBOARD_COLUMNS, LEADERBOARD_PRIVACY


@pytest.fixture(scope="module")
def reports():
    train, holdout, fresh, md = splits()
    return {
        "quality": evaluate_quality(train, fresh, md, random_state=0),
        "utility": evaluate_utility(train, fresh, md, target="risk", holdout=holdout),
        "privacy": evaluate_privacy(train, fresh, md, holdout=holdout, n_attacks=50),
    }


def test_every_metric_is_read_from_its_report(reports):
    assert {m.family for m in metrics()} == set(REPORT_OF)
    for metric in metrics():
        value = metric.value(reports[REPORT_OF[metric.family]])
        assert value is not None and 0.0 <= value <= 1.0, metric.name
        assert metric.direction in ("higher", "lower") and metric.text and metric.label


def test_a_fresh_sample_scores_as_the_metrics_say_it_should(reports):
    """A sample of the true distribution: high fidelity, privacy metrics near their ideal."""
    assert get_metric("fidelity").value(reports["quality"]) > 0.85
    assert get_metric("exact_copy_share").value(reports["privacy"]) == 0.0
    for name in ("dcr_share", "mia_auc"):
        metric = get_metric(name)
        assert abs(metric.value(reports["privacy"]) - metric.ideal) < 0.1


def test_leaderboard_columns_come_from_the_registry():
    for metric in metrics("fidelity") + metrics("utility"):
        assert metric.name in LEADERBOARD_COLUMNS
    assert all(name in LEADERBOARD_COLUMNS for name in LEADERBOARD_PRIVACY)
    assert get_metric("dcr_share").describe(0.5123) == "DCR share 0.512 (0.5 ideal)"
    assert get_metric("exact_copy_share").describe(0.01) == "Exact copies 1.00%"


def test_names_are_unique_and_unknown_names_are_named():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("dcr_share", "privacy", "lower", "x", "x", lambda r: 0.0))
    with pytest.raises(ValueError, match="unknown family"):
        register_metric(Metric("new_one", "speed", "lower", "x", "x", lambda r: 0.0))
    with pytest.raises(KeyError, match="known: fidelity"):
        get_metric("nope")
