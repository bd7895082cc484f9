"""Fidelity of tables larger than memory (issue 19): ``evaluate_quality_dask`` against the
in-memory ``evaluate_quality``, peak RSS and seconds of each in a fresh process.

The synthetic table is streamed by the copula (fitted on bench_scale's 50-column table) into a
folder of Parquet parts of ``--part-rows`` rows, as ``clinsynth sample --scheduler`` writes
them; the real table is ``--real-rows`` rows of the same generator (another seed) in one
Parquet file. Each evaluation runs in its own process (``ru_maxrss``), detection off in both
(it reads a fixed sample of rows in both paths; measured apart by the tests).

Run:
    .venv/bin/python benchmarks/bench_dask_evaluation.py --rows 5000000
    .venv/bin/python benchmarks/bench_dask_evaluation.py --rows 20000000 --no-memory
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown  # noqa: E402
from bench_scale import make_table  # noqa: E402

_CHILD = """
import resource, sys, time, json
sys.path.insert(0, {bench!r})
import pandas as pd
from clinsynth import Metadata
from clinsynth.evaluation import evaluate_quality, evaluate_quality_dask
md = Metadata.load_from_json({metadata!r})
start = time.perf_counter(); cpu = time.process_time()
if {dask}:
    report = evaluate_quality_dask({real!r}, {parts!r}, md, detection=False)
else:
    real = pd.read_parquet({real!r}); synthetic = pd.read_parquet({parts!r})
    report = evaluate_quality(real, synthetic, md, detection=False)
print(json.dumps({{"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "score": report.get_score(), "shapes": report.get_properties()["Score"].tolist()}}))
"""


def write_parts(rows: int, part_rows: int, folder: Path, real_rows: int) -> tuple[Path, Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clinsynth import GaussianCopulaSynthesizer, Metadata

    table = make_table(5000)
    metadata = Metadata.detect_from_dataframe(table, discover_rules=False)
    model = GaussianCopulaSynthesizer(metadata, random_state=0).fit(table)
    parts = folder / "parts"
    parts.mkdir()
    for i, chunk in enumerate(model.sample_batches(rows, batch_size=part_rows, seed=1)):
        pq.write_table(
            pa.Table.from_pandas(chunk, preserve_index=False), parts / f"part-{i:05d}.parquet"
        )
    real = folder / "real.parquet"
    make_table(real_rows, seed=1).to_parquet(real, index=False)
    md_path = folder / "metadata.json"
    metadata.save_to_json(md_path)
    return real, parts, md_path


def run(kind: str, real: Path, parts: Path, md_path: Path) -> dict:
    import json

    code = _CHILD.format(
        bench=str(Path(__file__).resolve().parent),
        metadata=str(md_path),
        dask=kind == "dask",
        real=str(real),
        parts=str(parts),
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="synthetic rows")
    parser.add_argument("--real-rows", type=int, default=1_000_000)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--no-memory", action="store_true", help="skip the in-memory evaluation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        real, parts, md_path = write_parts(args.rows, args.part_rows, Path(tmp), args.real_rows)
        print(f"wrote the tables in {time.perf_counter() - start:.0f} s", flush=True)
        rows = []
        for kind in ("dask",) if args.no_memory else ("dask", "memory"):
            result = run(kind, real, parts, md_path)
            rows.append(
                {
                    "evaluation": "evaluate_quality_dask (threads)"
                    if kind == "dask"
                    else "evaluate_quality (pandas)",
                    "synthetic rows": f"{args.rows:,}",
                    "real rows": f"{args.real_rows:,}",
                    "seconds": f"{result['seconds']:.1f}",
                    "CPU s": f"{result['cpu_s']:.1f}",
                    "peak RSS MiB": f"{result['peak_mib']:,.0f}",
                    "score": f"{result['score']:.4f}",
                    "load (1 min)": f"{os.getloadavg()[0]:.1f}",
                }
            )
            print(markdown(rows[-1:]), flush=True)
        print(markdown(rows))


if __name__ == "__main__":
    main()
