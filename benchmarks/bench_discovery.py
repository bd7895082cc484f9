"""How fast rule discovery is, and what it finds, on every table of the shared data.

For each CSV under ``../shared/data`` (multi-table folders: each table on its own): the metadata
is detected without rules, then ``discover_rules`` is timed (median of ``--repeat`` runs, one
BLAS thread as the library uses) and the rules are listed with their support. A last row times
a wide table: support2 resampled to 10,000 rows and widened to 96 columns (a second copy of its
columns, rows shuffled), the issue's "10k rows x 100 columns".

    .venv/bin/python benchmarks/bench_discovery.py
    .venv/bin/python benchmarks/bench_discovery.py --datasets support2 actg175 --list
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import SHARED, markdown, shared_path  # noqa: E402


def tables(datasets: list[str] | None) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for folder in sorted(p for p in shared_path().iterdir() if p.is_dir()):
        if datasets and folder.name not in datasets:
            continue
        for csv in sorted(folder.glob("*.csv")):
            name = folder.name if csv.stem == folder.name else f"{folder.name}/{csv.stem}"
            # Thousands separators ("265,000") would make counts text.
            out.append((name, pd.read_csv(csv, thousands=",", low_memory=False)))
    return out


def wide_support2(rows: int = 10_000, seed: int = 0) -> pd.DataFrame:
    df = pd.read_csv(SHARED / "support2" / "support2.csv")
    rng = np.random.default_rng(seed)
    base = df.iloc[rng.integers(0, len(df), rows)].reset_index(drop=True)
    other = base.iloc[rng.permutation(rows)].reset_index(drop=True)
    other.columns = [f"{c}_b" for c in other.columns]
    return pd.concat([base, other], axis=1)


def run(name: str, df: pd.DataFrame, repeat: int, show: bool) -> dict:
    from clinsynth import Metadata
    from clinsynth.constraints import discover_rules

    table = Metadata.detect_from_dataframe(df, discover_rules=False).get_table()
    times, rules = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        rules = discover_rules(df, table)
        times.append(time.perf_counter() - start)
    kinds: dict[str, int] = {}
    for rule in rules:
        kinds[rule.type] = kinds.get(rule.type, 0) + 1
    if show:
        print(f"\n{name} ({len(df)} x {df.shape[1]}): {len(rules)} rules")
        for rule in rules:
            support = rule.support or {}
            print(
                f"  - {rule.describe()[:110]}  [{rule.type}; rows {support.get('rows')}, "
                f"informative {support.get('informative')}]"
            )
    return {
        "table": name,
        "rows": len(df),
        "columns": df.shape[1],
        "rules": len(rules),
        "kinds": ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
        "seconds": float(np.median(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", help="folders of ../shared/data (default: all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--list", action="store_true", help="print every rule found")
    parser.add_argument("--no-wide", action="store_true", help="skip the 10k x 96 table")
    args = parser.parse_args()
    rows = [run(name, df, args.repeat, args.list) for name, df in tables(args.datasets)]
    if not args.no_wide:
        rows.append(run("support2 widened", wide_support2(), args.repeat, args.list))
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
