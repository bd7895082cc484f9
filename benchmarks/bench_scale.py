"""Sampling at scale (issue 19): rows/s into memory and to Parquet, peak RSS while streaming,
and a 2-worker Dask LocalCluster, on a generated 50-column table.

The table: 30 numerical columns (ints and 1-decimal floats, 10% missing in some), 14
categorical (3 to 30 levels), 3 booleans and 3 dates; a primary key. Each model is fitted on
5,000 rows; the deep models train for a few epochs (only sampling is measured here).

Run (the test venv; SDV's Gaussian copula with ``--sdv`` needs the bench venv, make bench-install):
    .venv/bin/python benchmarks/bench_scale.py                      # everything, default sizes
    .venv/bin/python benchmarks/bench_scale.py --only speed --rows 1000000
    .venv/bin/python benchmarks/bench_scale.py --only rss --rss-rows 10000000
    .venv/bin/python benchmarks/bench_scale.py --only dask --dask-rows 4000000
    .venv/bin/python benchmarks/bench_scale.py --only sql --sql-rows 2621440   # DuckDB file
    .venv/bin/python benchmarks/bench_scale.py --only sql --sql-rows 1000000 --sql-url URL
    .venv-bench/bin/python benchmarks/bench_scale.py --only speed --models copula --sdv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown  # noqa: E402

NUM_COLUMNS = 50
#: Discover rules in the generated table (--rules): its tails make ~50 conditional ranges.
RULES = False


def make_table(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """A 50-column patient-like table (see the module docstring)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4))
    cols: dict[str, object] = {"patient_id": np.arange(1, n + 1)}
    for i in range(30):
        x = latent @ rng.normal(size=4) + rng.normal(scale=0.7, size=n)
        if i % 3 == 0:
            values = np.round(50 + 15 * x).astype(float)
            values[rng.random(n) < 0.1] = np.nan
            cols[f"num{i}"] = values
        elif i % 3 == 1:
            cols[f"num{i}"] = np.round(np.exp(0.3 * x + 3), 1)
        else:
            cols[f"num{i}"] = np.round(100 + 20 * x).astype(int)
    for i in range(14):
        k = 3 + (i * 2) % 28
        x = latent[:, i % 4] + rng.normal(scale=0.8, size=n)
        codes = np.clip(((x + 2.5) / 5 * k).astype(int), 0, k - 1)
        cols[f"cat{i}"] = np.array([f"level_{j}" for j in range(k)], dtype=object)[codes]
    for i in range(3):
        cols[f"flag{i}"] = (latent[:, i] + rng.normal(size=n)) > 0.5
    for i in range(3):
        days = (365 * (2 + latent[:, i])).astype(int) + 1000
        cols[f"date{i}"] = pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D")
    return pd.DataFrame(cols)


def fitted(name: str, table: pd.DataFrame, epochs: int):
    from clinsynth import GaussianCopulaSynthesizer, Metadata, TabDDPMSynthesizer, TVAESynthesizer

    metadata = Metadata.detect_from_dataframe(table, discover_rules=RULES)
    if name == "copula":
        model = GaussianCopulaSynthesizer(metadata, random_state=0)
    elif name == "tvae":
        model = TVAESynthesizer(metadata, epochs=epochs, random_state=0)
    else:
        model = TabDDPMSynthesizer(metadata, epochs=epochs, random_state=0)
    return model.fit(table)


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}"


