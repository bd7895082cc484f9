"""Secure aggregation with distributed noise for the marginal federation (``_secagg.py``): the
pairwise masks cancel in the sum, the sum carries one central mechanism's noise, a site that
drops after masking fails the round, one that drops before measuring is left out."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from multiprocessing.connection import Listener

import numpy as np
import pandas as pd
import pytest

from clinsynth.errors import FederationError
from clinsynth.federated import Federation, Plan, Site, new_tokens, simulate
from clinsynth.federated import _marginal as MG
from clinsynth.metadata import TableMetadata
from clinsynth.privacy import rho_for_epsilon
from clinsynth.simulate import simulate_cohort
from clinsynth.synthesizers import _marginal_tree as T

pytest.importorskip("cryptography.hazmat.primitives.asymmetric.x25519")
from clinsynth.federated import _secagg as SA  # noqa: E402

COLUMNS = ["age", "sex", "bmi", "smoking", "alcohol", "family_history", "condition"]
SELECT, MEASURE = 4, 5  # the marginal federation's rounds


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, TableMetadata]:
    df, md = simulate_cohort(1500, seed=4)
    spec = md.get_table("cohort").to_dict()["columns"]
    table = TableMetadata.from_dict({"columns": {c: spec[c] for c in COLUMNS}})
    return df[COLUMNS], table


def _federation(table, n_sites, **plan):
    tokens = new_tokens(n_sites)
    fed = Federation(table, tokens, Plan(min_rows=50, kind="dp_marginal", **plan), min_sites=1)
    return fed, tokens


def _parts(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    return [df.iloc[k::n] for k in range(n)]


def _run(fed, sites, rounds, ids=None):
    for server_round in rounds:
        out = fed.instructions(server_round, list(ids or sites))
        fed.receive(server_round, {s: sites[s].handle(*m) for s, m in out.items()})


def _noiseless(codes, attrs, edges) -> np.ndarray:
    """A site's 2-way tables of ``edges`` without noise, flat (what it masks, less noise)."""
    return np.concatenate(
        [
            T.contingency(codes[:, i], codes[:, j], attrs[i]["size"], attrs[j]["size"]).ravel()
            for i, j in edges
        ]
    )


# --------------------------------------------------------------------------- the masks
def test_pairwise_masks_cancel_in_the_sum_and_hide_each_vector():
    rng = np.random.default_rng(0)
    keys = [SA.SiteKey() for _ in range(3)]
    publics = [k.public for k in keys]
    values = [rng.normal(0, 100, 50) for _ in keys]
    masked = [k.mask(v, publics, "measure") for k, v in zip(keys, values, strict=True)]
    total = SA.unmask_sum(masked, 50)
    assert np.abs(total - sum(values)).max() < 3 * 2.0**-SA.FRACTION_BITS
    for v, m in zip(values, masked, strict=True):
        alone = m.view(np.int64) / 2.0**SA.FRACTION_BITS
        assert np.abs(alone - v).min() > 1e6  # a masked vector says nothing of its values
    # Without one site's vector the masks of its pairs remain: the sum is noise.
    assert np.abs(SA.unmask_sum(masked[:2], 50) - values[0] - values[1]).min() > 1e6
    # Other steps use other masks (a key per step).
    again = keys[0].mask(values[0], publics, "select")
    assert not np.array_equal(again, masked[0])
    with pytest.raises(FederationError, match="does not hold this site's key"):
        SA.SiteKey().mask(values[0], publics, "measure")
    with pytest.raises(FederationError, match="not finite"):
        SA.encode(np.array([np.nan]))


# --------------------------------------------------------------------------- the noise
def test_the_sum_is_the_plain_sum_of_noiseless_tables_plus_one_central_noise(cohort):
    """Three sites: what the server unmasks is the pooled 2-way tables plus N(0, σ²), σ the
    noise one site's budget needs, not the root-sum-square of three full noises."""
    df, table = cohort
    fed, tokens = _federation(table, 3)
    parts = _parts(df, 3)
    sites = {f"s{k}": Site(p, tokens[k], epsilon=1.0, seed=k) for k, p in enumerate(parts)}
    _run(fed, sites, range(1, SELECT + 1))
    out = fed.instructions(MEASURE, list(sites))
    assert [len(m[0]["secure"]["keys"]) for m in out.values()] == [3, 3, 3]
    replies = {s: sites[s].handle(*m) for s, m in out.items()}
    for payload, arrays in replies.values():  # masked: the server sees no table
        assert len(arrays) == 1 and arrays[0].dtype == np.uint64 and "scores" not in payload
    edges, attrs = fed.edges_, fed.attrs_
    size = sum(attrs[i]["size"] * attrs[j]["size"] for i, j in edges)
    total = SA.unmask_sum([r[1][0] for r in replies.values()], size)
    own = sum(_noiseless(s.codes, attrs, edges) for s in sites.values())
    assert own.sum() == pytest.approx(len(df) * len(edges))
    rho = rho_for_epsilon(1.0, 1e-6 * 0.9) * MG.SHARES[2]
    central = MG.tables_sigma(len(edges), rho)
    residual = total - own
    assert 0.8 * central < residual.std() < 1.2 * central  # not sqrt(3) times it
    fed.receive(MEASURE, replies)
    model = fed.result()
    report = model.get_privacy_report()
    assert report["secure_aggregation"] is True
    assert report["measurement_sigma"] == pytest.approx(central)
    for s in sites.values():
        mine = s.report()
        assert mine["secure_aggregation"] and "honest-but-curious" in mine["assumption"]
        assert 0.9 < mine["epsilon_spent"] <= 1.0 * 1.001  # the sum's noise, its own budget


