"""Federated synthesis against its alternatives, on support2 split into unequal, non-IID sites.

Usage::

    .venv/bin/python benchmarks/bench_federated.py [--sites 2,4] [--epsilon 3] [--rounds 20]
        [--local-steps 8] [--seed 0] [--model dp_marginal|tvae] [--repeats 1]

support2 (14 columns: age, sex, the in-hospital death ``hospdead`` and 11 more) is split 80/20
into a training population and a **holdout of the whole population**; the training rows are
dealt to 2 or 4 hospitals of unequal size and case mix (2 sites: one takes 80% of the patients
aged 65+ and 30% of the others; 4 sites of weights 0.4/0.3/0.2/0.1, the first preferring patients
aged 70+, the second women, the third patients under 50, the fourth nobody). Each approach
spends epsilon per site (delta 1e-6) and no public bounds; with ``--model tvae`` every approach
is the same TVAE (embedding 64, layers 128x128, batch 256, learning rate 2e-3, clipping 1.0):

(a) **local**: each site's own DP TVAE on its rows (mean over the sites);
(b) **pooled**: the local models' samples put together (each as many rows as its site);
(c) **federated**: :mod:`clinsynth.federated` (DP statistics merged, FedAvg of DP-SGD updates,
    ``rounds x local_steps`` steps at each site), run in one process by
    :func:`clinsynth.federated.simulate`: the same code path as ``clinsynth federate`` without
    the network;
(d) **central**: one DP TVAE on all training rows (the ceiling a federation approaches).

With ``--model dp_marginal`` (the default) every approach is the DP marginal model instead
(noisy marginals on a maximum spanning tree; its default budget split and 16 bins): (a) and (d) are
``DPMarginalSynthesizer`` on a site's rows or on all of them, (c) is the marginal-based
federation (``Plan(kind="dp_marginal")``: each site's noisy dependence scores and noisy tree
marginals summed by the server), run twice: with secure aggregation (its default: the server
sees only the masked sums, each site adds its share of one central mechanism's noise) and with
each site's own full noise in the clear (``secure_aggregation=False``). ``--rounds`` and
``--local-steps`` do not apply.
``--repeats R`` runs every approach R times with other noise and model seeds (the split stays
the one of ``--seed``) and reports the mean and the standard deviation.

Local models train as many DP-SGD steps as a site trains in the federation; the central model
15 epochs. Scores, against the holdout: fidelity (``evaluate_quality``: column shapes and pair
trends, synthetic vs holdout) and TSTR (``evaluate_utility``: models trained on the synthetic
rows, tested on the holdout, predicting ``hospdead``; the mean over its models).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import markdown, shared_path  # noqa: E402

from clinsynth import DPMarginalSynthesizer, Metadata, TVAESynthesizer  # noqa: E402
from clinsynth.evaluation import evaluate_quality, evaluate_utility  # noqa: E402
from clinsynth.federated import Federation, Plan, Site, new_tokens, simulate  # noqa: E402

COLUMNS = [
    "age",
    "sex",
    "hospdead",
    "dzgroup",
    "num.co",
    "income",
    "race",
    "meanbp",
    "hrt",
    "resp",
    "temp",
    "crea",
    "diabetes",
    "ca",
]
TARGET = "hospdead"
MODEL = {
    "embedding_dim": 64,
    "compress_dims": [128, 128],
    "decompress_dims": [128, 128],
    "batch_size": 256,
    "learning_rate": 2e-3,
    "max_grad_norm": 1.0,
}
DELTA = 1e-6


def load() -> tuple[pd.DataFrame, Metadata]:
    df = pd.read_csv(shared_path("support2", "support2.csv"))[COLUMNS]
    md = Metadata.detect_from_dataframe(df)
    for column in ("hospdead", "diabetes", "num.co"):
        md.update_column(column, sdtype="categorical")
    for column in ("age", "meanbp", "hrt", "resp", "temp", "crea"):
        md.update_column(column, sdtype="numerical")
    return df, md


def deal(train: pd.DataFrame, sites: int, seed: int) -> list[pd.DataFrame]:
    """Unequal, non-IID sites (see the module docstring)."""
    rng = np.random.default_rng(seed)
    age, female = train["age"].to_numpy(), (train["sex"] == "female").to_numpy()
    if sites == 2:
        to_first = rng.random(len(train)) < np.where(age >= 65, 0.8, 0.3)
        return [train[to_first], train[~to_first]]
    weights = np.stack(
        [
            0.4 * np.where(age >= 70, 3.0, 1.0),
            0.3 * np.where(female, 3.0, 1.0),
            0.2 * np.where(age < 50, 3.0, 1.0),
            0.1 * np.ones(len(train)),
        ],
        axis=1,
    )
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    which = (rng.random((len(train), 1)) > cum).sum(axis=1)
    return [train[which == k] for k in range(sites)]


def tvae(md: Metadata, epsilon: float, epochs: int, seed: int) -> TVAESynthesizer:
    return TVAESynthesizer(
        md,
        epochs=epochs,
        epsilon=epsilon,
        delta=DELTA,
        random_state=seed,
        **{k: tuple(v) if isinstance(v, list) else v for k, v in MODEL.items()},
    )


def marginal(md: Metadata, epsilon: float, seed: int) -> DPMarginalSynthesizer:
    return DPMarginalSynthesizer(md, epsilon=epsilon, delta=DELTA, random_state=seed)


def local_model(args, md: Metadata, rows: int, seed: int):
    """A site's own model (as many DP-SGD steps as it trains in the federation)."""
    if args.model == "dp_marginal":
        return marginal(md, args.epsilon, seed)
    per_epoch = math.ceil(rows / MODEL["batch_size"])
    return tvae(
        md, args.epsilon, max(1, math.ceil(args.rounds * args.local_steps / per_epoch)), seed
    )