def timed_cpu(fn) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of this process (every thread) and the result of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bench_speed(args: argparse.Namespace) -> list[dict]:
    """rows/s of ``sample`` (memory), ``sample_batches`` (memory) and streaming to Parquet,
    each as wall-clock rows/s and rows per CPU-second (``time.process_time``)."""
    from clinsynth.io._chunked import write_chunks

    table = make_table()
    out = []
    for name in args.models:
        model = fitted(name, table, args.epochs)
        n = args.rows if name != "tabddpm" else max(args.rows // 50, 5_000)
        model.sample(min(n, 5_000))  # warm up (torch, caches)
        mem_s, mem_cpu, df = timed_cpu(lambda: model.sample(n))  # noqa: B023
        del df
        batches_s, batches_cpu, rows = timed_cpu(
            lambda: sum(len(c) for c in model.sample_batches(n, seed=1))  # noqa: B023
        )
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "o.parquet"
            pq_s, pq_cpu, _ = timed_cpu(
                lambda: write_chunks(model.sample_batches(n, seed=1), target, num_rows=n)  # noqa: B023
            )
            size = target.stat().st_size
        out.append(
            {
                "model": name,
                "rows": f"{rows:,}",
                "sample() rows/s": rate(n, mem_s),
                "sample() rows/CPU-s": rate(n, mem_cpu),
                "sample_batches rows/s": rate(n, batches_s),
                "batches rows/CPU-s": rate(n, batches_cpu),
                "to Parquet rows/s": rate(n, pq_s),
                "Parquet rows/CPU-s": rate(n, pq_cpu),
                "Parquet bytes/row": f"{size / n:.0f}",
                "load (1 min)": f"{os.getloadavg()[0]:.1f}",
            }
        )
        print(markdown(out[-1:]), flush=True)
    if args.sdv:
        out.append(bench_sdv(table, args.rows))
        print(markdown(out[-1:]), flush=True)
    return out


def bench_sdv(table: pd.DataFrame, n: int) -> dict:
    """SDV's GaussianCopulaSynthesizer on the same table and metadata (sample into memory)."""
    import warnings

    from sdv.metadata import Metadata as SDVMetadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from clinsynth import Metadata

    ours = Metadata.detect_from_dataframe(table, discover_rules=RULES).to_dict()
    metadata = SDVMetadata.load_from_dict(ours)
    name = next(iter(metadata.tables))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianCopulaSynthesizer(metadata)
        model.fit({name: table})  # SDV 2 takes {table name: DataFrame}
        model.sample(1000)
        s, cpu, _ = timed_cpu(lambda: model.sample(n))
    return {
        "model": "SDV copula",
        "rows": f"{n:,}",
        "sample() rows/s": rate(n, s),
        "sample() rows/CPU-s": rate(n, cpu),
        "sample_batches rows/s": "",
        "batches rows/CPU-s": "",
        "to Parquet rows/s": "",
        "Parquet rows/CPU-s": "",
        "Parquet bytes/row": "",
        "load (1 min)": f"{os.getloadavg()[0]:.1f}",
    }


_RSS_CHILD = """
import resource, sys, time
sys.path.insert(0, {bench!r})
from bench_scale import fitted, make_table
from clinsynth.io._chunked import write_chunks
model = fitted({model!r}, make_table(), 2)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
write_chunks(model.sample_batches({rows}, seed=1), {path!r}, num_rows={rows})
s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak, s)
"""


def bench_rss(args: argparse.Namespace) -> list[dict]:
    """Peak RSS of a fresh process that streams ``--rss-rows`` rows to Parquet."""
    out = []
    for name in args.rss_models:
        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "big.parquet")
            code = _RSS_CHILD.format(
                bench=str(Path(__file__).resolve().parent),
                model=name,
                rows=args.rss_rows,
                path=path,
            )
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            base, peak, seconds = done.stdout.split()[-3:]
            size = Path(path).stat().st_size
        out.append(
            {
                "model": name,
                "rows": f"{args.rss_rows:,}",
                "peak RSS MiB (ru_maxrss)": f"{int(peak) / 1024:,.0f}",
                "RSS after fit MiB": f"{int(base) / 1024:,.0f}",
                "rows/s to Parquet": rate(args.rss_rows, float(seconds)),
                "file GiB": f"{size / 2**30:.2f}",
            }
        )
        print(markdown(out[-1:]), flush=True)
    return out


