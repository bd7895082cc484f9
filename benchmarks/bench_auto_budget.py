"""AutoSynthesizer's time budget: does a fit end within the budget, and where does time go?

For each dataset (the training 70% of the fixed split): ``AutoSynthesizer(time_budget=B)`` with
its default candidates; the wall time of the whole fit against the budget, and per candidate the
epochs it trained, its fit and scoring seconds, and the note (skipped, epochs cut). The clock is
honest when every fit ends within 10% of the budget.

    .venv/bin/python benchmarks/bench_auto_budget.py --budget 180 \\
        --datasets rhc support2 actg175 whas500
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from _common import markdown, shared_path, split  # noqa: E402

FILES = {
    "rhc": ("rhc", "rhc.csv"),
    "support2": ("support2", "support2.csv"),
    "actg175": ("actg175", "actg175.csv"),
    "whas500": ("whas500", "whas500.csv"),
    "heart_failure_clinical": ("heart_failure_clinical", "heart_failure_clinical.csv"),
    "breast_cancer_wisconsin": ("breast_cancer_wisconsin", "breast_cancer_wisconsin.csv"),
}


def run(dataset: str, budget: float, seed: int) -> tuple[dict, list[dict]]:
    from clinsynth import AutoSynthesizer, Metadata

    train, _ = split(pd.read_csv(shared_path(*FILES[dataset])), seed=seed)
    metadata = Metadata.detect_from_dataframe(train)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = AutoSynthesizer(metadata, time_budget=budget, random_state=seed).fit(train)
    elapsed = time.perf_counter() - start
    summary = {
        "dataset": dataset,
        "rows x cols": f"{len(train)} x {train.shape[1]}",
        "budget_s": budget,
        "elapsed_s": round(elapsed, 1),
        "elapsed / budget": round(elapsed / budget, 3),
        "chosen": auto.chosen_,
        "refit": auto.refit_note_ or "on every row, as planned",
    }
    board = []
    for row in auto.leaderboard_.to_dict(orient="records"):
        board.append(
            {
                "dataset": dataset,
                "model": row["model"],
                "status": row["status"],
                "epochs": "" if pd.isna(row.get("epochs")) else int(row["epochs"]),
                "fit_s": row.get("fit_seconds"),
                "scoring_s": row.get("evaluation_seconds"),
                "note": row.get("note") or "",
            }
        )
    return summary, board


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=180.0)
    parser.add_argument("--datasets", nargs="+", default=["rhc", "support2", "actg175", "whas500"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    summaries, boards = [], []
    for dataset in args.datasets:
        summary, board = run(dataset, args.budget, args.seed)
        summaries.append(summary)
        boards.extend(board)
        print(markdown([summary]), flush=True)
    print("\n## Whole fits\n")
    print(markdown(summaries))
    print("\n## Candidates\n")
    print(markdown(boards))


if __name__ == "__main__":
    main()
