"""Longitudinal tables found from the data: the patient column and the time column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth import Metadata
from clinsynth.metadata import detect_sequence, sequence_index_candidates, sequence_key_candidates
from clinsynth.simulate import simulate_cohort, simulate_lab_trajectories


def _visits(n: int = 40) -> pd.DataFrame:
    data, _ = simulate_lab_trajectories(n, mean_visits=5, seed=0)
    return data


def test_patient_and_day_are_proposed_and_nothing_is_set() -> None:
    data = _visits()
    md = Metadata.detect_from_dataframe(data)
    assert detect_sequence(data, md) == ("patient_id", "day")
    assert md.get_table().sequence_key is None  # detection proposes, never sets


def test_rows_in_any_order_and_dates_as_text() -> None:
    data = _visits().sample(frac=1.0, random_state=3).reset_index(drop=True)
    data["date"] = (pd.Timestamp("2020-01-01") + pd.to_timedelta(data["day"], "D")).astype(str)
    data = data.drop(columns="day")
    md = Metadata.detect_from_dataframe(data)
    assert detect_sequence(data, md) == ("patient_id", "date")


def test_a_column_with_ties_or_gaps_is_not_an_index() -> None:
    data = _visits()
    data["quarter"] = data["day"] // 91  # two visits in one quarter tie
    data["day"] = data["day"].astype(float)
    data.loc[5, "day"] = np.nan
    md = Metadata.detect_from_dataframe(data)
    ranked = sequence_index_candidates(data, md, "patient_id")
    assert data.duplicated(["patient_id", "quarter"]).any()
    assert "quarter" not in ranked and "day" not in ranked
    assert "followup_days" not in ranked and "age" not in ranked  # constant per patient


def test_the_ordering_column_comes_first() -> None:
    data = _visits()
    rng = np.random.default_rng(0)
    data["noise"] = rng.normal(size=len(data)).round(4)  # no ties, not in the rows' order
    md = Metadata.detect_from_dataframe(data)
    ranked = sequence_index_candidates(data, md, "patient_id")
    assert ranked[0] == "day" and "noise" in ranked


def test_one_row_per_patient_is_not_longitudinal() -> None:
    data, _ = simulate_cohort(200, seed=0)
    md = Metadata.detect_from_dataframe(data)
    assert sequence_key_candidates(data, md) == [] and detect_sequence(data, md) is None
    visits = _visits()
    visits["patient_id"] = [f"P{i}" for i in range(len(visits))]  # unique: the table's key
    assert detect_sequence(visits, Metadata.detect_from_dataframe(visits)) is None
