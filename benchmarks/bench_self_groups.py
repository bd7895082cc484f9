"""Self-references keep their group structure (issue #22, deliverable 2).

A case-control table matched 1:4 on age and sex (``simulate_case_control``: 80% full sets, the
rest 1-3 controls; ``case.id`` is the case's ``id``) is detected with no hand edit, fitted with
the hierarchical synthesizer and sampled at scale 1. Printed, for the real table, the synthetic
table, and the synthetic table with the key drawn as a random row (what clinsynth did before):
number of groups, mean size, the Kolmogorov-Smirnov distance between the real and synthetic
distributions of group sizes, the share of rows pointing to themselves, and the matching of each
member with its group's head (same sex, mean absolute difference of age), and the share of rows
marked as cases (the random-key row shows the table model's own share, before the marker is
corrected to agree with the groups).

Targets: KS <= 0.1 and |self-reference share - real| <= 0.05.

Run: ``python benchmarks/bench_self_groups.py [--cases 3853] [--seeds 0 1 2] [--model NAME]
[--epochs N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import markdown  # noqa: E402

from clinsynth import Metadata  # noqa: E402
from clinsynth.multitable import HMASynthesizer  # noqa: E402
from clinsynth.simulate import simulate_case_control  # noqa: E402


def structure(df: pd.DataFrame, real: pd.DataFrame) -> dict:
    """Group figures of ``df`` (``case.id`` -> ``id``), KS against ``real``'s group sizes."""
    sizes = df.groupby("case.id").size()
    keyed = df.dropna(subset=["case.id"])
    head = df.set_index("id").loc[keyed["case.id"].to_numpy()]
    member = (keyed["case.id"] != keyed["id"]).to_numpy()
    same_sex = head["sex"].to_numpy()[member] == keyed["sex"].to_numpy()[member]
    age_gap = np.abs(head["age"].to_numpy()[member] - keyed["age"].to_numpy()[member])
    return {
        "rows": len(df),
        "groups": len(sizes),
        "mean size": round(float(sizes.mean()), 2),
        "KS sizes": round(float(ks_2samp(real.groupby("case.id").size(), sizes).statistic), 3),
        "self share": round(float((keyed["case.id"] == keyed["id"]).mean()), 3),
        "same sex": round(float(same_sex.mean()), 3),
        "mean |age gap|": round(float(age_gap.mean()), 2),
        "case share": round(float(df["case"].mean()), 3),
    }


def run(cases: int, seed: int, model: str, epochs: int | None = None) -> list[dict]:
    tables, _ = simulate_case_control(cases, seed=seed)
    real = tables["subjects"]
    start = time.perf_counter()
    md = Metadata.detect_from_dataframes(tables, discover_rules=False)
    detect_s = time.perf_counter() - start
    assert md.relationships and md.relationships[0]["child_foreign_key"] == "case.id"
    start = time.perf_counter()
    params = {"epochs": epochs} if epochs else {}
    synth = HMASynthesizer(md, table_synthesizers=model, random_state=seed, **params).fit(tables)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = synth.sample()["subjects"]
    sample_s = time.perf_counter() - start
    # Before issue 22: the key drawn as a random row (the plan without its groups).
    for entry in synth._plan_["subjects"]["self_fks"]:
        entry.pop("groups")
    synth.reset_sampling()
    random_key = synth.sample()["subjects"]
    timing = f"{detect_s:.2f} / {fit_s:.2f} / {sample_s:.2f}"
    rows = []
    for label, df in (("real", real), ("synthetic", synthetic), ("random key", random_key)):
        row = {"seed": seed, "table": label, **structure(df, real)}
        row["detect / fit / sample s"] = timing if label == "synthetic" else ""
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3853, help="matched sets (issue: 3,853)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="gaussian_copula", help="table model")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of a deep table model")
    args = parser.parse_args()
    rows = [r for seed in args.seeds for r in run(args.cases, seed, args.model, args.epochs)]
    print(markdown(rows))
    synth = [r for r in rows if r["table"] == "synthetic"]
    real = {r["seed"]: r for r in rows if r["table"] == "real"}
    worst_ks = max(r["KS sizes"] for r in synth)
    worst_share = max(abs(r["self share"] - real[r["seed"]]["self share"]) for r in synth)
    print(f"\nworst KS of group sizes: {worst_ks:.3f} (target <= 0.1)")
    print(f"worst |self share - real|: {worst_share:.3f} (target <= 0.05)")
    print("targets met:", "yes" if worst_ks <= 0.1 and worst_share <= 0.05 else "NO")


if __name__ == "__main__":
    main()