def scores(train, holdout, md, synthetic) -> dict[str, float]:
    quality = evaluate_quality(holdout, synthetic, md, detection=False).get_score()
    utility = evaluate_utility(train, synthetic, md, target=TARGET, holdout=holdout)
    return {"fidelity": quality, "tstr": float(utility.get_details("ML Efficacy")["tstr"].mean())}


def run(n_sites: int, args, md, train, holdout, central, noise: int) -> list[dict]:
    parts = deal(train, n_sites, args.seed)
    rows: list[dict] = []
    # (a) and (b): each site alone, then the pool of their samples.
    samples, local_scores, local_seconds = [], [], 0.0
    for k, part in enumerate(parts):
        started = time.perf_counter()
        model = local_model(args, md, len(part), noise + k)
        synthetic = model.fit(part).sample(len(part))
        local_seconds += time.perf_counter() - started
        samples.append(synthetic)
        local_scores.append(scores(train, holdout, md, synthetic))
        spent = model.get_privacy_budget()["epsilon_spent"]
        print(f"  site {k + 1}: {len(part)} rows, local epsilon spent {spent:.3f}", flush=True)
    rows.append(
        {
            "sites": n_sites,
            "approach": "(a) local, mean of sites",
            **{m: float(np.mean([s[m] for s in local_scores])) for m in ("fidelity", "tstr")},
            "epsilon per site": args.epsilon,
            "seconds": local_seconds,
        }
    )
    pooled = pd.concat(samples, ignore_index=True)
    rows.append(
        {
            "sites": n_sites,
            "approach": "(b) pooled local copies",
            **scores(train, holdout, md, pooled),
            "epsilon per site": args.epsilon,
            "seconds": local_seconds,
        }
    )
    # (c) the federation (in one process): the marginal model with secure aggregation (its
    # default) and with each site's full noise in the clear.
    for secure in (True, False) if args.model == "dp_marginal" else (False,):
        rows.append(federate(args, md, parts, train, holdout, noise, secure))
    rows.append({"sites": n_sites, **central})
    return rows


def federate(args, md, parts, train, holdout, noise: int, secure: bool) -> dict:
    """(c): the federation of ``parts``, run in one process."""
    started = time.perf_counter()
    n_sites = len(parts)
    tokens = new_tokens(n_sites)
    plan = Plan(
        rounds=args.rounds,
        local_steps=args.local_steps,
        seed=noise,
        model=MODEL,
        kind=args.model,
        budget_split=tuple(float(x) for x in args.budget_split.split(",")),
        secure_aggregation=secure,
    )
    federation = Federation(md, tokens, plan, min_sites=n_sites)
    sites = {
        f"site{k + 1}": Site(
            part, tokens[k], epsilon=args.epsilon, delta=DELTA, seed=noise + 100 + k
        )
        for k, part in enumerate(parts)
    }
    model = simulate(federation, sites)
    synthetic = model.sample(len(train))
    seconds = time.perf_counter() - started
    spent = [sites[s].report()["epsilon_spent"] for s in sites]
    how = "secure aggregation" if secure else "per-site noise"
    print(
        f"  federated ({how}): sites {[len(p) for p in parts]}, epsilon spent at each "
        f"{[round(s, 3) for s in spent]}",
        flush=True,
    )
    label = f"(c) federated, {how}" if args.model == "dp_marginal" else "(c) federated"
    return {
        "sites": n_sites,
        "approach": label,
        **scores(train, holdout, md, synthetic),
        "epsilon per site": args.epsilon,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="2,4")
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--local-steps", type=int, default=8)
    parser.add_argument("--central-epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=("tvae", "dp_marginal"), default="dp_marginal")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--budget-split", default="0.5,0.1,0.4", help="dp_marginal federation: its Plan's split"
    )
    args = parser.parse_args()
    df, md = load()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(df))
    cut = int(0.8 * len(df))
    train, holdout = df.iloc[order[:cut]], df.iloc[order[cut:]]
    print(f"support2: {len(train)} training rows, {len(holdout)} holdout rows", flush=True)
    rows = []
    for repeat in range(args.repeats):
        noise = args.seed + 1000 * repeat
        started = time.perf_counter()
        if args.model == "dp_marginal":
            model = marginal(md, args.epsilon, noise).fit(train)
        else:
            model = tvae(md, args.epsilon, args.central_epochs, noise).fit(train)
        synthetic = model.sample(len(train))
        seconds = time.perf_counter() - started
        central = {
            "approach": "(d) central DP (ceiling)",
            **scores(train, holdout, md, synthetic),
            "epsilon per site": args.epsilon,
            "seconds": seconds,
        }
        print(f"  central: epsilon spent {model.get_privacy_budget()['epsilon_spent']:.3f}")
        for n_sites in (int(s) for s in args.sites.split(",")):
            print(f"{n_sites} sites (repeat {repeat + 1}):", flush=True)
            rows += run(n_sites, args, md, train, holdout, central, noise)
    print(markdown(summarize(rows)))


def summarize(rows: list[dict]) -> list[dict]:
    """Mean (and standard deviation, over repeats) of every approach."""
    table = pd.DataFrame(rows)
    out = []
    for (sites, approach), group in table.groupby(["sites", "approach"], sort=True):
        row = {"sites": int(sites), "approach": approach}
        for metric in ("fidelity", "tstr"):
            row[metric] = float(group[metric].mean())
            if len(group) > 1:
                row[f"{metric} sd"] = float(group[metric].std(ddof=1))
        row["epsilon per site"] = float(group["epsilon per site"].iloc[0])
        row["seconds"] = float(group["seconds"].mean())
        out.append(row)
    return out


if __name__ == "__main__":
    main()
