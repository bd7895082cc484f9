"""TabDDPM's fast samplers (issue 19): rows/s and quality for ``sampling_steps`` x ``eta``.

One TabDDPM per table (70% train split, seed 0) is trained once; the same fitted model then
samples with every (steps, eta) pair, from the full chain of ``num_timesteps`` steps down to 10
(``eta=0``: DDIM's deterministic update for the numbers; ``eta=1``: the ancestral one). Each row
reports the sampling CPU time (``time.process_time``, all threads), wall time, and
``evaluate_quality`` against the training rows (detection AUC against the holdout as well).

Run (needs ../shared/data):
    .venv/bin/python benchmarks/bench_ddpm_samplers.py --tables support2 rhc --epochs 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown, shared_path, split  # noqa: E402

#: (sampling_steps, eta) pairs; None is the full chain of num_timesteps steps.
GRID = [(None, 1.0), (50, 1.0), (50, 0.0), (20, 1.0), (20, 0.0), (10, 1.0), (10, 0.0)]


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(shared_path(name, f"{name}.csv"))


def run(table: str, epochs: int, rows: int, threads: int) -> list[dict]:
    import torch

    from clinsynth import Metadata, TabDDPMSynthesizer
    from clinsynth.evaluation import evaluate_quality

    torch.set_num_threads(threads)
    train, holdout = split(load(table))
    metadata = Metadata.detect_from_dataframe(train)
    model = TabDDPMSynthesizer(metadata, epochs=epochs, random_state=0)
    t = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t
    n = rows or len(train)
    out = []
    for steps, eta in GRID:
        model.sampling_steps, model.eta = steps, eta
        model.reset_sampling(0)
        wall, cpu = time.perf_counter(), time.process_time()
        synthetic = model.sample(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = evaluate_quality(train, synthetic, metadata, holdout=holdout)
        detection = _detection(report)
        out.append(
            {
                "table": table,
                "epochs": epochs,
                "fit s": f"{fit_s:.0f}",
                "steps": steps or model.num_timesteps,
                "eta": eta,
                "rows": n,
                "rows/s": f"{n / wall:,.0f}",
                "rows per CPU-s": f"{n / cpu:,.0f}",
                "quality": f"{report.get_score():.3f}",
                "detection AUC": detection,
                "load": f"{os.getloadavg()[0]:.1f}",
            }
        )
        print(markdown(out[-1:]), flush=True)
    return out


def _detection(report: object) -> str:
    """The better detector's AUC (real training rows against synthetic ones; 0.5 best)."""
    aucs = [v for v in getattr(report, "metrics", {}).get("detection_auc", {}).values() if v == v]
    return f"{max(aucs):.3f}" if aucs else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["support2", "rhc"])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=0, help="rows sampled (0: as many as train)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    rows = []
    for table in args.tables:
        rows.extend(run(table, args.epochs, args.rows, args.threads))
    print("\n" + markdown(rows))


if __name__ == "__main__":
    main()
