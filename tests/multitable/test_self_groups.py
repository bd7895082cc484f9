"""Keys into a table's own rows keep their groups: sizes, rows pointing to themselves, matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from clinsynth import Metadata
from clinsynth.multitable import HMASynthesizer
from clinsynth.multitable._self_groups import assign_self_groups, learn_self_groups
from clinsynth.simulate import simulate_case_control


def _structure(df: pd.DataFrame) -> dict:
    keyed = df.dropna(subset=["case.id"])
    head = df.set_index("id").loc[keyed["case.id"].astype("int64").to_numpy()]
    member = (keyed["case.id"] != keyed["id"]).to_numpy()
    return {
        "sizes": df.groupby("case.id").size().to_numpy(),
        "self": float((keyed["case.id"] == keyed["id"]).mean()),
        "same_sex": float((head["sex"].to_numpy() == keyed["sex"].to_numpy())[member].mean()),
        "age_gap": float(np.abs(head["age"].to_numpy() - keyed["age"].to_numpy())[member].mean()),
        "missing": float(df["case.id"].isna().mean()),
    }


def test_the_groups_of_a_case_control_table_are_learned():
    tables, md = simulate_case_control(300, seed=2)
    df = tables["subjects"]
    spec = learn_self_groups(
        df, "id", "case.id", md.tables["subjects"].columns, np.random.default_rng(0)
    )
    assert spec["marker"] == {"column": "case", "head_values": [True], "member_value": False}
    assert [m["column"] for m in spec["matched"]] == ["sex", "age"]
    assert [m["kind"] for m in spec["matched"]] == ["exact", "rank"]
    assert spec["self_rows"] == 1.0 and spec["other_sizes"] is None
    assert spec["self_share"] == (df["case.id"] == df["id"]).mean()
    sizes = df.groupby("case.id").size()
    expected = sizes.value_counts(normalize=True).sort_index()
    assert spec["sizes"]["values"] == expected.index.tolist()
    assert np.allclose(spec["sizes"]["weights"], expected.to_numpy(), atol=1e-4)
    # Smoking and BMI differ between cases and controls but are not matched on.
    assert not {"smoking", "bmi"} & {m["column"] for m in spec["matched"]}


def test_rare_group_sizes_are_pooled_so_no_size_stands_for_fewer_than_five_groups():
    ids = np.arange(1, 61)
    sets = np.concatenate([np.repeat(ids[:50:2], 2), [51] * 7, [58] * 3])  # 25 pairs, a 7, a 3
    df = pd.DataFrame({"id": ids, "set": sets})
    spec = learn_self_groups(df, "id", "set", {}, np.random.default_rng(0))
    table = dict(zip(spec["sizes"]["values"], spec["sizes"]["weights"], strict=True))
    assert table[2] > 0.8 and all(v != 7 and v != 3 for v in table)  # pooled into one size


def test_assigned_groups_follow_the_learned_sizes_and_matching():
    tables, md = simulate_case_control(400, seed=3)
    df = tables["subjects"]
    columns = md.tables["subjects"].columns
    spec = learn_self_groups(df, "id", "case.id", columns, np.random.default_rng(0))
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows in any order
    pos, marker = assign_self_groups(shuffled, spec, columns, np.random.default_rng(4))
    assert (pos >= 0).all()
    rebuilt = shuffled.assign(**{"case.id": shuffled["id"].to_numpy()[pos]})
    got, real = _structure(rebuilt), _structure(df)
    assert ks_2samp(real["sizes"], got["sizes"]).statistic < 0.1
    assert abs(got["self"] - real["self"]) < 0.02
    assert got["same_sex"] == 1.0 and got["age_gap"] < 2.0
    # Every case heads its own set and no control heads one (the marker corrected where the
    # sizes drawn ask for another number of sets: a few rows only).
    heads = pos == np.arange(len(pos))
    assert (heads == marker.to_numpy(dtype=bool)).all()
    assert (marker != shuffled["case"]).mean() < 0.03


def test_hierarchical_synthesizer_keeps_case_control_sets():
    tables, _ = simulate_case_control(250, seed=5)
    md = Metadata.detect_from_dataframes(tables, discover_rules=False)
    synth = HMASynthesizer(md, random_state=0).fit(tables)
    out = synth.sample()["subjects"]
    real, got = _structure(tables["subjects"]), _structure(out)
    assert out["case.id"].isin(out["id"]).all()
    assert ks_2samp(real["sizes"], got["sizes"]).statistic < 0.15
    assert abs(got["self"] - real["self"]) < 0.05
    assert got["same_sex"] > 0.95 and got["age_gap"] < 3.0
    assert "case.id" in synth.get_plan().loc[0, "self_groups"][0]


def test_unmatched_rows_and_sets_without_a_marker_column():
    tables, _ = simulate_case_control(300, seed=6)
    df = tables["subjects"].drop(columns=["case"])
    unmatched = df.sample(frac=0.1, random_state=0).index
    df["case.id"] = df["case.id"].astype("Int64")
    df.loc[unmatched, "case.id"] = pd.NA
    tables = {"subjects": df}
    md = Metadata.detect_from_dataframes(tables, discover_rules=False)
    out = HMASynthesizer(md, random_state=1).fit(tables).sample()["subjects"]
    real, got = _structure(df), _structure(out)
    assert abs(got["missing"] - real["missing"]) < 0.04
    assert abs(got["self"] - real["self"]) < 0.05
    assert got["same_sex"] > 0.9
    assert out["case.id"].dropna().isin(out["id"]).all()
