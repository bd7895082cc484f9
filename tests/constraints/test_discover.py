"""Discovery finds the exact rules of a table, with support, and nothing that holds by chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from logic_data import EXPECTED, logic_table

from clinsynth import Metadata
from clinsynth.constraints import (
    FunctionalDependency,
    Implication,
    Inequality,
    SkipPattern,
    constraint_from_dict,
    discover_rules,
)
from clinsynth.errors import MetadataError


def described(rules) -> set[tuple[str, str]]:
    return {(r.type, r.describe()) for r in rules}


def discovered(df: pd.DataFrame) -> list:
    table = Metadata.detect_from_dataframe(df, discover_rules=False).get_table()
    return discover_rules(df, table)


def test_every_kind_is_found_with_its_support():
    df = logic_table(400)
    rules = discovered(df)
    assert set(EXPECTED) <= described(rules)
    for rule in rules:
        assert rule.discovered and rule.support["informative"] >= 20
        assert rule.is_valid(df, Metadata.detect_from_dataframe(df).get_table()).all()
    support = {r.describe(): r.support for r in rules}
    assert support["died_in_hospital = 1 implies died = 1"] == {
        "rows": 400,
        "informative": int((df["died_in_hospital"] == 1).sum()),
    }


def test_detect_stores_the_rules_in_the_metadata_json(tmp_path):
    df = logic_table(300)
    md = Metadata.detect_from_dataframe(df)
    items = md.get_table().constraints
    assert items and all(item["discovered"] and "support" in item for item in items)
    md.save_to_json(tmp_path / "md.json")
    again = Metadata.load_from_json(tmp_path / "md.json")
    assert again.get_table().constraints == items
    # Removing a column removes the rules that name it; the others stay.
    again.remove_column("dx_class")
    left = [constraint_from_dict(c).describe() for c in again.get_table().constraints]
    assert "dx determines dx_class" not in left and "total = `fee_a` + `fee_b`" in left
    assert Metadata.detect_from_dataframe(df, discover_rules=False).get_table().constraints == []


def test_nothing_that_holds_by_chance():
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            # Near-unique codes "determine" everything on the rows they appear in.
            "code": [f"c{i}" for i in rng.integers(0, 450, n)],
            "group": rng.choice(["a", "b", "c"], n),
            "flag": rng.integers(0, 2, n),
            # Ranges that never overlap are ordered, but that says nothing.
            "age": rng.integers(20, 90, n),
            "charges": rng.integers(1000, 50_000, n),
            # Independent numbers: no formula, no grid, no point mass.
            "x": rng.normal(0, 1, n).round(3),
            "y": rng.normal(0, 1, n).round(3),
            "serial": np.arange(n),
        }
    )
    assert discovered(df) == []


def test_a_skip_pattern_names_no_rare_value():
    rng = np.random.default_rng(1)
    n = 400
    site = rng.choice(["north", "south", "east"], n)
    site[:3] = "tiny"  # three rows only
    lab = np.where(np.isin(site, ["north", "south", "tiny"]), rng.normal(5, 1, n).round(2), np.nan)
    rules = discovered(pd.DataFrame({"site": site, "lab": lab}))
    skip = [r for r in rules if isinstance(r, SkipPattern)]
    assert len(skip) == 1
    # "present unless east" names no rare site ("present when north, south or tiny" would).
    assert skip[0].to_dict()["not_values"] == ["east"]
    assert "tiny" not in str(skip[0].to_dict())


def test_dependencies_are_reduced_and_copies_collapse():
    rng = np.random.default_rng(2)
    n = 600
    code = rng.choice([f"k{i}" for i in range(12)], n)
    chapter = np.array([f"ch{int(c[1:]) // 4}" for c in code])
    block = np.array([f"b{int(c[1:]) // 2}" for c in code])
    df = pd.DataFrame({"code": code, "block": block, "chapter": chapter})
    rules = discovered(df)
    fds = {(r.determinant, r.dependent) for r in rules if isinstance(r, FunctionalDependency)}
    # code -> block -> chapter, not code -> chapter as well.
    assert fds == {("code", "block"), ("block", "chapter")}
    # no implication repeats what a dependency says
    assert not [r for r in rules if isinstance(r, Implication)]


def test_orders_are_a_transitive_reduction():
    rng = np.random.default_rng(3)
    n = 300
    a = rng.integers(0, 30, n)
    b = a + rng.integers(0, 10, n)
    c = b + rng.integers(0, 10, n)
    rules = discovered(pd.DataFrame({"a": a, "b": b, "c": c}))
    orders = {(r.low, r.high) for r in rules if isinstance(r, Inequality)}
    assert orders == {("a", "b"), ("b", "c")}


def test_clinical_formulas_are_found_and_written_readably():
    rng = np.random.default_rng(4)
    n = 300
    sys_bp = rng.integers(90, 180, n)
    dia_bp = (sys_bp * 0.6 + rng.integers(-5, 5, n)).astype(int)
    w71 = rng.normal(70, 10, n).round(1)
    w82 = (w71 + rng.normal(2, 4, n)).round(1)
    df = pd.DataFrame(
        {
            "sys_bp": sys_bp,
            "dia_bp": dia_bp,
            "map": ((sys_bp + 2 * dia_bp) / 3).round(1),
            "weight_1971": w71,
            "weight_1982": w82,
            "wt_change": (w82 - w71).round(1),
        }
    )
    found = {r.describe() for r in discovered(df)}
    assert "map = 1/3 * `sys_bp` + 2/3 * `dia_bp`" in found
    assert "wt_change = `weight_1982` - `weight_1971`" in found


def test_discovery_leaves_the_data_alone():
    df = logic_table(200)
    before = df.copy()
    discovered(df)
    pd.testing.assert_frame_equal(df, before)


# ----------------------------------------------------------------------------- contradictions
def with_rules(rules: list) -> Metadata:
    df = logic_table(100)
    md = Metadata.detect_from_dataframe(df, discover_rules=False)
    md.get_table().constraints = [r if isinstance(r, dict) else r.to_dict() for r in rules]
    return md


def test_contradictory_implications_are_refused_with_both_named():
    md = with_rules(
        [Implication("followed", [1], "died", [1]), Implication("followed", [1], "died", [0])]
    )
    with pytest.raises(MetadataError) as err:
        md.validate()
    text = str(err.value)
    assert "'followed = 1 implies died = 1'" in text and "'followed = 1 implies died = 0'" in text


def test_a_chain_of_implications_can_contradict():
    md = with_rules(
        [
            Implication("died_in_hospital", [1], "died", [1]),
            Implication("died", [1], "followed", [0]),
            Implication("died_in_hospital", [1], "followed", [1]),
        ]
    )
    with pytest.raises(MetadataError, match="contradict"):
        md.validate()


def test_skip_pattern_against_implication_and_order_cycles_are_refused():
    md = with_rules(
        [
            SkipPattern("cd4_late", "followed", values=[1]),
            Implication("followed", [1], "cd4_late", [None]),
            Inequality("los", "followup_days", strict=True),
            Inequality("followup_days", "los"),
            {"type": "grid", "column": "dose", "step": 5},
            {"type": "point_mass", "column": "dose", "value": 12},
        ]
    )
    with pytest.raises(MetadataError) as err:
        md.validate()
    text = str(err.value)
    assert "cd4_late must be present when followed is 1" in text
    assert "order a column before itself" in text
    assert "12 is not on the grid" in text
    assert len(err.value.problems) == 3


def test_rules_naming_unknown_columns_or_types_are_refused():
    md = with_rules([{"type": "teleport"}, {"type": "grid", "column": "nope", "step": 2}])
    with pytest.raises(MetadataError) as err:
        md.validate()
    assert "Unknown rule" in str(err.value) and "'nope'" in str(err.value)
