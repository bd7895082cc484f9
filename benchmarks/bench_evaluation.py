"""Time ``clinsynth.evaluation.evaluate`` on a 100k x 30 table against 100k synthetic rows.

Usage::

    .venv/bin/python benchmarks/bench_evaluation.py [--rows 100000] [--holdout 20000]

Builds a mixed table with numpy (correlated numbers, dates, categories that depend on the numbers,
booleans, ordinals and an id), draws the "synthetic" table from the same generator with another
seed, and prints the seconds per section (target: under 60 s in all on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from clinsynth import Metadata
from clinsynth.evaluation import evaluate


def make_table(n: int, seed: int) -> pd.DataFrame:
    """30 columns: 12 numerical, 2 datetime, 10 categorical, 3 boolean, 2 ordinal, 1 id."""
    rng = np.random.default_rng(seed)
    shape = np.random.default_rng(12345)  # the generating distribution, the same for every seed
    latent = rng.normal(size=(n, 3))
    data: dict[str, object] = {"patient_id": np.arange(n)}
    for i in range(12):
        w = shape.normal(size=3) if i else np.array([1.0, 0.5, 0.0])
        noise = rng.normal(scale=0.7, size=n)
        x = latent @ w + noise
        data[f"num_{i}"] = np.round(50 + 10 * x, 2) if i % 3 else np.exp(x / 3)
    base = np.datetime64("2015-01-01")
    for i in range(2):
        days = (900 + 300 * latent[:, i] + rng.normal(scale=100, size=n)).astype(int)
        data[f"date_{i}"] = base + days.astype("timedelta64[D]")
    for i in range(10):
        k = [2, 3, 5, 8, 12, 20, 4, 6, 50, 3][i]
        logits = latent[:, i % 3, None] * np.linspace(-1, 1, k)[None, :]
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        codes = (p.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
        data[f"cat_{i}"] = np.array([f"c{i}_{j}" for j in range(k)])[codes]
    for i in range(3):
        data[f"flag_{i}"] = rng.random(n) < 1 / (1 + np.exp(-latent[:, i]))
    for i in range(2):
        data[f"stage_{i}"] = np.clip(np.round(2 + latent[:, i] + rng.normal(size=n)), 0, 4)
    df = pd.DataFrame(data)
    df.loc[rng.random(n) < 0.05, "num_1"] = np.nan
    df.loc[rng.random(n) < 0.03, "cat_2"] = None
    return df


def metadata_for(df: pd.DataFrame) -> Metadata:
    columns: dict[str, dict] = {}
    for col in df.columns:
        if col == "patient_id":
            columns[col] = {"sdtype": "id"}
        elif col.startswith("num_"):
            columns[col] = {"sdtype": "numerical"}
        elif col.startswith("date_"):
            columns[col] = {"sdtype": "datetime"}
        elif col.startswith("flag_"):
            columns[col] = {"sdtype": "boolean"}
        elif col.startswith("stage_"):
            columns[col] = {"sdtype": "ordinal", "order": [0.0, 1.0, 2.0, 3.0, 4.0]}
        else:
            columns[col] = {"sdtype": "categorical"}
    return Metadata.from_dict({"columns": columns, "primary_key": "patient_id"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--holdout", type=int, default=20_000)
    args = parser.parse_args()

    real = make_table(args.rows, seed=0)
    synthetic = make_table(args.rows, seed=1)
    holdout = make_table(args.holdout, seed=2)
    md = metadata_for(real)
    print(f"real {real.shape}, synthetic {synthetic.shape}, holdout {holdout.shape}")

    start = time.perf_counter()
    result = evaluate(
        real, synthetic, md, holdout=holdout, target="cat_0", sensitive_columns=["cat_1"]
    )
    evaluated = time.perf_counter() - start
    start = time.perf_counter()
    html = result.to_dict()  # the JSON form; the HTML is timed separately below
    del html
    to_dict = time.perf_counter() - start

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result.save_html(Path(tmp) / "report.html")
        html_s = time.perf_counter() - start
        size = (Path(tmp) / "report.html").stat().st_size

    print(f"{'section':<14}{'seconds':>9}")
    for name, seconds in result.info["timings_s"].items():
        print(f"{name:<14}{seconds:>9.2f}")
    print(f"{'to_dict':<14}{to_dict:>9.2f}")
    print(f"{'save_html':<14}{html_s:>9.2f}   ({size / 1e6:.1f} MB)")
    print(f"{'total':<14}{evaluated + to_dict + html_s:>9.2f}")
    print(result.summary().to_string(index=False))
    print("subsampled:", result.info["sampling"])


if __name__ == "__main__":
    main()
