"""Conditional sampling benchmark: 10k rows of a 1% condition, per registered model.

Run:  .venv/bin/python benchmarks/bench_conditions.py [--rows 20000] [--epochs 30]

Fits each model on the condition cohort simulator and times ``sample(10_000, conditions=...)`` for
a condition met by about 1% of training rows (a condition level plus an age range), and checks
that every row meets it. Deep models train with few epochs here: the figure is sampling speed.
"""

from __future__ import annotations

import argparse
import inspect
import time

from _common import markdown

from clinsynth import list_synthesizers
from clinsynth.simulate import simulate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args()
    df, md = simulate_cohort(args.rows, seed=0)
    # ~1% of rows: heart disease (about 15%) and the oldest tail of age.
    cut = df.loc[df["condition"] == "heart_disease", "age"].quantile(0.93)
    conditions = {"condition": "heart_disease", "age": (float(cut), None)}
    share = ((df["condition"] == "heart_disease") & (df["age"] >= cut)).mean()
    names = args.models.split(",") if args.models else list(list_synthesizers())
    rows = []
    for name in names:
        cls = list_synthesizers()[name]
        params = {"random_state": 0}
        accepted = inspect.signature(cls.__init__).parameters
        if "epochs" in accepted:
            params["epochs"] = args.epochs
        if "condition_column" in accepted:
            params["condition_column"] = "condition"
        if "epsilon" in accepted and name.startswith("dp"):
            params["epsilon"] = 3.0
        try:
            model = cls(md, **params)
            start = time.perf_counter()
            model.fit(df)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            out = model.sample(10_000, conditions=conditions)
            sample_s = time.perf_counter() - start
            ok = bool(((out["condition"] == "heart_disease") & (out["age"] >= cut)).all())
            rows.append(
                {
                    "model": name,
                    "fit s": fit_s,
                    "10k rows of the 1% condition, s": sample_s,
                    "all rows meet it": ok,
                }
            )
        except Exception as exc:  # a benchmark reports failures instead of stopping
            rows.append(
                {
                    "model": name,
                    "fit s": float("nan"),
                    "10k rows of the 1% condition, s": float("nan"),
                    "all rows meet it": f"error: {exc}"[:80],
                }
            )
        print(rows[-1], flush=True)
    print(f"\ncondition {conditions} holds for {share:.2%} of {len(df)} training rows\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