_SQL_CHILD = """
import resource, sys, time
sys.path.insert(0, {bench!r})
from bench_scale import fitted, make_table
from clinsynth.io._sql_stream import write_sql_chunks
model = fitted({model!r}, make_table(), 2)
md = model.get_metadata()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
write_sql_chunks(
    model.sample_batches({rows}, seed=1), {url!r}, table_name=md.single_table_name(),
    metadata=md, schema={schema!r}, num_rows={rows},
)
s, cpu = time.perf_counter() - t, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak, s, cpu)
"""


def bench_sql(args: argparse.Namespace) -> list[dict]:
    """Peak RSS of a fresh process that streams ``--sql-rows`` rows into a database (a new
    DuckDB file unless ``--sql-url``; a PostgreSQL run goes to a new schema)."""
    import uuid

    with tempfile.TemporaryDirectory() as folder:
        url = args.sql_url or f"duckdb:///{Path(folder) / 'big.duckdb'}"
        schema = f"bench_{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
        code = _SQL_CHILD.format(
            bench=str(Path(__file__).resolve().parent),
            model="copula",
            rows=args.sql_rows,
            url=url,
            schema=schema,
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        base, peak, seconds, cpu = done.stdout.split()[-4:]
        size = Path(folder, "big.duckdb").stat().st_size if not args.sql_url else 0
    out = {
        "database": url.split(":", 1)[0],
        "rows": f"{args.sql_rows:,}",
        "rows/s": rate(args.sql_rows, float(seconds)),
        "rows/CPU-s": rate(args.sql_rows, float(cpu)),
        "RSS after fit MiB": f"{int(base) / 1024:,.0f}",
        "peak RSS MiB (ru_maxrss)": f"{int(peak) / 1024:,.0f}",
        "file GiB": f"{size / 2**30:.2f}" if size else "",
        "load (1 min)": f"{os.getloadavg()[0]:.1f}",
    }
    print(markdown([out]), flush=True)
    if schema:
        print(f"(left schema {schema} in the database: drop it)")
    return [out]


def bench_dask(args: argparse.Namespace) -> list[dict]:
    """Throughput of a LocalCluster of 2 single-thread worker processes writing Parquet parts."""
    import dask
    import distributed

    from clinsynth.synthesizers._dask import sample_to_parquet

    model = fitted("copula", make_table(), args.epochs)
    out = []
    with dask.config.set({"distributed.worker.daemon": True}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with cluster, distributed.Client(cluster) as client, tempfile.TemporaryDirectory() as folder:
        sample_to_parquet(model, 100_000, Path(folder) / "warm", client=client, seed=0)
        t = time.perf_counter()
        manifest = sample_to_parquet(
            model, args.dask_rows, Path(folder) / "parts", client=client, seed=1
        )
        s = time.perf_counter() - t
        out.append(
            {
                "model": "copula",
                "workers": 2,
                "rows": f"{args.dask_rows:,}",
                "parts": len(manifest["parts"]),
                "rows/s (cluster)": rate(args.dask_rows, s),
                "rows/s per worker": rate(args.dask_rows / 2, s),
                "load (1 min)": f"{os.getloadavg()[0]:.1f}",
            }
        )
    print(markdown(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["speed", "rss", "dask", "sql"], nargs="*")
    parser.add_argument("--models", nargs="*", default=["copula", "tvae", "tabddpm"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rss-rows", type=int, default=10_000_000)
    parser.add_argument("--rss-models", nargs="*", default=["copula"])
    parser.add_argument("--dask-rows", type=int, default=4_000_000)
    parser.add_argument("--sql-rows", type=int, default=2_621_440)
    parser.add_argument("--sql-url", default=None, help="default: a new DuckDB file")
    parser.add_argument("--sdv", action="store_true", help="SDV's copula too (bench venv)")
    args = parser.parse_args()
    only = args.only or ["speed", "rss", "dask"]
    print(f"torch threads: {__import__('torch').get_num_threads()}, cpus: {os.cpu_count()}")
    if "speed" in only:
        bench_speed(args)
    if "rss" in only:
        bench_rss(args)
    if "dask" in only:
        bench_dask(args)
    if "sql" in only:
        bench_sql(args)


if __name__ == "__main__":
    main()
