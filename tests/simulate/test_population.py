"""simulate_population: schema, determinism, effect sizes, rules, medications, bad graphs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from clinsynth.errors import MetadataError, ParameterError
from clinsynth.simulate import egfr_ckd_epi_2021, load_graph, simulate_population

DOCS = Path(__file__).resolve().parents[2] / "docs" / "SIMULATORS.md"


@pytest.fixture(scope="module")
def default_graph():
    return load_graph()


@pytest.fixture(scope="module")
def big():
    """40k rows of the default graph: enough to estimate the odds ratios."""
    return simulate_population(40_000, seed=11)[0]


def _nodes(graph, kind):
    return [n for n, t in graph.nodes(data="type") if t == kind]


def _coded(graph, df, node):
    if graph.nodes[node]["type"] != "variant":
        return df[node].to_numpy(dtype=float)
    count = df[node].to_numpy()
    return {
        "additive": count.astype(float),
        "dominant": (count >= 1).astype(float),
        "recessive": (count == 2).astype(float),
    }[graph.nodes[node]["inheritance"]]


def _logistic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression (Newton/IRLS): coefficients and standard errors."""
    x = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(x.shape[1])
    for _ in range(30):
        p = 1 / (1 + np.exp(-(x @ beta)))
        w = np.clip(p * (1 - p), 1e-12, None)
        info = x.T @ (x * w[:, None])
        step = np.linalg.solve(info, x.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta[1:], np.sqrt(np.diag(np.linalg.inv(info)))[1:]


def small_graph(odds_ratio: float = 3.0) -> dict:
    """One dominant variant, one exposure, one disease: crude ORs equal the configured ones."""
    return {
        "population": {"ancestry": {"EUR": 1.0}},
        "nodes": [
            {"id": "riskvar", "type": "variant", "frequency": 0.2, "inheritance": "dominant"},
            {"id": "dust", "type": "exposure", "prevalence": 0.3},
            {"id": "lungdisease", "type": "disease", "prevalence": 0.1},
            {"id": "fev1", "type": "lab", "mean": 95, "sd": 8, "min": 20, "max": 140},
            {"id": "puffer", "type": "medication"},
        ],
        "edges": [
            {"source": "riskvar", "target": "lungdisease", "type": "risk",
             "odds_ratio": odds_ratio},
            {"source": "lungdisease", "target": "fev1", "type": "shift", "shift": -30},
            {"source": "lungdisease", "target": "puffer", "type": "indicates",
             "probability": 0.9},
        ],
    }  # fmt: skip


# ------------------------------------------------------------------------- schema and metadata
def test_output_matches_its_metadata(default_graph):
    df, md = simulate_population(500, seed=0)
    md.validate()
    md.validate_data(df)
    assert list(df.columns) == list(md.columns)
    assert md.primary_key == "patient_id" and df["patient_id"].is_unique
    groups = md.column_groups
    assert set(groups) == {"genetic", "clinical", "environmental"}
    grouped = [c for cols in groups.values() for c in cols]
    assert sorted(grouped) == sorted(c for c in df.columns if c != "patient_id")
    assert set(_nodes(default_graph, "variant")) | {"ancestry"} == set(groups["genetic"])
    assert set(groups["environmental"]) == set(_nodes(default_graph, "exposure"))
    assert {"age", "sex", "type2_diabetes", "hba1c", "metformin"} <= set(groups["clinical"])
    for col, spec in md.columns.items():
        if spec["sdtype"] == "boolean":
            assert df[col].dtype == bool, col
        if spec.get("computer_representation", "").startswith("Int"):
            assert df[col].dtype.kind == "i", col
    variants = df[_nodes(default_graph, "variant")]
    assert variants.isin([0, 1, 2]).all().all()
    assert df["age"].between(18, 90).all() and set(df["sex"]) == {"female", "male"}
    assert len(_nodes(default_graph, "disease")) >= 10


def test_same_seed_same_data_other_seed_other_data():
    a, _ = simulate_population(300, seed=5)
    b, _ = simulate_population(300, seed=5)
    c, _ = simulate_population(300, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.drop(columns="patient_id").equals(c.drop(columns="patient_id"))


_DIGEST = """
import hashlib, pandas as pd
from clinsynth.simulate import simulate_cohort, simulate_hospital, simulate_population
frames = [simulate_population(400, seed=0)[0], simulate_cohort(300, seed=0)[0]]
frames += list(simulate_hospital(40, seed=0)[0].values())
digest = [hashlib.md5(pd.util.hash_pandas_object(f).values.tobytes()).hexdigest() for f in frames]
print("DIGEST", digest)
"""


def test_same_seed_same_data_across_processes():
    """Same seed, other process and other string-hash seed -> the same data (no set order leaks)."""
    import os
    import subprocess
    import sys

    digests = set()
    for hash_seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        ).stdout
        digests.add(next(line for line in out.splitlines() if line.startswith("DIGEST")))
    assert len(digests) == 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_num_rows(bad):
    with pytest.raises(ParameterError, match="num_rows"):
        simulate_population(bad)


# ------------------------------------------------------------------------- effect sizes
def test_configured_odds_ratio_shows_up_in_the_data():
    df, _ = simulate_population(50_000, seed=3, graph=small_graph(3.0))
    carrier = df["riskvar"] >= 1
    ill = df["lungdisease"]
    a, b = (carrier & ill).sum(), (carrier & ~ill).sum()
    c, d = (~carrier & ill).sum(), (~carrier & ~ill).sum()
    assert abs(np.log(a * d / (b * c)) - np.log(3.0)) < 0.15
    assert abs(ill.mean() - 0.1) < 0.005  # calibrated prevalence
    assert abs(df["dust"].mean() - 0.3) < 0.01
    # The disease shifts the lab by the configured amount.
    gap = df.loc[~ill, "fev1"].mean() - df.loc[ill, "fev1"].mean()
    assert abs(gap - 30) < 1.0


def test_default_graph_odds_ratios_are_recovered(default_graph, big):
    """Every risk edge of every disease: the fitted log odds ratio is within 4.5 standard
    errors of the configured one (the disease model is logistic in exactly these inputs)."""
    decade = (big["age"].to_numpy() - 50) / 10
    male = (big["sex"] == "male").to_numpy(dtype=float)
    checked = 0
    for disease in _nodes(default_graph, "disease"):
        parents = [s for s, _, t in default_graph.in_edges(disease, data="type") if t == "risk"]
        x = np.column_stack([decade, male] + [_coded(default_graph, big, p) for p in parents])
        beta, se = _logistic_fit(x, big[disease].to_numpy(dtype=float))
        node = default_graph.nodes[disease]
        expected = [np.log(node["age_odds_ratio"])] + [
            np.log(default_graph.edges[p, disease]["odds_ratio"]) for p in parents
        ]
        for name, b, s, e in zip(
            ["age"] + parents, np.delete(beta, 1), np.delete(se, 1), expected, strict=True
        ):
            assert abs(b - e) < 4.5 * s + 0.02, f"{name} -> {disease}: {b:.3f} vs {e:.3f} ± {s:.3f}"
            checked += 1
    assert checked >= 50


def test_carriers_of_risk_variants_are_ill_more_often(big):
    t2d = big.groupby("TCF7L2_rs7903146")["type2_diabetes"].mean()
    assert t2d[0] < t2d[1] < t2d[2]
    chd = big.groupby("CDKN2B-AS1_rs10757274")["coronary_heart_disease"].mean()
    assert chd[0] < chd[2]
    brca = big.groupby(big["BRCA1_pathogenic"] + big["BRCA2_pathogenic"] > 0)["breast_cancer"]
    assert brca.mean()[True] > 3 * brca.mean()[False]


def test_labs_follow_the_diagnoses(big):
    def gap(lab, disease):
        return big.loc[big[disease], lab].mean() - big.loc[~big[disease], lab].mean()

    assert gap("fasting_glucose", "type2_diabetes") > 40
    assert gap("hba1c", "type2_diabetes") > 1.0
    assert gap("creatinine", "chronic_kidney_disease") > 0.5
    assert gap("egfr", "chronic_kidney_disease") < -15
    assert gap("fev1_pct", "copd") < -20
    assert gap("systolic_bp", "hypertension") > 15
    assert np.corrcoef(big["fasting_glucose"], big["hba1c"])[0, 1] > 0.7


# ------------------------------------------------------------------------- rules on every row
def test_rules_hold_on_every_row(default_graph, big):
    assert (big["diastolic_bp"] <= big["systolic_bp"] - 10).all()
    # obesity is defined by BMI >= 30, exactly
    assert ((big["bmi"] >= 30) == big["obesity"]).all()
    egfr = egfr_ckd_epi_2021(big["creatinine"], big["age"], big["sex"] == "female")
    assert np.abs(np.clip(egfr, 3, 150) - big["egfr"]).max() <= 0.5 + 1e-9
    for lab in _nodes(default_graph, "lab"):
        node = default_graph.nodes[lab]
        assert big[lab].between(node["min"], node["max"]).all(), lab


def test_medications_only_with_an_indication(default_graph, big):
    for med in _nodes(default_graph, "medication"):
        indicated = np.zeros(len(big), dtype=bool)
        for src, _, e in default_graph.in_edges(med, data=True):
            if default_graph.nodes[src]["type"] == "lab":
                indicated |= big[src].to_numpy() >= e["threshold"]
            else:
                indicated |= big[src].to_numpy()
        assert big[med].sum() > 0, med
        assert not (big[med] & ~indicated).any(), f"{med} given without an indication"
    assert not (big["metformin"] & ~big["type2_diabetes"]).any()
    assert not (big["inhaler"] & ~(big["asthma"] | big["copd"])).any()
    rate = big.loc[big["type2_diabetes"], "metformin"].mean()
    assert abs(rate - 0.75) < 0.04


# ------------------------------------------------------------------------- options
def test_select_diseases():
    df, md = simulate_population(
        3000, seed=1, diseases=["type2_diabetes", "chronic_kidney_disease"]
    )
    graph = load_graph()
    kept = [c for c in df.columns if c in _nodes(graph, "disease")]
    assert kept == ["type2_diabetes", "chronic_kidney_disease"]
    assert "BRCA1_pathogenic" not in df and "inhaler" not in df and "metformin" in df
    assert "TCF7L2_rs7903146" in df and "egfr" in df
    assert abs(df["type2_diabetes"].mean() - 0.10) < 0.02
    md.validate_data(df)


def test_unknown_disease_is_named():
    with pytest.raises(ParameterError, match="diabetus.*type2_diabetes"):
        simulate_population(10, diseases=["diabetus"])


def test_graph_from_yaml_json_dict_and_networkx_agree(tmp_path):
    graph = small_graph()
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(graph))
    (tmp_path / "g.json").write_text(json.dumps(graph))
    from_dict, _ = simulate_population(200, seed=2, graph=graph)
    for source in (tmp_path / "g.yaml", str(tmp_path / "g.json"), load_graph(graph)):
        pd.testing.assert_frame_equal(simulate_population(200, seed=2, graph=source)[0], from_dict)


