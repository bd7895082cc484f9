"""Conditional identities: two numbers equal on one level of a category, found and kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.constraints import Formula, constraint_from_dict
from clinsynth.errors import MetadataError


def _stays(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    los = rng.integers(1, 60, n)
    outcome = rng.choice(["died in hospital", "discharged", "transferred"], n, p=[0.3, 0.5, 0.2])
    followup = np.where(outcome == "died in hospital", los, los + rng.integers(1, 900, n))
    return pd.DataFrame(
        {"age": rng.integers(20, 90, n), "los": los, "outcome": outcome, "followup": followup}
    )


def _identities(md: Metadata) -> list[str]:
    rules = [constraint_from_dict(c) for c in md.get_table().constraints]
    return [r.describe() for r in rules if r.type == "formula"]


def test_found_on_its_level_only_and_kept_by_the_model():
    df = _stays()
    md = Metadata.detect_from_dataframe(df)
    assert _identities(md) == ["followup = `los` when outcome is 'died in hospital'"]
    rows = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(2000)
    died = rows["outcome"] == "died in hospital"
    assert died.sum() > 300
    assert (rows.loc[died, "followup"] == rows.loc[died, "los"]).all()
    # the other rows keep their own values (not forced equal)
    assert (rows.loc[~died, "followup"] != rows.loc[~died, "los"]).mean() > 0.95


def test_not_found_where_the_numbers_are_only_equal_by_chance():
    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 3, n),  # few values: equal by chance on many rows
            "b": rng.integers(0, 3, n),
            "x": rng.normal(size=n).round(2),
            "group": rng.choice(["p", "q"], n),
        }
    )
    assert _identities(Metadata.detect_from_dataframe(df)) == []


def test_the_json_form_round_trips_and_checks_only_its_rows():
    rule = Formula("followup", "`los`", when_column="outcome", when_values=["died in hospital"])
    again = constraint_from_dict(rule.to_dict())
    assert again == rule and again.describe() == rule.describe()
    df = _stays(50)
    df.loc[df["outcome"] != "died in hospital", "followup"] = -1  # other rows: anything goes
    md = Metadata.detect_from_dataframe(df, discover_rules=False)
    assert rule.is_valid(df, md.get_table()).all()
    df.loc[df["outcome"] == "died in hospital", "followup"] += 1
    assert (~rule.is_valid(df, md.get_table())).sum() == (df["outcome"] == "died in hospital").sum()
    with pytest.raises(MetadataError, match="when_values"):
        Formula("followup", "`los`", when_column="outcome")


def _followup(n: int = 800, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    died = rng.random(n) < 0.6
    # the censored were followed to the end of the study (one to three years); deaths any time
    days = np.where(died, rng.integers(1, 1000, n), rng.integers(365, 1100, n))
    return pd.DataFrame({"age": rng.integers(30, 90, n), "died": died.astype(int), "days": days})


def _ranges(md: Metadata) -> list[str]:
    rules = [constraint_from_dict(c) for c in md.get_table().constraints]
    return [r.describe() for r in rules if r.type == "range"]


def test_a_range_of_one_level_is_found_and_kept():
    df = _followup()
    md = Metadata.detect_from_dataframe(df)
    found = _ranges(md)
    assert len(found) == 1 and found[0].startswith("days >= 36") and "when died is 0" in found[0]
    bound = float(found[0].split(">= ")[1].split(" ")[0])
    assert df.loc[df["died"] == 0, "days"].min() > bound > df["days"].min()  # no patient's value
    rows = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(1000)
    censored = rows["died"] == 0
    assert censored.sum() > 200 and (rows.loc[censored, "days"] >= bound).all()
    assert (rows.loc[~censored, "days"] < bound).any()  # deaths keep their whole range


def test_no_range_where_a_level_is_a_random_subset():
    rng = np.random.default_rng(3)
    n = 800
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n).round(3),
            "g": rng.choice(["a", "b", "c"], n),
            "k": rng.integers(0, 9, n),
        }
    )
    assert _ranges(Metadata.detect_from_dataframe(df)) == []
