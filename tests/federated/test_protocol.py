"""The federated protocol without a network: joining checks, the statistics merge, FedAvg, and
the whole exchange in one process (:func:`clinsynth.federated.simulate`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from clinsynth import load
from clinsynth.errors import FederationError, MetadataError, MissingDependencyError
from clinsynth.federated import Federation, Plan, Site, new_tokens, read_tokens, simulate
from clinsynth.federated import _model as M
from clinsynth.federated import _schema as C
from clinsynth.federated import _statistics as ST
from clinsynth.metadata import TableMetadata
from clinsynth.simulate import simulate_cohort

COLUMNS = ["age", "sex", "bmi", "smoking", "alcohol", "family_history", "condition"]
TINY = {"embedding_dim": 8, "compress_dims": [16], "decompress_dims": [16], "batch_size": 64}


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, TableMetadata]:
    df, md = simulate_cohort(600, seed=3)
    spec = md.get_table("cohort").to_dict()["columns"]
    table = TableMetadata.from_dict({"columns": {c: spec[c] for c in COLUMNS}})
    return df[COLUMNS], table


def _plan(rounds: int = 2, public: dict | None = None) -> Plan:
    return Plan(
        rounds=rounds, local_steps=2, min_rows=50, model=TINY, public=public or {}, kind="tvae"
    )


# --------------------------------------------------------------------------- joining
def test_schema_problems_name_missing_extra_and_type(cohort):
    _, table = cohort
    summary = {c: "float64" for c in COLUMNS if c != "bmi"}
    summary.update({"age": "object", "ward": "object"})
    problems = C.schema_problems(table, summary)
    text = " | ".join(problems)
    assert "'ward' is not in the federation's metadata" in text
    assert "'bmi' (numerical) of the federation's metadata is missing" in text
    assert "'age' is numerical in the federation's metadata but holds object" in text
    assert len(problems) == 3


def test_site_with_too_few_rows_is_refused_before_anything_is_measured(cohort):
    df, table = cohort
    problems, _ = C.site_problems(table, df.head(10), min_rows=50)
    assert any("10 rows, fewer than the federation's minimum of 50" in p for p in problems)


def test_tokens_are_checked_in_constant_time_and_files_are_validated(tmp_path):
    tokens = new_tokens(3)
    assert len(set(tokens)) == 3 and all(len(t) >= 40 for t in tokens)
    assert C.token_index(tokens[1], tokens) == 1
    assert C.token_index("x" * 43, tokens) is None
    assert C.token_index(None, tokens) is None
    path = tmp_path / "tokens.txt"
    path.write_text("# comment\n" + "\n".join(tokens) + "\n\n")
    assert read_tokens(path) == tokens
    path.write_text("short\n")
    with pytest.raises(FederationError, match="at least 16 characters"):
        read_tokens(path)
    with pytest.raises(FederationError, match="Cannot read the token file"):
        read_tokens(tmp_path / "absent.txt")


def test_public_bounds_must_fit_the_metadata(cohort):
    _, table = cohort
    bad = {"age": [90, 18], "sex": [], "ward": ["a"]}
    with pytest.raises(MetadataError) as info:
        Federation(table, new_tokens(1), _plan(public=bad))
    assert len(info.value.problems) == 3


def test_metadata_with_dates_is_refused_when_the_server_starts():
    table = TableMetadata.from_dict(
        {"columns": {"admitted": {"sdtype": "datetime"}, "age": {"sdtype": "numerical"}}}
    )
    with pytest.raises(MetadataError, match="Convert dates to numbers"):
        Federation(table, new_tokens(1), _plan())


def test_refused_sites_contribute_nothing_and_learn_why(cohort):
    df, table = cohort
    tokens = new_tokens(3)
    fed = Federation(table, tokens, _plan(), min_sites=1)
    sites = {
        "good": Site(df.iloc[:300], tokens[0], epsilon=3, seed=1),
        "intruder": Site(df.iloc[300:450], "not-a-token-of-this-server", epsilon=3, seed=2),
        "wrong-columns": Site(df.iloc[450:].drop(columns="bmi"), tokens[2], epsilon=3, seed=3),
    }
    out = fed.instructions(1, list(sites))
    fed.receive(1, {s: sites[s].handle(*m) for s, m in out.items()})
    assert set(fed.accepted) == {"good"}
    assert "token is not one this server issued" in fed.refused["intruder"]
    assert (
        "'bmi' (numerical) of the federation's metadata is missing" in fed.refused["wrong-columns"]
    )
    # The refused sites are told why (once) and get nothing else; their ledgers stay empty.
    out = fed.instructions(2, list(sites))
    assert out["intruder"][0]["phase"] == "refused" and out["good"][0]["phase"] == "ranges"
    for sid in ("intruder", "wrong-columns"):
        sites[sid].handle(*out[sid])
        assert sites[sid].accountant.mechanisms == []
        with pytest.raises(FederationError, match="refused by the federation"):
            raise sites[sid].refused
    fed.mark_notified(list(out))
    assert set(fed.instructions(2, list(sites))) == {"good"}  # told once, then nothing


def test_too_few_accepted_sites_fail_clearly(cohort):
    df, table = cohort
    tokens = new_tokens(2)
    fed = Federation(table, tokens, _plan(), min_sites=2)
    site = Site(df, "wrong-token-wrong-token", epsilon=3, seed=0)
    with pytest.raises(FederationError, match="Only 0 of the 2 sites needed were accepted"):
        fed.receive(1, {"a": site.handle(*fed.instructions(1, ["a"])["a"])})


# --------------------------------------------------------------------------- statistics
def test_occupied_bins_and_unit_merge():
    assert ST.occupied(np.array([0.0, 1, 50, 60, 4, 0]), 1.0, 3.0) == (2, 4)
    parts = [{"units": [0, 0, 40, 5, 0, 0, 0, 0], "unit_sigma": 0.1}] * 2
    assert ST._merge_units(parts) == 3  # 0.001: 10 of 90 values need it
    noisy = [{"units": [0, 0, 40, 5, 0, 0, 0, 0], "unit_sigma": 50.0}]
    assert ST._merge_units(noisy) == len(ST.UNITS)  # too noisy to tell: no rounding


def test_merged_levels_sum_sites_and_drop_rare_ones():
    table = TableMetadata.from_dict({"columns": {"dx": {"sdtype": "categorical"}}})
    a = {"dx": {"levels": ["copd", "chf"], "counts": [30.0, 3.0], "missing": 0.0, "other": 0.0}}
    b = {"dx": {"levels": ["chf", "kuru"], "counts": [4.0, 2.5], "missing": 0.0, "other": 0.0}}
    for r in (a, b):
        r["dx"]["sigma"] = 0.5
    agreed = ST.merge_ranges(table, [a, b], rare_threshold=5)["dx"]
    assert agreed["levels"] == ["copd", "chf"]  # chf: 3 + 4 across the sites, kuru: 2.5
    assert agreed["counts"] == [30.0, 7.0]
    assert agreed["other"] == 0.0  # 2.5 is under the threshold: no "Other" level either


def test_transformer_from_merged_statistics_encodes_every_site(cohort):
    df, table = cohort
    acc = ST.PrivacyAccountant()
    parts = [df.iloc[:300], df.iloc[300:]]
    budgets = [ST.column_budgets(table, 1.0, 1e-7, acc, seed) for seed in (1, 2)]
    ranges = [ST.site_ranges(table, p, b) for p, b in zip(parts, budgets, strict=True)]
    agreed = ST.merge_ranges(table, ranges)
    hists = [ST.site_histograms(table, p, b, agreed) for p, b in zip(parts, budgets, strict=True)]
    merged = ST.merge_histograms(table, agreed, hists)
    dtypes = {c: str(df[c].dtype) for c in df.columns}
    transformer, rows = ST.fit_transformer(table, merged, dtypes)
    assert 400 < len(rows) < 800  # the noisy total of 600 rows
    assert set(transformer.get_transformer("sex").levels_) >= {"female", "male"}
    age = transformer.get_transformer("age")
    assert age.is_integer_ and 0 <= age.min_ <= df["age"].min() + 10 <= age.max_ + 10
    encoded = transformer.transform(df.iloc[:50])  # real rows encode, none refused
    assert encoded.shape == (50, transformer.output_dim) and np.isfinite(encoded).all()
    assert acc.get_epsilon(1e-6) > 0  # every release is in the ledger


# --------------------------------------------------------------------------- FedAvg
def test_fedavg_weights_by_size_and_skips_stopped_sites():
    a = [np.zeros((2, 2), np.float32), np.ones(3, np.float32)]
    b = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    avg = M.fedavg([(a, 100.0), (b, 300.0), (b, 0.0)])
    np.testing.assert_allclose(avg[0], 0.75)
    np.testing.assert_allclose(avg[1], 0.25)
    assert avg[0].dtype == np.float32
    with pytest.raises(FederationError, match="No site contributed"):
        M.fedavg([(a, 0.0)])


# --------------------------------------------------------------------------- whole protocol
def test_simulated_federation_gives_a_normal_bundle(cohort, tmp_path):
    df, table = cohort
    tokens = new_tokens(2)
    public = {"age": [18, 95], "sex": ["female", "male"]}
    fed = Federation(table, tokens, _plan(rounds=2, public=public), min_sites=2)
    sites = {
        "old": Site(df[df["age"] >= 55], tokens[0], epsilon=3, seed=1),
        "young": Site(df[df["age"] < 55], tokens[1], epsilon=2, seed=2),
    }
    model = simulate(fed, sites)
    path = model.save(tmp_path / "fed.zip")
    again = load(path)
    rows = again.sample(200)
    assert list(rows.columns) == COLUMNS and len(rows) == 200
    assert set(rows["sex"].dropna()) <= {"female", "male"}  # the public list, no "Other"
    age = again._transformer_.get_transformer("age")
    assert 18 <= age.min_ < 30 and 85 < age.max_ <= 95  # within the public bounds, kept whole
    assert rows["age"].between(18, 95).all()
    report = again.get_privacy_report()
    spent = {s["site"]: s["epsilon_spent"] for s in report["federated"]["sites"]}
    assert spent[1] <= 3.0 * 1.001 and spent[2] <= 2.0 * 1.001
    for sid, budget in (("old", 3.0), ("young", 2.0)):
        mine = sites[sid].report()
        assert mine["rounds_trained"] == 2
        assert budget * 0.9 < mine["epsilon_spent"] <= budget * 1.001
        assert set(mine["spent_by"]) == {"statistics", "training"}


def test_a_site_column_says_which_site_a_synthetic_row_resembles(cohort):
    df, table = cohort
    tokens = new_tokens(3)
    plan = dataclasses.replace(_plan(rounds=1), site_column="hospital")
    fed = Federation(table, tokens, plan, min_sites=2)
    assert "hospital" not in table.columns  # the caller's metadata is not changed
    old, young = df[df["age"] >= 55], df[df["age"] < 55]
    sites = {
        "a": Site(old, tokens[0], epsilon=3, seed=1, name="St Elder"),
        "b": Site(young, tokens[1], epsilon=3, seed=2, name="Youth General"),
        "c": Site(young, tokens[2], epsilon=3, seed=3),  # no name: refused
    }
    model = simulate(fed, sites)
    assert "--site-name" in fed.refused["c"]
    rows = model.sample(300)
    assert set(rows["hospital"]) == {"St Elder", "Youth General"}
    by_site = rows.groupby("hospital")["age"].mean()
    assert by_site["St Elder"] > by_site["Youth General"]  # each site's case mix, learned
    one = model.sample(50, conditions={"hospital": "St Elder"})
    assert (one["hospital"] == "St Elder").all()


def test_a_site_that_drops_out_is_left_out_and_the_round_completes(cohort):
    df, table = cohort
    tokens = new_tokens(2)
    fed = Federation(table, tokens, _plan(rounds=2), min_sites=2)
    sites = {
        "a": Site(df.iloc[:300], tokens[0], epsilon=3, seed=1),
        "b": Site(df.iloc[300:], tokens[1], epsilon=3, seed=2),
    }
    for server_round in range(1, fed.total_rounds + 1):
        out = fed.instructions(server_round, list(sites))
        replies = {s: sites[s].handle(*m) for s, m in out.items()}
        if server_round == fed.total_rounds:  # b's connection drops in the last round
            replies.pop("b")
        before = None if fed.weights_ is None else [w.copy() for w in fed.weights_]
        fed.receive(server_round, replies, failed=int(server_round == fed.total_rounds))
    assert fed.accepted["b"]["active"] is False and fed.rounds_done_ == 2
    np.testing.assert_allclose(fed.weights_[0], replies["a"][1][0])  # a's weights alone
    assert not np.allclose(before[0], fed.weights_[0])
    sites_info = fed.result().get_privacy_report()["federated"]["sites"]
    assert [s["dropped_out"] for s in sites_info] == [False, True]


def test_a_site_whose_budget_is_spent_stops(cohort):
    df, table = cohort
    site = Site(df, new_tokens(1)[0], epsilon=3, seed=0)
    fed = Federation(table, [site.token], _plan(rounds=1), min_sites=1)
    simulate(fed, {"s": site})
    payload = {"phase": "train", "round": 2}
    reply, arrays = site.handle(payload, fed.weights_)
    assert reply["stopped"] is True and arrays == []
    assert reply["epsilon_spent"] <= 3.0 * 1.001


def test_the_flower_layer_names_the_extra_when_flower_is_missing(monkeypatch):
    import builtins

    from clinsynth.federated import _flower

    real = builtins.__import__

    def no_flower(name, *args, **kwargs):
        if name == "flwr" or name.startswith("flwr."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flower)
    monkeypatch.delitem(__import__("sys").modules, "flwr", raising=False)
    with pytest.raises(MissingDependencyError, match=r"pip install clinsynth\[federated\]"):
        _flower._flwr()