def test_unequal_budgets_the_sum_carries_the_most_demanding_sites_noise(cohort):
    df, table = cohort
    fed, tokens = _federation(table, 3)
    parts = _parts(df, 3)
    budgets = (3.0, 1.0, 1.0)
    sites = {
        "a": Site(parts[0], tokens[0], epsilon=budgets[0], seed=0),
        "b": Site(parts[1], tokens[1], epsilon=budgets[1], seed=1),
        "c": Site(parts[2], tokens[2], epsilon=budgets[2], seed=2, local_noise=True),
    }
    model = simulate(fed, sites)
    d = len(fed.attrs_)
    need = {
        e: MG.tables_sigma(d - 1, rho_for_epsilon(e, 1e-6 * 0.9) * MG.SHARES[2]) for e in (1, 3)
    }
    # a and b add a third of the variance of b's noise; c adds its own full noise.
    share = need[1] / np.sqrt(3)
    expected = np.sqrt(2 * share**2 + need[1] ** 2)
    assert model.get_privacy_report()["measurement_sigma"] == pytest.approx(expected)
    a, b, c = (sites[s].report() for s in "abc")
    assert 0.9 < b["epsilon_spent"] <= 1.001  # b's budget sets the noise: b spends it all
    assert a["epsilon_spent"] < 2.9  # a is protected by more than its own budget needs
    assert c["assumption"].startswith("none") and 0.9 < c["epsilon_spent"] <= 1.001


def test_without_secure_aggregation_each_site_adds_its_full_noise_in_the_clear(cohort):
    df, table = cohort
    fed, tokens = _federation(table, 2, secure_aggregation=False)
    sites = {f"s{k}": Site(p, tokens[k], epsilon=1.0, seed=k) for k, p in enumerate(_parts(df, 2))}
    _run(fed, sites, range(1, MEASURE))
    out = fed.instructions(MEASURE, list(sites))
    assert all("secure" not in m[0] for m in out.values())
    fed.receive(MEASURE, {s: sites[s].handle(*m) for s, m in out.items()})
    report = fed.result().get_privacy_report()
    own = MG.tables_sigma(len(fed.edges_), rho_for_epsilon(1.0, 1e-6 * 0.9) * MG.SHARES[2])
    assert report["secure_aggregation"] is False
    assert report["measurement_sigma"] == pytest.approx(np.sqrt(2) * own)
    assert sites["s0"].report()["assumption"] is None


# --------------------------------------------------------------------------- dropping out
def test_a_site_that_drops_after_masking_fails_the_round_and_nothing_is_used(cohort):
    df, table = cohort
    fed, tokens = _federation(table, 3)
    sites = {f"s{k}": Site(p, tokens[k], epsilon=3, seed=k) for k, p in enumerate(_parts(df, 3))}
    _run(fed, sites, range(1, SELECT + 1))
    out = fed.instructions(MEASURE, list(sites))
    replies = {s: sites[s].handle(*m) for s, m in out.items()}
    del replies["s2"]  # masked, then gone before its answer reached the server
    with pytest.raises(FederationError, match=r"'measure' step failed: 1 of the 3 sites"):
        fed.receive(MEASURE, replies, failed=1)
    assert not hasattr(fed, "tree_")
    with pytest.raises(FederationError, match="before any training round completed"):
        fed.result()


@pytest.mark.parametrize("secure", [True, False])
def test_a_site_that_drops_between_select_and_measure_is_left_out(cohort, secure):
    """Round 4 selects with three sites; the third is gone before round 5: the tables are
    measured and summed without it (under secure aggregation it is not in the mask set), the
    1-way counts the tables are raked to are the remaining sites' own, and the bundle marks it
    dropped out."""
    df, table = cohort
    fed, tokens = _federation(table, 3, secure_aggregation=secure)
    parts = [df.iloc[:500], df.iloc[500:1000], df.iloc[1000:]]
    sites = {f"s{k}": Site(p, tokens[k], epsilon=3, seed=k) for k, p in enumerate(parts)}
    _run(fed, sites, range(1, SELECT + 1))
    out = fed.instructions(MEASURE, ["s0", "s1"])  # s2 no longer connected
    assert set(out) == {"s0", "s1"}
    if secure:
        assert all(len(m[0]["secure"]["keys"]) == 2 for m in out.values())
    fed.receive(MEASURE, {s: sites[s].handle(*m) for s, m in out.items()})
    model = fed.result()
    report = model.get_privacy_report()["federated"]["sites"]
    assert [s["dropped_out"] for s in sorted(report, key=lambda s: s["site"])] == [
        False,
        False,
        True,
    ]
    assert sites["s2"].report()["spent_by"].keys() == {"statistics", "selection"}
    # The 1-way distributions follow the measured sites (two thirds of the rows), not all.
    rows = model.sample(3000)
    assert abs(len(rows) - 3000) == 0
    assert list(rows.columns) == COLUMNS


