"""Conditions no row can meet are refused at once; conditions too rare for the model give up
after a bounded number of draws, saying the acceptance rate seen; condition strings that repeat
or contradict each other are refused instead of keeping the last one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.errors import ParameterError, SamplingError
from clinsynth.synthesizers import _conditions
from clinsynth.synthesizers._conditions import parse_condition_strings


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "age": rng.integers(20, 90, n),
            "bmi": np.round(rng.normal(27, 4, n), 1),
            "sex": rng.choice(["F", "M"], n),
            "stage": rng.choice(["low", "medium", "high"], n),
            "visit": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
            "pid": np.arange(n),
        }
    )
    md = Metadata.detect_from_dataframe(df)
    md.update_column("stage", sdtype="ordinal", order=["low", "medium", "high"])
    return GaussianCopulaSynthesizer(md, random_state=0).fit(df)


@pytest.mark.parametrize(
    "items, message",
    [
        (["sex=F", "sex=M"], "contradict or repeat"),
        (["age>=60", "age>=70"], "contradict or repeat"),
        (["age=60", "age<=70"], "contradict or repeat"),
        (["age>>=5"], "Cannot read condition"),
        (["age=>5"], "Cannot read condition"),
        (["age!=5"], "Cannot read condition"),
        (["age>60"], "strict '>'.*'age>=61'"),
        (["bmi<27.5"], "strict '<'"),
    ],
)
def test_condition_strings_that_cannot_all_be_kept_are_refused(items, message):
    with pytest.raises(ParameterError, match=message):
        parse_condition_strings(items)


def test_the_same_condition_twice_is_one_condition():
    assert parse_condition_strings(["sex=F", "sex=F", "age>=60", "age<=80"]) == {
        "sex": "F",
        "age": (60, 80),
    }


@pytest.mark.parametrize(
    "conditions, message",
    [
        ({"age": "old"}, "must be a number"),
        ({"age": 300}, "outside the values seen"),
        ({"age": 40.5}, "rounded to whole numbers"),
        ({"bmi": 27.123456}, "rounded to 1 decimal"),
        ({"bmi": ("x", None)}, "must be a number"),
        ({"visit": "soon"}, "must be a date"),
        ({"visit": "2021-03-01 10:30"}, "whole days"),
        ({"visit": ("2030-01-01", None)}, "outside the values seen"),
        ({"stage": ("medium", "huge")}, "not one of its ordered levels"),
        ({"stage": ("high", "low")}, "contradictory range"),
        ({"pid": 3}, "generated"),
    ],
)
def test_conditions_no_row_can_meet_are_refused_at_once(model, conditions, message):
    with pytest.raises(SamplingError, match=message):
        model.sample(5, conditions=conditions)


def test_ordinal_and_date_ranges_follow_the_order_and_the_calendar(model):
    rows = model.sample(40, conditions={"stage": ("medium", "high")})
    assert set(rows["stage"]) <= {"medium", "high"}
    rows = model.sample(40, conditions={"visit": ("2021-06-01", "2021-08-31")})
    assert rows["visit"].between(pd.Timestamp("2021-06-01"), pd.Timestamp("2021-08-31")).all()
    rows = model.sample(10, conditions={"visit": "2021-03-01"})
    assert (rows["visit"] == pd.Timestamp("2021-03-01")).all()


def test_rare_condition_gives_up_after_a_bounded_effort_saying_the_rate(model, monkeypatch):
    monkeypatch.setattr(_conditions, "MIN_DRAW_BUDGET", 60_000)
    monkeypatch.setattr(_conditions, "PROBE_DRAWS", 20_000)
    with pytest.raises(SamplingError, match="acceptance rate") as error:
        model.sample(1000, conditions={"age": 21, "bmi": 33.3})
    assert "gives up after 2,000,000" in str(error.value)  # 2000 draws per row asked for
    assert model.conditioning_stats_["draws"] <= 2_000_000


def test_hopeless_rate_is_recognised_early():
    assert _conditions.hopeless(0, 100_000, 10, 2_000_000)
    assert not _conditions.hopeless(0, 50_000, 10, 2_000_000)  # too early to tell
    assert _conditions.hopeless(5, 100_000, 1000, 2_000_000)  # 20M draws needed
    assert not _conditions.hopeless(500, 100_000, 1000, 2_000_000)
