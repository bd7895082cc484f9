"""The marginal-based federation (``Plan(kind="dp_marginal")``): sites send noisy dependence
scores and noisy 2-way tables, the server fits the ``dp_marginal`` model from their sums."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from clinsynth import DPMarginalSynthesizer, Metadata, load
from clinsynth.errors import FederationError
from clinsynth.federated import Federation, Plan, Site, new_tokens, simulate
from clinsynth.federated import _marginal as MG
from clinsynth.metadata import TableMetadata
from clinsynth.privacy import PrivacyAccountant, rho_for_epsilon
from clinsynth.simulate import simulate_cohort
from clinsynth.synthesizers import _marginal_tree as T

COLUMNS = ["age", "sex", "bmi", "smoking", "alcohol", "family_history", "condition"]


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, TableMetadata]:
    df, md = simulate_cohort(1200, seed=3)
    spec = md.get_table("cohort").to_dict()["columns"]
    table = TableMetadata.from_dict({"columns": {c: spec[c] for c in COLUMNS}})
    return df[COLUMNS], table


def _plan(**kw) -> Plan:
    return Plan(min_rows=50, kind="dp_marginal", **kw)


def test_marginal_federation_gives_a_normal_bundle_and_each_site_accounts_its_budget(
    cohort, tmp_path
):
    df, table = cohort
    tokens = new_tokens(2)
    public = {"age": [18, 95], "sex": ["female", "male"]}
    fed = Federation(table, tokens, _plan(public=public, secure_aggregation=False), min_sites=2)
    assert fed.total_rounds == 5  # join, ranges, histograms, select, measure
    sites = {
        "old": Site(df[df["age"] >= 55], tokens[0], epsilon=3, seed=1),
        "young": Site(df[df["age"] < 55], tokens[1], epsilon=1, seed=2),
    }
    model = simulate(fed, sites)
    assert isinstance(model, DPMarginalSynthesizer)
    again = load(model.save(tmp_path / "fed.zip"))
    rows = again.sample(500)
    assert list(rows.columns) == COLUMNS and len(rows) == 500
    assert rows["age"].between(18, 95).all()
    assert set(rows["sex"].dropna()) <= {"female", "male"}
    report = again.get_privacy_report()
    assert len(report["edges"]) == len(COLUMNS) - 1
    assert report["measurement_sigma"] > 0 and report["scores_sigma"] > 0
    spent = {s["site"]: s["epsilon_spent"] for s in report["federated"]["sites"]}
    assert 2.7 < spent[1] <= 3.0 * 1.001 and 0.9 < spent[2] <= 1.0 * 1.001
    for sid, budget in (("old", 3.0), ("young", 1.0)):
        mine = sites[sid].report()
        assert mine["model"] == "dp_marginal" and mine["rounds_trained"] == 1
        assert budget * 0.9 < mine["epsilon_spent"] <= budget * 1.001
        assert set(mine["spent_by"]) == {"statistics", "selection", "measurement"}
    # The noise of a summed cell is the root-sum-square of the sites' own (each from its budget).
    d = len(COLUMNS)
    own = [
        np.sqrt((d - 1) / (2 * rho_for_epsilon(eps, 1e-6 * 0.9) * MG.SHARES[2])) for eps in (3, 1)
    ]
    assert report["measurement_sigma"] == pytest.approx(np.sqrt(own[0] ** 2 + own[1] ** 2))


def test_the_marginal_model_learns_a_dependence_spread_over_non_iid_sites(cohort):
    """Three sites split by age (each sees a narrow slice): the summed scores and tables still
    carry how the condition depends on age in the whole population (a large budget: the test
    is about the sums, not the noise)."""
    df, table = cohort
    tokens = new_tokens(3)
    fed = Federation(table, tokens, _plan(), min_sites=3)
    ordered = df.sort_values("age", kind="stable")
    parts = [ordered.iloc[k * 400 : (k + 1) * 400] for k in range(3)]
    sites = {f"s{k}": Site(p, tokens[k], epsilon=500, seed=k) for k, p in enumerate(parts)}
    model = simulate(fed, sites)
    assert len(fed.edges_) == len(COLUMNS) - 1
    rows = model.sample(8000)
    real = df.groupby("condition")["age"].mean()
    synth = rows.groupby("condition")["age"].mean()
    assert synth["heart_disease"] - synth["healthy"] > 0.5 * (
        real["heart_disease"] - real["healthy"]
    )
    pooled = pd.crosstab(df["smoking"], df["condition"], normalize="index")
    made = pd.crosstab(rows["smoking"], rows["condition"], normalize="index")
    assert float((pooled - made).abs().max().max()) < 0.15


def test_summed_site_tables_are_the_pooled_counts_plus_the_sites_noises(cohort):
    df, table = cohort
    central = DPMarginalSynthesizer(Metadata({"cohort": table}), epsilon=1e6, random_state=0)
    central.fit(df)
    transformer = central._transformer_
    attrs = central._attributes()
    parts = [df.iloc[:300], df.iloc[300:700], df.iloc[700:]]
    edges = [(0, 1), (1, 2), (0, 3)]
    replies, sigmas = [], []
    for k, part in enumerate(parts):
        codes = MG.site_codes(transformer, attrs, part, seed=0)
        acc = PrivacyAccountant()
        sigma = MG.tables_sigma(len(edges), 1e4 * (k + 1))
        tables = MG.site_tables(codes, attrs, edges, sigma, np.random.default_rng(k), acc)
        assert acc.mechanisms[0].count == len(edges)  # every table is in the site's ledger
        replies.append(tables)
        sigmas.append(sigma)
    codes = T.codes(attrs, transformer.transform(df, random_state=0))
    for e, (i, j) in enumerate(edges):
        pooled = T.contingency(codes[:, i], codes[:, j], attrs[i]["size"], attrs[j]["size"])
        summed = sum(r[e] for r in replies)
        assert np.abs(summed - pooled).max() < 6 * np.sqrt(sum(s**2 for s in sigmas))
    tree = MG.fit_generator(attrs, edges, replies)
    assert sorted(tree["order"]) == list(range(len(attrs)))


def test_a_site_column_links_each_site_to_its_case_mix(cohort):
    df, table = cohort
    tokens = new_tokens(2)
    fed = Federation(table, tokens, _plan(site_column="hospital"), min_sites=2)
    sites = {
        "a": Site(df[df["age"] >= 55], tokens[0], epsilon=3, seed=1, name="St Elder"),
        "b": Site(df[df["age"] < 55], tokens[1], epsilon=3, seed=2, name="Youth General"),
    }
    model = simulate(fed, sites)
    rows = model.sample(2000)
    assert set(rows["hospital"]) == {"St Elder", "Youth General"}
    by_site = rows.groupby("hospital")["age"].mean()
    assert by_site["St Elder"] > by_site["Youth General"] + 10


def test_malformed_instructions_are_refused_at_the_site(cohort):
    df, table = cohort
    tokens = new_tokens(2)
    fed = Federation(table, tokens, _plan(), min_sites=2)
    sites = {
        "a": Site(df.iloc[:600], tokens[0], epsilon=3, seed=0),
        "b": Site(df.iloc[600:], tokens[1], epsilon=3, seed=1),
    }
    for server_round in (1, 2, 3):
        out = fed.instructions(server_round, list(sites))
        fed.receive(server_round, {s: sites[s].handle(*m) for s, m in out.items()})
    out = fed.instructions(4, list(sites))
    bad = {**out["a"][0], "attributes": [{"column": "age", "size": 3}]}
    with pytest.raises(FederationError, match="malformed instruction"):
        sites["a"].handle(bad, [])
    assert "selection" not in sites["a"].report()["spent_by"]  # nothing measured
    sites["b"].handle(*out["b"])
    with pytest.raises(FederationError, match="malformed instruction"):
        sites["b"].handle({"phase": "measure", "edges": [[0, 99]]}, [])
    assert "measurement" not in sites["b"].report()["spent_by"]


def test_an_unknown_model_kind_is_refused(cohort):
    _, table = cohort
    plan = dataclasses.replace(_plan(), kind="ctgan")
    with pytest.raises(FederationError, match="must be one of tvae, dp_marginal"):
        Federation(table, new_tokens(1), plan)


def test_join_bins_keeps_the_range_and_the_total():
    edges, counts = MG._join_bins(np.linspace(0, 32, 33), np.arange(32.0), 16)
    assert len(counts) == 16 and edges[0] == 0 and edges[-1] == 32
    assert counts.sum() == np.arange(32.0).sum()


def test_the_plan_budget_split_is_what_each_site_spends(cohort):
    df, table = cohort
    spent = {}
    for split in ((0.8, 0.1, 0.1), (0.1, 0.1, 0.8)):
        tokens = new_tokens(2)
        fed = Federation(table, tokens, _plan(budget_split=split), min_sites=2)
        sites = {
            "a": Site(df.iloc[:600], tokens[0], epsilon=2, seed=1),
            "b": Site(df.iloc[600:], tokens[1], epsilon=2, seed=2),
        }
        simulate(fed, sites)
        spent[split] = sites["a"].report()
        assert 1.8 < spent[split]["epsilon_spent"] <= 2.0 * 1.001
    by = {s: r["spent_by"] for s, r in spent.items()}
    assert by[(0.8, 0.1, 0.1)]["statistics"] > by[(0.1, 0.1, 0.8)]["statistics"]
    assert by[(0.8, 0.1, 0.1)]["measurement"] < by[(0.1, 0.1, 0.8)]["measurement"]
    with pytest.raises(FederationError, match="'budget_split' of the plan must be 3 numbers"):
        Federation(table, new_tokens(1), _plan(budget_split=(0.5, 0.5)))


def test_a_site_measures_each_step_once_and_in_order(cohort):
    df, table = cohort
    tokens = new_tokens(1)
    fed = Federation(table, tokens, _plan(), min_sites=1)
    site = Site(df, tokens[0], epsilon=3, seed=0)
    out = fed.instructions(1, ["s"])
    fed.receive(1, {"s": site.handle(*out["s"])})
    with pytest.raises(FederationError, match="'histograms' step out of order"):
        site.handle({"phase": "histograms", "agreed": {}}, [])
    for server_round in (2, 3, 4, 5):
        out = fed.instructions(server_round, ["s"])
        fed.receive(server_round, {"s": site.handle(*out["s"])})
    spent = site.report()["epsilon_spent"]
    for payload in ({"phase": "ranges"}, {"phase": "measure", "edges": fed.edges_}):
        with pytest.raises(FederationError, match="step again"):
            site.handle(payload, [])
    assert site.report()["epsilon_spent"] == spent <= 3.0 * 1.001
