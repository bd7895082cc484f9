"""The memorization guard of the deep models (issue: patient privacy, "memorization guard").

For each table and deep model, the same fit with the guard off (``memorization_guard=None``)
and on (the default, 0.55): the DCR share and distance-MIA AUC of the synthetic rows against
the benchmark's real holdout (the report's own measures), the quality score, the epoch the
guard stopped at (if it did) and the fit time. Long schedules (``--epochs``) are where deep
models drift toward their training rows.

    .venv/bin/python benchmarks/bench_memorization_guard.py
    .venv/bin/python benchmarks/bench_memorization_guard.py --tables heart_disease_uci \
        --models tabddpm --epochs 3000
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from _common import markdown, shared_path, split

from clinsynth import Metadata
from clinsynth.evaluation import evaluate_quality
from clinsynth.evaluation._privacy import memorization_checks
from clinsynth.synthesizers import get_synthesizer

TABLES = {
    "heart_disease_uci": ("heart_disease_uci", "heart_disease_uci.csv"),
    "gbsg2": ("gbsg2", "gbsg2.csv"),
    "actg175": ("actg175", "actg175.csv"),
}


def run(table: str, model: str, epochs: int, guard: float | None) -> dict:
    df = pd.read_csv(shared_path(*TABLES[table]))
    train, holdout = split(df)
    metadata = Metadata.detect_from_dataframe(train)
    start = time.perf_counter()
    synth = get_synthesizer(model)(
        metadata, epochs=epochs, random_state=0, memorization_guard=guard
    ).fit(train)
    fit = time.perf_counter() - start
    rows = synth.sample(len(train))
    checks = memorization_checks(train, rows, metadata, holdout=holdout)
    quality = evaluate_quality(train, rows, metadata).get_score()
    last = synth.memorization_[-1] if synth.memorization_ else {}
    return {
        "table": f"{table} ({len(train)}x{train.shape[1]})",
        "model": model,
        "epochs": epochs,
        "guard": "off" if guard is None else guard,
        "stopped after epoch": synth.stopped_by_guard_ or "-",
        "last check (share)": round(last.get("dcr_share", float("nan")), 3),
        "DCR share (holdout)": checks["dcr_share"],
        "SE": checks["dcr_share_se"],
        "MIA AUC": checks["mia_auc"],
        "quality": quality,
        "fit s": round(fit, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--models", nargs="+", default=["tabddpm", "tvae"])
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for table in args.tables:
        for model in args.models:
            for guard in (None, 0.55):
                rows.append(run(table, model, args.epochs, guard))
                print(rows[-1], flush=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
