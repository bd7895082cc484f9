"""The logic target: synthetic rows break no more discovered rules than real holdout rows do.

For every table under ``../shared/data`` (each CSV on its own; tables under 50 rows skipped): a
fixed 70/30 train/holdout split (seed 0), rules discovered on the training rows (as
``Metadata.detect_from_dataframe`` does), the model fitted on them and as many synthetic rows as
training rows sampled. Reported: the rules found, the share of rows breaking at least one rule
(synthetic vs holdout; the holdout breaks a rule where the training rows did not show the whole
picture, e.g. a value closer to a point mass), and the rule broken most often.

The speed target: discovery + fit of the default model on the whole of support2 (9,105 x 48),
with the BLAS and torch threads limited to ``--threads`` (2: "on 2 cores").

    .venv/bin/python benchmarks/bench_logic.py
    .venv/bin/python benchmarks/bench_logic.py --models gaussian_copula auto --auto-budget 60
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import SHARED, markdown, split  # noqa: E402
from bench_discovery import tables  # noqa: E402


def broken_rows(rules: list, frame: pd.DataFrame, table: object) -> tuple[np.ndarray, dict]:
    bad = np.zeros(len(frame), dtype=bool)
    per_rule = {}
    for rule in rules:
        wrong = ~np.asarray(rule.is_valid(frame, table), dtype=bool)
        per_rule[rule.describe()] = float(wrong.mean()) if len(wrong) else 0.0
        bad |= wrong
    return bad, per_rule


def run(name: str, df: pd.DataFrame, model: str, budget: float) -> dict:
    from clinsynth import Metadata, get_synthesizer
    from clinsynth.constraints import constraint_from_dict

    df = df.dropna(axis=1, how="all")  # empty columns have no type to learn
    train, holdout = split(df, 0.7, 0)
    start = time.perf_counter()
    md = Metadata.detect_from_dataframe(train)
    table = md.get_table()
    discover_s = time.perf_counter() - start
    rules = [constraint_from_dict(c) for c in table.constraints]
    for rule in rules:
        rule.learn(train, table)
    params = {"random_state": 0}
    if model == "auto":
        params["time_budget"] = budget
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        synth = get_synthesizer(model)(md, **params).fit(train)
        fit_s = time.perf_counter() - start
        synthetic = synth.sample(len(train))
    syn_bad, syn_rules = broken_rows(rules, synthetic, table)
    hold_bad, _ = broken_rows(rules, holdout, table)
    worst = max(syn_rules, key=syn_rules.get) if syn_rules else ""
    return {
        "table": name,
        "model": model,
        "rows": len(df),
        "rules": len(rules),
        "synthetic_broken": float(syn_bad.mean()) if len(syn_bad) else 0.0,
        "holdout_broken": float(hold_bad.mean()) if len(hold_bad) else 0.0,
        "ok": bool(syn_bad.mean() <= hold_bad.mean()) if len(syn_bad) else True,
        "worst_rule": f"{worst[:60]} ({syn_rules[worst]:.3f})"
        if worst and syn_rules[worst]
        else "",
        "discover_s": round(discover_s, 2),
        "fit_s": round(fit_s, 2),
    }


def speed(threads: int, repeat: int) -> dict:
    """Discovery + fit of the default model on the whole of support2, and the same fit without
    rules (the cost of the rules themselves), median of ``repeat`` runs."""
    import torch
    from threadpoolctl import threadpool_limits

    from clinsynth import GaussianCopulaSynthesizer, Metadata

    torch.set_num_threads(threads)
    df = pd.read_csv(SHARED / "support2" / "support2.csv")
    times, cpu = [], []
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            md = Metadata.detect_from_dataframe(df)
            detected = time.perf_counter()
            GaussianCopulaSynthesizer(md, random_state=0).fit(df)
            fitted, cpu_fitted = time.perf_counter(), time.process_time()
            cpu.append(cpu_fitted - cpu_start)
            bare = Metadata.detect_from_dataframe(df, discover_rules=False)
            start_bare = time.perf_counter()
            GaussianCopulaSynthesizer(bare, random_state=0).fit(df)
            times.append((detected - start, fitted - detected, time.perf_counter() - start_bare))
    detect_s, fit_s, bare_s = np.median(np.array(times), axis=0)
    return {
        "table": "support2 (all rows)",
        "threads": threads,
        "detect_and_discover_s": round(float(detect_s), 2),
        "fit_s": round(float(fit_s), 2),
        "total_s": round(float(detect_s + fit_s), 2),
        # CPU seconds of the process (all its threads): what the total costs on an idle machine
        "total_cpu_s": round(float(np.median(cpu)), 2),
        "fit_without_rules_s": round(float(bare_s), 2),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", help="folders of ../shared/data (default: all)")
    parser.add_argument("--models", nargs="*", default=["gaussian_copula"])
    parser.add_argument("--auto-budget", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-rows", type=int, default=50)
    args = parser.parse_args()
    rows = []
    for name, df in tables(args.datasets):
        if len(df) < args.min_rows:
            continue
        for model in args.models:
            try:
                row = run(name, df, model, args.auto_budget)
            except Exception as exc:  # one table's problem is reported, the others still run
                print(f"{name:45s} {model:16s} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            rows.append(row)
            print(
                f"{name:45s} {model:16s} rules {row['rules']:3d}  synthetic broken "
                f"{row['synthetic_broken']:.4f}  holdout broken {row['holdout_broken']:.4f}",
                flush=True,
            )
    print()
    print(markdown(rows))
    if not args.datasets or "support2" in args.datasets:
        print()
        print(markdown([speed(threads, args.repeat) for threads in (1, args.threads)]))


if __name__ == "__main__":
    main()
