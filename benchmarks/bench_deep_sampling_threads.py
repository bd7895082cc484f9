"""Deep models' ``sample()``: torch's OpenMP threads against one thread (issue 19).

``DeepSynthesizer`` generates rows with OpenMP on one thread: between the network's products
the rows are decoded in numpy while idle OpenMP workers spin. This script measures the choice:
each model is trained briefly on the built-in cohort simulator (no shared data needed), then
``sample(n)`` runs alternately with one OpenMP thread (today's code) and with torch's default
threads (the code before: the limit replaced by a no-op), ``--repeats`` times each. CPU time is
``time.process_time`` (all threads of the process); the rows are the same either way.

Run:
    .venv/bin/python benchmarks/bench_deep_sampling_threads.py --rows 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown  # noqa: E402


def measure(model, rows: int, one_thread: bool) -> tuple[float, float, float]:
    from clinsynth.synthesizers import _deep

    limit = _deep.one_openmp_thread
    if not one_thread:
        _deep.one_openmp_thread = contextlib.nullcontext
    try:
        model.reset_sampling(1)
        wall, cpu = time.perf_counter(), time.process_time()
        out = model.sample(rows)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        _deep.one_openmp_thread = limit
    return wall, cpu, float(out.select_dtypes("number").iloc[:, 0].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["tvae", "ctgan", "tabddpm"])
    args = parser.parse_args()

    import os

    import torch

    from clinsynth import get_synthesizer
    from clinsynth.simulate import simulate_cohort

    data, metadata = simulate_cohort(5000, seed=0)
    fast = {"tabddpm": {"epochs": 1, "sampling_steps": 20}, "tvae": {"epochs": 1}}
    fast["ctgan"] = {"epochs": 1}
    rows_out = []
    for name in args.models:
        model = get_synthesizer(name)(metadata, random_state=0, **fast.get(name, {})).fit(data)
        runs: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for one in (False, True):
                runs[one].append(measure(model, args.rows, one))
        means = {one: runs[one][0][2] for one in runs}
        for one in (False, True):
            wall = statistics.median(r[0] for r in runs[one])
            cpu = statistics.median(r[1] for r in runs[one])
            rows_out.append(
                {
                    "model": name,
                    "OpenMP threads": 1 if one else torch.get_num_threads(),
                    "rows": args.rows,
                    "wall s (median)": round(wall, 2),
                    "CPU s (median)": round(cpu, 2),
                    "rows per CPU-s": round(args.rows / cpu),
                    "same rows": means[True] == means[False],
                }
            )
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(markdown(rows_out))


if __name__ == "__main__":
    main()
