"""The privacy-utility curve and an empirical membership-inference audit.

Usage::

    .venv/bin/python benchmarks/bench_privacy.py [--datasets rhc,population]
        [--models dp_marginal,tvae,ctgan] [--epsilons 0.5,1,3,10,inf] [--audit-runs 40]
        [--audit-models dp_marginal,tvae] [--epochs 20] [--out benchmarks/results/privacy.csv]
    .venv/bin/python benchmarks/bench_privacy.py --risks [--tables gbsg2,rhc,...]
        [--n-attacks 500]

**Curve.** For each dataset (RHC with the fixed 70/30 split, seed 0; the population simulator,
3000 + 1300 patients) and each model and budget ε (``inf``: no differential privacy; for the DP
marginal model, which always adds noise, ``inf`` means ε = 1e9, i.e. noise-free marginals), fit on
the training part, sample as many rows, and report from :mod:`clinsynth.evaluation`: the fidelity
score (``evaluate_quality``, SDMetrics-style shapes + pair trends), TSTR (``evaluate_utility``: the
mean train-on-synthetic test-on-real score over its models) and, from ``evaluate_privacy``, the DCR
share (share of synthetic rows closer to a training row than to a holdout row; 0.5 is ideal) and
the membership-inference AUC (0.5 is ideal). The non-private Gaussian copula is a reference row.

*Public knowledge* (stated, not measured): numeric bounds and category lists are read from the
whole dataset, as a hospital would take them from its data dictionary. Without them the DP models
estimate ranges and discover categories with part of the budget.

**Audit.** A canary patient with an extreme combination of values is planted in a small
training table (500 rows), or left out; ``--audit-runs`` fits each way with different seeds; the
attack scores each fit by how close its nearest synthetic row comes to the canary. For
(ε, δ)-DP every test has ``TPR <= e^ε FPR + δ`` and ``TPR <= 1 - e^-ε (1 - δ - FPR)``, so its
AUC is at most the area under ``min(1, e^ε x + δ, 1 - e^-ε (1 - δ - x))``; the table prints the
attack AUC, that bound, and the lower bound on ε that the runs certify (Clopper-Pearson 95%;
:mod:`clinsynth.privacy` ``canary_audit``'s bounds).

**Risks** (``--risks``). On every shared single table (``_privacy_data.TABLES``, 70/30 split, seed
0), the default non-DP model (Gaussian copula) is fitted on the training part and sampled as
many rows; ``evaluate_privacy`` gives the singling-out, linkability and inference risks (secret:
the table's outcome) with their 95% intervals, the DCR share with its standard error and both
membership AUCs. Then the DCR share is checked on each table (50% train, 20% holdout, 30% unseen):
a verbatim copy of the training rows should read 1.0, the unseen real rows 0.5 within 2 SE.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_rhc, split  # noqa: E402
from _privacy_data import TABLES, load_table  # noqa: E402

from clinsynth import GaussianCopulaSynthesizer, Metadata, list_synthesizers  # noqa: E402
from clinsynth.evaluation import (  # noqa: E402
    evaluate_privacy,
    evaluate_quality,
    evaluate_utility,
)
from clinsynth.privacy import auc_upper_bound, epsilon_lower_bound  # noqa: E402

NO_NOISE = 1e9
#: Network sizes of the deep models here: DP-SGD computes one gradient per row, so the default
#: widths (128-256) take minutes per epoch on a CPU; the same sizes are used with and without DP.
DEEP_PARAMS = {
    "tvae": {"embedding_dim": 64, "compress_dims": (64, 64), "decompress_dims": (64, 64)},
    "ctgan": {
        "embedding_dim": 64,
        "generator_dim": (64, 64),
        "discriminator_dim": (64, 64),
        "batch_size": 500,
    },
    "cwgan": {"embedding_dim": 64, "generator_dim": (64, 64), "discriminator_dim": (64, 64)},
    "hvaegan": {
        "embedding_dim": 32,
        "compress_dims": (64,),
        "decompress_dims": (64, 64),
        "discriminator_dim": (64,),
    },
}


# --------------------------------------------------------------------------- data
def rhc() -> tuple[pd.DataFrame, pd.DataFrame, Metadata, str]:
    df = load_rhc()
    md = Metadata.detect_from_dataframe(df)
    md.set_primary_key("pid")
    train, holdout = split(df)
    return train, holdout, md, "event"


def population() -> tuple[pd.DataFrame, pd.DataFrame, Metadata, str]:
    from clinsynth.simulate import simulate_population

    df, md = simulate_population(4300, seed=0)
    train, holdout = split(df)
    return train, holdout, md, "type2_diabetes"


DATASETS = {"rhc": rhc, "population": population}


def public_knowledge(df: pd.DataFrame, md: Metadata) -> dict:
    """Data-dictionary bounds: numeric ranges widened to round numbers, category lists."""
    out: dict = {}
    for col, spec in md.get_table().columns.items():
        kind = spec["sdtype"]
        values = df[col].dropna()
        if kind == "numerical" and len(values):
            low, high = float(values.min()), float(values.max())
            step = 10 ** math.floor(math.log10(max(high - low, 1e-9)))
            out[col] = (math.floor(low / step) * step, math.ceil(high / step) * step)
        elif kind in ("categorical", "boolean") and len(values):
            out[col] = sorted(values.unique().tolist(), key=str)
    return out


# --------------------------------------------------------------------------- models
def make_model(name: str, md: Metadata, epsilon: float, public: dict, epochs: int, seed: int):
    klass = list_synthesizers()[name]
    params: dict = {"random_state": seed}
    if name == "dp_marginal":
        params |= {"epsilon": NO_NOISE if math.isinf(epsilon) else epsilon, "public_bounds": public}
    else:
        if not math.isinf(epsilon):
            params |= {"epsilon": epsilon, "public_bounds": public}
        params |= {"epochs": epochs, **DEEP_PARAMS.get(name, {})}
    return klass(md, **params)


def score_row(train, holdout, md, target, syn) -> dict:
    quality = evaluate_quality(train, syn, md, detection=False).get_score()
    utility = evaluate_utility(train, syn, md, target=target, holdout=holdout)
    efficacy = utility.get_details("ML Efficacy")
    privacy = evaluate_privacy(train, syn, md, holdout=holdout, n_attacks=200).metrics
    return {
        "fidelity": quality,
        "tstr": float(efficacy["tstr"].mean()),
        "trtr": float(efficacy["trtr"].mean()),
        "dcr_share": privacy["dcr_share"],
        "mia_auc": privacy["mia_auc"],
    }


def curve(datasets, models, epsilons, epochs) -> pd.DataFrame:
    rows = []
    for ds in datasets:
        train, holdout, md, target = DATASETS[ds]()
        public = public_knowledge(pd.concat([train, holdout]), md)
        runs = [("gaussian_copula", math.inf)] + [(m, e) for m in models for e in epsilons]
        for name, eps in runs:
            start = time.perf_counter()
            if name == "gaussian_copula":
                model = GaussianCopulaSynthesizer(md, random_state=0)
            else:
                model = make_model(name, md, eps, public, epochs, seed=0)
            model.fit(train)
            syn = model.sample(len(train))
            fit_s = time.perf_counter() - start
            report = model.get_privacy_report()
            row = {
                "dataset": ds,
                "model": name,
                "epsilon": "no DP" if math.isinf(eps) else eps,
                "epsilon_spent": report.get("epsilon_spent"),
                **score_row(train, holdout, md, target, syn),
                "seconds": fit_s,
            }
            rows.append(row)
            print(_fmt(pd.DataFrame([row])), flush=True)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- audit
def audit(model_name: str, epsilons, runs: int, epochs: int) -> pd.DataFrame:
    df, md, canary = _audit_data()
    public = {
        "age": (0, 120),
        "sbp": (40.0, 260.0),
        "creatinine": (0.0, 16.0),
        "sex": ["F", "M"],
        "ward": ["icu", "med", "surg"],
    }
    rows = []
    for eps in epsilons:
        scores = {True: [], False: []}
        for planted in (True, False):
            for seed in range(runs):
                data = pd.concat(
                    [canary, df.iloc[seed : seed + 499]]
                    if planted
                    else [df.iloc[seed : seed + 500]],
                    ignore_index=True,
                )
                model = make_model(model_name, md, eps, public, epochs, seed)
                syn = model.fit(data).sample(2000)
                scores[planted].append(-_distance_to(canary, syn, public))
        s_in, s_out = np.array(scores[True]), np.array(scores[False])
        auc = float(
            (s_in[:, None] > s_out[None, :]).mean() + 0.5 * (s_in[:, None] == s_out[None, :]).mean()
        )
        delta = 1 / (10 * 500)
        rows.append(
            {
                "model": model_name,
                "epsilon": "no DP" if math.isinf(eps) else eps,
                "runs_each": runs,
                "attack_auc": auc,
                "auc_bound": auc_upper_bound(eps, delta),
                "epsilon_certified_95": epsilon_lower_bound(s_in, s_out, delta),
            }
        )
        print(_fmt(pd.DataFrame(rows[-1:])), flush=True)
    return pd.DataFrame(rows)


def _audit_data() -> tuple[pd.DataFrame, Metadata, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 600
    age = rng.integers(18, 95, n)
    df = pd.DataFrame(
        {
            "age": age,
            "sbp": np.round(95 + 0.5 * age + rng.normal(0, 12, n)),
            "creatinine": np.round(np.exp(rng.normal(0.0, 0.3, n)), 2),
            "sex": rng.choice(["F", "M"], n),
            "ward": rng.choice(["icu", "med", "surg"], n),
        }
    )
    canary = pd.DataFrame(
        {"age": [118], "sbp": [255.0], "creatinine": [15.5], "sex": ["F"], "ward": ["icu"]}
    )
    md = Metadata.from_dict(
        {
            "columns": {
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "sbp": {"sdtype": "numerical"},
                "creatinine": {"sdtype": "numerical"},
                "sex": {"sdtype": "categorical"},
                "ward": {"sdtype": "categorical"},
            }
        }
    )
    return df, md, canary


def _distance_to(canary: pd.DataFrame, syn: pd.DataFrame, public: dict) -> float:
    """Distance (in public-range units) from the canary to its nearest synthetic row."""
    d = np.zeros(len(syn))
    for col in ("age", "sbp", "creatinine"):
        low, high = public[col]
        d += ((syn[col].to_numpy(dtype=float) - float(canary[col].iloc[0])) / (high - low)) ** 2
    return float(np.sqrt(np.nanmin(d)))


# --------------------------------------------------------------------------- risks
def _interval(res: dict | None) -> str:
    if res is None or not res.get("n_attacks"):
        return "n/a"
    return f"{res['risk']:.3f} [{res['ci_low']:.3f}, {res['ci_high']:.3f}]"


def risks(tables: list[str], n_attacks: int, seed: int = 0) -> pd.DataFrame:
    """The default non-DP model (Gaussian copula) on every shared table: the three
    re-identification risks with their 95% intervals, DCR share and the membership AUCs."""
    rows = []
    for name in tables:
        df, md, secret = load_table(name)
        train, holdout = split(df)
        start = time.perf_counter()
        syn = GaussianCopulaSynthesizer(md, random_state=seed).fit(train).sample(len(train))
        report = evaluate_privacy(
            train,
            syn,
            md,
            holdout=holdout,
            sensitive_columns=[secret],
            n_attacks=n_attacks,
            random_state=seed,
        )
        m = report.metrics
        attacks = [m["singling_out"], m["linkability"], m["inference"].get(secret)]
        upper = max(a["ci_high"] for a in attacks if a and a.get("n_attacks"))
        rows.append(
            {
                "table": name,
                "train/holdout": f"{len(train)}/{len(holdout)}",
                "singling_out": _interval(attacks[0]),
                "linkability": _interval(attacks[1]),
                "inference": _interval(attacks[2]),
                "largest_upper": upper,
                "upper<=0.05": "yes" if upper <= 0.05 else "no",
                "dcr_share": f"{m['dcr_share']:.3f} ± {m['dcr_share_se']:.3f}",
                "mia_auc": m["mia_auc"],
                "domias_auc": m["domias_auc"],
                "verdict": report.statement.split(":")[0],
                "seconds": time.perf_counter() - start,
            }
        )
        print(_fmt(pd.DataFrame(rows[-1:])), flush=True)
    return pd.DataFrame(rows)


def dcr_checks(tables: list[str], seed: int = 0) -> pd.DataFrame:
    """The DCR share of a verbatim copy of the training rows (1.0 expected) and of real rows the
    model never saw (0.5 expected, within 2 SE), with 50% train, 20% holdout, 30% unseen."""
    rows = []
    for name in tables:
        df, md, _ = load_table(name)
        idx = np.random.default_rng(seed).permutation(len(df))
        cut = [int(0.5 * len(df)), int(0.7 * len(df))]
        train, holdout, unseen = (df.iloc[part] for part in np.split(idx, cut))
        out = {"table": name, "train/holdout/unseen": f"{len(train)}/{len(holdout)}/{len(unseen)}"}
        for label, syn in (("copy", train), ("unseen", unseen)):
            m = evaluate_privacy(
                train, syn, md, holdout=holdout, n_attacks=50, random_state=seed
            ).metrics
            out[f"{label}_dcr_share"] = m["dcr_share"]
            out[f"{label}_se"] = m["dcr_share_se"]
        out["unseen_z"] = (out["unseen_dcr_share"] - 0.5) / out["unseen_se"]
        rows.append(out)
        print(_fmt(pd.DataFrame(rows[-1:])), flush=True)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- main
def _fmt(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else df.to_string()


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="rhc,population")
    parser.add_argument("--models", default="dp_marginal")
    parser.add_argument("--epsilons", default="0.5,1,3,10,inf")
    parser.add_argument("--audit-runs", type=int, default=40)
    parser.add_argument("--audit-models", default="dp_marginal")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--risks", action="store_true", help="only the risk and DCR tables")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--n-attacks", type=int, default=500)
    parser.add_argument("--out", default="benchmarks/results/privacy.csv")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # third-party fit warnings would drown the tables
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.risks:
        tables = [t for t in args.tables.split(",") if t]
        found = risks(tables, args.n_attacks)
        print("\n## Re-identification risks of the Gaussian copula (no DP)\n")
        print(_fmt(found))
        found.to_csv(out.with_name(out.stem + "_risks.csv"), index=False)
        checks = dcr_checks(tables)
        print("\n## DCR share: a verbatim copy and unseen real rows\n")
        print(_fmt(checks))
        checks.to_csv(out.with_name(out.stem + "_dcr.csv"), index=False)
        return
    epsilons = [float(e) for e in args.epsilons.split(",")]
    models = [m for m in args.models.split(",") if m]
    table = curve([d for d in args.datasets.split(",") if d], models, epsilons, args.epochs)
    print("\n## Privacy-utility curve\n")
    print(_fmt(table))
    table.to_csv(out, index=False)
    if args.audit_runs:
        audits = pd.concat(
            [
                audit(m, epsilons, args.audit_runs, args.epochs)
                for m in args.audit_models.split(",")
                if m
            ]
        )
        print("\n## Membership-inference audit (planted canary)\n")
        print(_fmt(audits))
        audits.to_csv(out.with_name(out.stem + "_audit.csv"), index=False)


if __name__ == "__main__":
    main()
