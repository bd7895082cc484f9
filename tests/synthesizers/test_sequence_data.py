"""The sequence helpers: time axis resolution, bounds, the window squeeze, gap scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth.metadata import TableMetadata
from clinsynth.synthesizers import _sequence_data as sd


def test_time_axis_finds_the_resolution_and_round_trips():
    hours = pd.Series(["2021-01-01 08:00:00", "2021-01-01 10:00:00", "2021-01-02 09:00:00"])
    axis = sd.time_axis(hours, {"sdtype": "datetime", "datetime_format": "%Y-%m-%d %H:%M:%S"})
    assert axis.unit == 3600 and axis.text
    assert axis.from_ticks(axis.to_ticks(hours)).tolist() == hours.tolist()
    days = pd.Series(pd.to_datetime(["2020-02-01", "2020-03-15"]))
    axis = sd.time_axis(days, {"sdtype": "datetime"})
    assert axis.unit == 86_400 and not axis.text
    assert (axis.from_ticks(axis.to_ticks(days)) == days).all()
    tenths = pd.Series([0.0, 1.5, 2.7])
    axis = sd.time_axis(tenths, {"sdtype": "numerical", "computer_representation": "Float"})
    assert axis.unit == 0.1 and axis.to_ticks(tenths).tolist() == [0, 15, 27]
    assert axis.from_ticks(np.array([0, 15, 27])).tolist() == [0.0, 1.5, 2.7]


def test_bounds_discovered_strict_or_not():
    events = pd.DataFrame(
        {"t": [0, 5, 9, 2, 4], "end": [9, 9, 9, 6, 6], "born": [-3, -3, -3, 1, 1]}
    )
    axis = sd.time_axis(events["t"], {"sdtype": "numerical", "computer_representation": "Int64"})
    events["__ticks"] = axis.to_ticks(events["t"])
    table = TableMetadata({c: {"sdtype": "numerical"} for c in events.columns[:3]})
    bounds = sd.discover_bounds(events, ["end", "born"], table, axis)
    assert bounds.upper == [("end", False)] and bounds.lower == [("born", True)]
    low, high = sd.limits(events.iloc[[0, 3]], bounds, axis)
    assert low.tolist() == [-2.0, 2.0] and high.tolist() == [9.0, 6.0]


def test_window_squeeze_keeps_order_and_bound():
    lengths = np.array([4, 3])
    who = np.repeat([0, 1], lengths)
    offsets = np.array([0, 10, 20, 30, 0, 1, 2], dtype=float)
    start = np.array([100.0, 0.0])
    high = np.array([106.0, np.inf])
    ticks = sd.fit_window(start, offsets, high, who, lengths)
    assert ticks[:4].tolist() == [100, 102, 104, 106]  # squeezed into [100, 106]
    assert ticks[4:].tolist() == [0, 1, 2]  # no bound: unchanged
    tight = sd.fit_window(start, offsets, np.array([101.0, np.inf]), who, lengths)
    assert np.all(np.diff(tight[:4]) >= 1)  # more events than ticks left: the caller drops


def test_gap_scores_are_normal_and_keep_no_row():
    rng = np.random.default_rng(0)
    log_gaps = np.log(rng.choice([30.0, 90.0, 91.0, 180.0, 365.0], 1000))
    first = np.arange(0, 1000, 10)
    scores, knots = sd.gap_scores(log_gaps, first, seed=1)
    later = np.setdiff1d(np.arange(1000), first)
    assert abs(scores[later].mean()) < 0.1 and 0.85 < scores[later].std() < 1.15
    assert (scores[first] == 0).all() and len(knots) <= 900 // 5
    assert knots == sorted(knots)


def test_gap_knots_hold_no_single_gap():
    log_gaps = np.log(np.arange(1, 101, dtype=float))
    _, knots = sd.gap_scores(log_gaps, np.array([0]), seed=0)
    assert len(knots) == 99 // 5
    assert not set(np.round(knots, 9)) & set(np.round(log_gaps, 9))
    assert knots[0] == pytest.approx(np.log(np.arange(2, 8)).mean())  # 6 smallest, first out
