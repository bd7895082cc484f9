"""float32 against bfloat16 training: fit time and fidelity of the GANs on the clinical datasets.

For each dataset (the field benchmark's, its fixed 70/30 split) and each seed: CTGAN (or the
models given) fitted with ``training_precision="float32"`` and ``"bfloat16"``, same epochs and
sizes; the SDMetrics quality score of as many synthetic rows as training rows, and the ROC AUC of
histogram gradient boosting trained on the synthetic rows and tested on the holdout (TSTR).
The table gives each precision's mean over the seeds and the per-seed differences, so a change
in fidelity can be told from seed noise. This is the evidence for the precision a model trains
in by default.

    .venv/bin/python benchmarks/bench_precision.py --seeds 0 1 2
    .venv/bin/python benchmarks/bench_precision.py --datasets rhc --models ctgan --seeds 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import sdmetrics_quality, split  # noqa: E402
from bench_field import DATASETS, load_dataset  # noqa: E402

from clinsynth import get_synthesizer  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def tstr_auc(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, target: str):
    """ROC AUC on the holdout of gradient boosting trained on ``synthetic`` (NaN if undefined)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    positive = train[target].value_counts().index[-1]  # the rarer level

    def xy(df: pd.DataFrame):
        x = df.drop(columns=[target]).copy()
        for c in x.columns:
            if not pd.api.types.is_numeric_dtype(x[c]):
                x[c] = x[c].astype("category").cat.codes.replace(-1, np.nan)
            elif pd.api.types.is_datetime64_any_dtype(x[c]):
                x[c] = x[c].astype("int64")
        return x.astype(float), (df[target] == positive).to_numpy()

    x_syn, y_syn = xy(synthetic)
    x_test, y_test = xy(holdout)
    if y_syn.all() or not y_syn.any() or y_test.all() or not y_test.any():
        return float("nan")
    model = HistGradientBoostingClassifier(random_state=0).fit(x_syn[x_test.columns], y_syn)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    simulated = [d for d in DATASETS if d != "simulated_population"]
    parser.add_argument("--datasets", nargs="+", default=simulated)
    parser.add_argument("--models", nargs="+", default=["ctgan"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()}", flush=True)
    rows = []
    for dataset in args.datasets:
        df, metadata, target = load_dataset(dataset)
        train, holdout = split(df)
        for model in args.models:
            for seed in args.seeds:
                for precision in PRECISIONS:
                    synth = get_synthesizer(model)(
                        metadata,
                        epochs=args.epochs,
                        random_state=seed,
                        training_precision=precision,
                    )
                    start = time.perf_counter()
                    synth.fit(train)
                    fit_s = time.perf_counter() - start
                    synthetic = synth.sample(len(train))
                    row = {
                        "dataset": dataset,
                        "model": model,
                        "seed": seed,
                        "precision": precision,
                        "fit s": fit_s,
                        "quality": sdmetrics_quality(train, synthetic, metadata),
                        "TSTR AUC": tstr_auc(train, synthetic, holdout, target),
                    }
                    rows.append(row)
                    print(
                        " ".join(
                            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()
                        ),
                        flush=True,
                    )
    table = pd.DataFrame(rows)
    wide = table.pivot_table(
        index=["dataset", "model", "seed"],
        columns="precision",
        values=["fit s", "quality", "TSTR AUC"],
    )
    lines = [
        "| dataset | model | seeds | fit s float32 | fit s bfloat16 | quality float32 | "
        "quality bfloat16 | quality diff (min, max) | TSTR float32 | TSTR bfloat16 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, model), part in wide.groupby(level=[0, 1]):
        q = part["quality"]
        diff = q["bfloat16"] - q["float32"]
        lines.append(
            f"| {dataset} | {model} | {len(part)} | {part['fit s']['float32'].mean():.1f} | "
            f"{part['fit s']['bfloat16'].mean():.1f} | {q['float32'].mean():.3f} | "
            f"{q['bfloat16'].mean():.3f} | {diff.mean():+.3f} ({diff.min():+.3f}, "
            f"{diff.max():+.3f}) | {part['TSTR AUC']['float32'].mean():.3f} | "
            f"{part['TSTR AUC']['bfloat16'].mean():.3f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
