"""Conditional sampling benchmark: 10k rows of a 1% condition, per registered model.

Run:  .venv/bin/python benchmarks/bench_conditions.py [--rows 20000] [--epochs 30]

Fits each model on the condition cohort simulator and times ``sample(10_000, conditions=...)`` for
a condition met by about 1% of training rows (a condition level plus an age range), and checks
that every row meets it. Also reported: how the rows were made (``conditioning_stats_``: method,
rows generated and decoded, rounds) and the share of the model's own unconditional rows that meet
the condition (a model trained for few epochs may make it far rarer than 1%, which is what plain
rejection pays for).
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
            stats = getattr(model, "conditioning_stats_", {})
            plain = model.sample(50_000)
            own = ((plain["condition"] == "heart_disease") & (plain["age"] >= cut)).mean()
            rows.append(
                {
                    "model": name,
                    "fit s": fit_s,
                    "10k rows of the 1% condition, s": sample_s,
                    "all rows meet it": ok,
                    "model's own rate": f"{own:.3%}",
                    "draws": stats.get("draws"),
                    "method": stats.get("method"),
                }
            )
        except Exception as exc:  # a benchmark reports failures instead of stopping
            rows.append(
                {
                    "model": name,
                    "fit s": float("nan"),
                    "10k rows of the 1% condition, s": float("nan"),
                    "all rows meet it": f"error: {exc}"[:80],
                    "model's own rate": "",
                    "draws": None,
                    "method": None,
                }
            )
        print(rows[-1], flush=True)
    print(f"\ncondition {conditions} holds for {share:.2%} of {len(df)} training rows\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
