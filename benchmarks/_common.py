"""Shared helpers for the benchmark scripts: data paths, timing, peak memory, tables."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks need ../shared/data beside the repo.")
    return path


def load_rhc() -> pd.DataFrame:
    return pd.read_csv(shared_path("rhc", "rhc.csv"))


def split(df: pd.DataFrame, frac: float = 0.7, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed train/holdout split used by every benchmark (70% train, seed 0)."""
    train = df.sample(frac=frac, random_state=seed)
    return train.reset_index(drop=True), df.drop(train.index).reset_index(drop=True)


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak Python/numpy heap of one run, in MiB (tracemalloc; torch's allocator excluded)."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sdmetrics_quality(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any) -> float:
    """SDMetrics' QualityReport score (the figure SDV publishes), for side-by-side numbers."""
    import warnings

    from sdmetrics.reports.single_table import QualityReport

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate(real, synthetic, metadata.get_table().to_dict(), verbose=False)
    return float(report.get_score())
