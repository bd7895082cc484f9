"""Built-in simulators: seconds, peak memory and rows for large sizes.

Run:  .venv/bin/python benchmarks/bench_simulate.py [--population 1000000] [--cohort 1000000]
      [--hospital 100000] [--repeat 1]

Targets (issue 5, 2 CPU cores): 1M population rows in < 20 s, 100k hospital patients with their
visits and lab results in < 60 s. Time is the median wall time of ``--repeat`` runs; peak memory
is measured in a separate run with tracemalloc (numpy and pandas allocations included) and the
process's peak resident set size is printed at the end.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_mib, timed  # noqa: E402

from clinsynth.simulate import simulate_cohort, simulate_hospital, simulate_population  # noqa: E402


def _rows(result: Any) -> str:
    data = result[0]
    if isinstance(data, dict):
        return ", ".join(f"{name} {len(df):,}" for name, df in data.items())
    return f"{len(data):,} x {data.shape[1]} columns"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--cohort", type=int, default=1_000_000)
    parser.add_argument("--hospital", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    cases = [
        ("population", f"{args.population:,} rows", 20.0,
         lambda: simulate_population(args.population, seed=0)),
        ("cohort", f"{args.cohort:,} rows", None, lambda: simulate_cohort(args.cohort, seed=0)),
        ("hospital", f"{args.hospital:,} patients", 60.0,
         lambda: simulate_hospital(args.hospital, seed=0)),
    ]  # fmt: skip
    print("| simulator | size | seconds | target | peak MiB (tracemalloc) | rows |")
    print("|---|---|---|---|---|---|")
    for name, size, target, fn in cases:
        seconds, result = timed(fn, args.repeat)
        rows = _rows(result)
        del result
        peak = peak_mib(fn)
        goal = f"< {target:.0f} s" if target else "-"
        print(f"| {name} | {size} | {seconds:.2f} | {goal} | {peak:,.0f} | {rows} |", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS, KiB on Linux
    print(f"\nProcess peak RSS: {rss / scale:,.0f} MiB")


if __name__ == "__main__":
    main()