def test_a_malformed_secure_instruction_is_refused_before_anything_is_spent(cohort):
    df, table = cohort
    fed, tokens = _federation(table, 2)
    sites = {f"s{k}": Site(p, tokens[k], epsilon=3, seed=k) for k, p in enumerate(_parts(df, 2))}
    _run(fed, sites, range(1, SELECT))
    payload, _ = fed.instructions(SELECT, list(sites))["s0"]
    bad = {**payload, "secure": {"keys": payload["secure"]["keys"], "budgets": [[3, 1e-6]]}}
    with pytest.raises(FederationError, match="malformed instruction"):
        sites["s0"].handle(bad, [])
    assert "selection" not in sites["s0"].report()["spent_by"]


# --------------------------------------------------------------------------- processes
def _site_process(address, runs):  # pragma: no cover - runs in a child process
    """A site process: one :class:`Site` per federation (``runs``: its data, token and seed
    in each), answering the server's messages over TCP on loopback."""
    from multiprocessing.connection import Client

    runs = iter(runs)
    with Client(address) as conn:
        while (message := conn.recv()) is not None:
            payload, arrays = message
            if payload.get("phase") == "join":
                data, token, seed = next(runs)
                site = Site(data, token, epsilon=1.0, seed=seed)
            reply = site.handle(payload, arrays)
            plain = None
            if payload.get("phase") == "measure":  # what the site measured, for the check
                plain = _noiseless(site.codes, site.attrs, [tuple(e) for e in payload["edges"]])
            conn.send((reply, plain))


def _serve(fed, conns, kill=None):
    """Drive ``fed`` with the site processes; ``kill`` (a process) is killed at the measure
    step after it has masked and answered, before its answer is read. Returns the measure
    step's replies and the sites' noiseless tables."""
    plain = {}
    for server_round in range(1, MEASURE + 1):
        out = fed.instructions(server_round, list(conns))
        for sid, message in out.items():
            conns[sid].send(message)
        if kill is not None and server_round == MEASURE:
            sid, proc = kill
            conns[sid].poll(120)  # it has masked and answered; the answer is lost
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            del conns[sid]
        replies = {}
        for sid in out:
            if sid in conns:
                replies[sid], plain[sid] = conns[sid].recv()
        if server_round == MEASURE:
            return replies, plain
        fed.receive(server_round, replies)
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_three_site_processes_on_loopback(cohort):
    """Three site processes connected to the server over TCP on 127.0.0.1. First federation:
    the unmasked sum is the sum of their noiseless tables up to one central noise. Second: a
    site killed after masking, before its answer is read, fails the round clearly."""
    df, table = cohort
    feds = [_federation(table, 3), _federation(table, 3)]
    parts = _parts(df, 3)
    runs = [
        [(parts[k], tokens[k], 10 * r + k) for r, (_, tokens) in enumerate(feds)] for k in range(3)
    ]
    context = mp.get_context("spawn")
    procs = []
    with Listener(("127.0.0.1", 0)) as listener:
        try:
            conns = {}
            for k in range(3):
                procs.append(
                    context.Process(target=_site_process, args=(listener.address, runs[k]))
                )
                procs[-1].start()
                conns[f"s{k}"] = listener.accept()
            fed = feds[0][0]
            replies, plain = _serve(fed, conns)
            size = len(next(iter(plain.values())))
            summed = SA.unmask_sum([r[1][0] for r in replies.values()], size)
            fed.receive(MEASURE, replies)
            rho = rho_for_epsilon(1.0, 1e-6 * 0.9) * MG.SHARES[2]
            central = MG.tables_sigma(len(fed.edges_), rho)
            residual = summed - sum(plain.values())
            assert 0.75 * central < residual.std() < 1.25 * central
            assert fed.result().get_privacy_report()["secure_aggregation"] is True
            fed = feds[1][0]
            replies, _ = _serve(fed, conns, kill=("s2", procs[2]))
            assert set(replies) == {"s0", "s1"}
            with pytest.raises(FederationError, match="'measure' step failed: 1 of the 3"):
                fed.receive(MEASURE, replies, failed=1)
            with pytest.raises(FederationError, match="before any training round"):
                fed.result()
            for c in conns.values():
                c.send(None)
        finally:
            for p in procs:  # our own processes only, by their ids
                p.join(timeout=30)
                if p.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGKILL)
                    p.join()
