"""Sequence measures: events per patient, gaps, lag-1 autocorrelation, transitions,
temporal-logic violations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.errors import MetadataError
from clinsynth.evaluation import evaluate_sequences
from clinsynth.evaluation._sequences import (
    gaps,
    lag1_autocorrelation,
    temporal_violations,
    transition_distance,
    transitions,
)
from clinsynth.simulate import simulate_lab_trajectories


@pytest.fixture(scope="module")
def visits():
    return simulate_lab_trajectories(300, mean_visits=8, seed=2)


def test_real_against_itself_is_perfect(visits):
    df, md = visits
    result = evaluate_sequences(df, df.sample(frac=1.0, random_state=0), md)
    assert result["events_per_patient_ks"] == 0.0 and result["gap_ks"] == 0.0
    for column in ("creatinine", "hba1c", "sbp"):
        lag = result["lag1"][column]
        assert lag["real"] == pytest.approx(lag["synthetic"])
        assert result["step_ks"][column] == 0.0
    assert set(result["lag1"]) == {"creatinine", "hba1c", "sbp"}  # context columns left out
    assert result["transitions"] == {"ckd_stage": 0.0}
    assert result["violations"] == {"not_increasing": 0}


def test_simulated_labs_are_autocorrelated_and_independent_rows_are_not(visits):
    df, _ = visits
    assert lag1_autocorrelation(df, "patient_id", "day", "hba1c") > 0.5
    shuffled = df.assign(hba1c=np.random.default_rng(0).permutation(df["hba1c"].to_numpy()))
    assert abs(lag1_autocorrelation(shuffled, "patient_id", "day", "hba1c")) < 0.1
    spiked = df.copy()
    spiked.loc[spiked.index[5], "hba1c"] = 1e6  # one extreme value: Pearson falls, ranks hold
    pearson = lag1_autocorrelation(spiked, "patient_id", "day", "hba1c")
    spearman = lag1_autocorrelation(spiked, "patient_id", "day", "hba1c", method="spearman")
    assert pearson < 0.1 < 0.5 < spearman


def test_gaps_and_transitions_by_hand():
    df = pd.DataFrame({"p": [1, 1, 1, 2, 2], "t": [0, 5, 7, 3, 4], "s": ["a", "a", "b", "b", "a"]})
    assert sorted(gaps(df.iloc[::-1], "p", "t")) == [1.0, 2.0, 5.0]
    matrix = transitions(df, "p", "t", "s")
    assert matrix.loc["a", "a"] == 0.5 and matrix.loc["a", "b"] == 0.5
    assert matrix.loc["b", "a"] == 1.0
    other = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]}, index=["a", "b"])
    assert transition_distance(matrix, other) == pytest.approx((0.5 + 1.0) / 2)


def test_violations_counted():
    df = pd.DataFrame(
        {
            "p": [1, 1, 1, 2, 2],
            "t": ["2020-01-01", "2020-01-01", "2020-03-01", "2020-01-05", "2021-01-01"],
            "end": ["2020-06-01"] * 3 + ["2020-12-31"] * 2,
        }
    )
    assert temporal_violations(df, "p", "t", upper=["end"]) == {
        "not_increasing": 1,
        "after_end": 1,
    }
    md = Metadata.detect_from_dataframe(df)
    with pytest.raises(MetadataError, match="sequence_key and sequence_index"):
        evaluate_sequences(df, df, md)


def test_trajectory_figure(visits):
    from clinsynth.evaluation._sequences import trajectory_figure

    df, md = visits
    fig = trajectory_figure(df, df, md, "creatinine", patients=3)
    assert len(fig.data) == 6
    assert all(len(trace.x) >= 2 for trace in fig.data)
    with pytest.raises(MetadataError, match="'nope' is not a column"):
        trajectory_figure(df, df, md, "nope")


def test_transition_distance_weights_rows_by_real_frequency():
    real = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]}, index=["a", "b"])
    synthetic = pd.DataFrame({"a": [1.0, 1.0], "b": [0.0, 0.0]}, index=["a", "b"])
    assert transition_distance(real, synthetic) == pytest.approx(0.5)
    weights = pd.Series({"a": 9.0, "b": 1.0})
    assert transition_distance(real, synthetic, weights) == pytest.approx(0.1)
