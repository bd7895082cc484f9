"""Conditional sampling benchmark: 10k rows of a 1% condition, per registered model.

Run:  .venv/bin/python benchmarks/bench_conditions.py [--rows 20000] [--epochs 30]
      [--models tabddpm] [--faithfulness 150000]

Fits each model on the condition cohort simulator and times ``sample(10_000, conditions=...)`` for
a condition met by about 1% of training rows (a condition level plus an age range), and checks
that every row meets it. Also reported: how the rows were made (``conditioning_stats_``: method,
rows generated and decoded, rounds) and the share of the model's own unconditional rows that meet
the condition (a model trained for few epochs may make it far rarer than 1%, which is what plain
rejection pays for).

``--faithfulness N`` also compares, per model, the conditioned rows' other columns with (a) plain
rejection from the same model (its rows meeting the condition among ``N`` unconditional ones),
(b) the training rows meeting it and (c) the rows meeting it among 200,000 fresh rows of the
same simulator: means and Kolmogorov-Smirnov distances of numbers, the largest gap in the
frequencies of categories, and the median distance from a row to its nearest neighbour
(standardized numbers, one-hot categories) in equal-size samples, which shows rows that are
near copies of each other.
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np
import pandas as pd
from _common import markdown
from scipy import stats
from scipy.spatial import cKDTree

from clinsynth import list_synthesizers
from clinsynth.simulate import simulate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", default=None, help="comma-separated names (default: all)")
    parser.add_argument(
        "--faithfulness",
        type=int,
        default=0,
        help="unconditional rows for the rejection reference (0: no faithfulness table)",
    )
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
            info = getattr(model, "conditioning_stats_", {})
            plain = model.sample(50_000)
            own = ((plain["condition"] == "heart_disease") & (plain["age"] >= cut)).mean()
            rows.append(
                {
                    "model": name,
                    "fit s": fit_s,
                    "10k rows of the 1% condition, s": sample_s,
                    "all rows meet it": ok,
                    "model's own rate": f"{own:.3%}",
                    "draws": f"{info.get('draws'):,}",
                    "rejection needs about": f"{round(10_000 / own):,}" if own else "inf",
                    "method": info.get("method"),
                }
            )
            if args.faithfulness:
                print(faithfulness(model, out, df, conditions, args.faithfulness), flush=True)
        except Exception as exc:  # a benchmark reports failures instead of stopping
            rows.append(
                {
                    "model": name,
                    "fit s": float("nan"),
                    "10k rows of the 1% condition, s": float("nan"),
                    "all rows meet it": f"error: {exc}"[:80],
                    "model's own rate": "",
                    "draws": None,
                    "rejection needs about": None,
                    "method": None,
                }
            )
        print(rows[-1], flush=True)
    print(f"\ncondition {conditions} holds for {share:.2%} of {len(df)} training rows\n")
    print(markdown(rows))


NUMBERS = ("age", "egfr", "systolic_bp", "bmi", "hba1c", "ldl_cholesterol", "crp")
CATEGORIES = ("sex", "smoking", "physical_activity", "family_history")


def faithfulness(
    model: object, out: pd.DataFrame, df: pd.DataFrame, conditions: dict, plain_rows: int
) -> str:
    """The conditioned rows ``out`` against plain rejection from the model and the real rows
    meeting the condition (module docstring)."""
    from clinsynth.simulate import simulate_cohort

    def meets(frame: pd.DataFrame) -> pd.DataFrame:
        low = conditions["age"][0]
        return frame[(frame["condition"] == conditions["condition"]) & (frame["age"] >= low)]

    references = {
        "rejection from the model": meets(model.sample(plain_rows)),
        "training rows": meets(df),
        "fresh simulated rows": meets(simulate_cohort(200_000, seed=1)[0]),
    }
    sd = df[list(NUMBERS)].std()
    dummies = pd.get_dummies(df[list(CATEGORIES)].astype(str)).columns

    def nearest(frame: pd.DataFrame, n: int) -> float:
        frame = frame.sample(n, random_state=0)
        onehot = pd.get_dummies(frame[list(CATEGORIES)].astype(str))
        onehot = onehot.reindex(columns=dummies, fill_value=0)
        f = np.c_[(frame[list(NUMBERS)] / sd).to_numpy(float), onehot.to_numpy(float)]
        return float(np.median(cKDTree(f).query(f, k=2)[0][:, 1]))

    frames = {"conditioned (this sample)": out, **references}
    # Siblings show as near neighbours only among enough rows: the few training rows are left
    # out of this column.
    n_nn = min(len(f) for f in frames.values() if len(f) >= 500)
    rows = []
    for label, frame in frames.items():
        row: dict[str, object] = {"rows": label, "n": len(frame)}
        for column in NUMBERS:
            ks = stats.ks_2samp(out[column], frame[column]).statistic
            row[column] = f"{frame[column].mean():.2f} (KS {ks:.3f})"
        gaps = [
            out[c]
            .value_counts(normalize=True)
            .sub(frame[c].value_counts(normalize=True), fill_value=0)
            .abs()
            .max()
            for c in CATEGORIES
        ]
        row["largest category gap"] = f"{max(gaps):.3f}"
        near = nearest(frame, n_nn) if len(frame) >= n_nn else float("nan")
        row[f"median NN distance ({n_nn} rows)"] = f"{near:.2f}"
        rows.append(row)
    return markdown(rows)


if __name__ == "__main__":
    main()
