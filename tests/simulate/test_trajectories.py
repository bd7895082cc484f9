"""Repeated lab trajectories: a table of sequences with its metadata."""

from __future__ import annotations

import pandas as pd
import pytest

from clinsynth.errors import ParameterError
from clinsynth.simulate import simulate_lab_trajectories


def test_sequences_are_ordered_bounded_and_reproducible():
    df, md = simulate_lab_trajectories(200, mean_visits=10, seed=5)
    table = md.get_table()
    assert (table.sequence_key, table.sequence_index) == ("patient_id", "day")
    md.validate()
    counts = df.groupby("patient_id").size()
    assert counts.min() >= 2 and 8 <= counts.mean() <= 12
    assert (df.groupby("patient_id")["day"].diff().dropna() > 0).all()
    assert (df.groupby("patient_id")["day"].first() == 0).all()
    assert (df["day"] < df["followup_days"]).all()
    context = df.groupby("patient_id")[["sex", "age", "arm", "followup_days"]].nunique()
    assert (context == 1).all().all()
    assert set(df["ckd_stage"]) <= {"G1", "G2", "G3", "G4"}
    again, _ = simulate_lab_trajectories(200, mean_visits=10, seed=5)
    pd.testing.assert_frame_equal(df, again)


def test_bad_count():
    with pytest.raises(ParameterError, match="num_patients"):
        simulate_lab_trajectories(0)