def test_edited_networkx_graph_is_used():
    g = load_graph(small_graph(1.0))
    g.edges["riskvar", "lungdisease"]["odds_ratio"] = 20.0
    df, _ = simulate_population(5000, seed=0, graph=g)
    rates = df.groupby(df["riskvar"] >= 1)["lungdisease"].mean()
    assert rates[True] > 4 * rates[False]


# ------------------------------------------------------------------------- bad graphs
def _broken(change) -> dict:
    graph = copy.deepcopy(small_graph())
    change(graph)
    return graph


def _node(graph, nid):
    return next(n for n in graph["nodes"] if n["id"] == nid)


BAD_GRAPHS = {
    "unknown node in edge": (
        lambda g: g["edges"].append(
            {"source": "ghost", "target": "lungdisease", "type": "risk", "odds_ratio": 2}
        ),
        r"node 'ghost' is not defined. Add a node with id 'ghost'",
    ),
    "frequency above 1": (
        lambda g: _node(g, "riskvar").update(frequency=1.4),
        r"node 'riskvar'.*'frequency'.*\[0, 1\].*1\.4",
    ),
    "negative prevalence": (
        lambda g: _node(g, "dust").update(prevalence=-0.1),
        r"node 'dust'.*'prevalence' must be a probability",
    ),
    "zero odds ratio": (
        lambda g: g["edges"][0].update(odds_ratio=0),
        r"riskvar -> lungdisease.*'odds_ratio' must be a number > 0. Got 0",
    ),
    "negative odds ratio": (
        lambda g: g["edges"][0].update(odds_ratio=-2.0),
        r"'odds_ratio' must be a number > 0",
    ),
    "disease cycle": (
        lambda g: (
            g["nodes"].append({"id": "otherdisease", "type": "disease", "prevalence": 0.05}),
            g["edges"].extend([
                {"source": "lungdisease", "target": "otherdisease", "type": "risk",
                 "odds_ratio": 2},
                {"source": "otherdisease", "target": "lungdisease", "type": "risk",
                 "odds_ratio": 2},
            ]),
        ),
        r"cycle of risk edges \((lungdisease|otherdisease) -> .* -> .*\).*remove one",
    ),
    "misspelt attribute": (
        lambda g: _node(g, "dust").update(prevalance=0.2),
        r"node 'dust'.*unknown attribute 'prevalance'",
    ),
    "edge of the wrong kind": (
        lambda g: g["edges"].append(
            {"source": "fev1", "target": "lungdisease", "type": "risk", "odds_ratio": 2}
        ),
        r"'risk' edge goes from variant or exposure or disease to disease, not from lab 'fev1'",
    ),
    "ancestry shares": (
        lambda g: g["population"].update(ancestry={"EUR": 0.5, "AFR": 0.4}),
        r"ancestry shares must sum to 1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_GRAPHS))
def test_bad_graph_names_the_problem(case):
    change, message = BAD_GRAPHS[case]
    with pytest.raises(MetadataError, match=message):
        simulate_population(10, graph=_broken(change))


def test_all_problems_are_reported_at_once():
    def two(g):
        _node(g, "riskvar").update(frequency=2)
        g["edges"][0].update(odds_ratio=0)

    with pytest.raises(MetadataError) as err:
        load_graph(_broken(two))
    assert len(err.value.problems) == 2


def test_bad_graph_files(tmp_path):
    with pytest.raises(MetadataError, match="does not exist"):
        load_graph(tmp_path / "missing.yaml")
    (tmp_path / "g.txt").write_text("nodes: []")
    with pytest.raises(MetadataError, match=r"must be \.yaml, \.yml or \.json"):
        load_graph(tmp_path / "g.txt")
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_graph(tmp_path / "g.json")


def test_default_graph_is_documented(default_graph):
    text = DOCS.read_text(encoding="utf-8")
    missing = [n for n in default_graph if f"`{n}`" not in text]
    assert not missing, f"docs/SIMULATORS.md does not list {missing}"
