"""Deep synthesizers on RHC: fit time, sampling throughput and fidelity (SDV's default sizes).

RHC's fixed 70% split (seed 0, 4,014 rows). For each model: seconds per epoch, total fit time,
rows per second when sampling 1M rows, and the SDMetrics QualityReport score of 4,014 synthetic
rows against the training rows (plus clinsynth's own ``evaluate_quality`` when present).
Reference (SDV 2.0, same split, 2 CPU cores, 300 epochs): TVAE fit 69 s, CTGAN fit 303 s.
With ``--sdv`` (needs the ``bench`` extra) SDV's TVAE and CTGAN run right after ours, with the
same epochs, threads and machine load, for a side-by-side comparison. The one-time import
that the first torch optimizer of a process triggers (``torch._dynamo``) is done before any
timing, so neither library's fit carries it. ``fit CPU s`` is the
process's CPU time during the fit (all threads): on a machine shared with other jobs it varies
less than the wall-clock time.

    .venv/bin/python benchmarks/bench_deep.py --epochs 300 --models tvae ctgan --sdv
    .venv/bin/python benchmarks/bench_deep.py --epochs 5 --sample-rows 100000   # quick look

``--bf16-sample`` also samples with ``sample_precision="bfloat16"`` (time and fidelity).

On a machine shared with other jobs, use ``--threads 1``: torch's OpenMP threads wait for each
other at every operation, and a descheduled thread stalls them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import load_rhc, markdown, sdmetrics_quality, split  # noqa: E402

from clinsynth import Metadata, get_synthesizer  # noqa: E402

SDV_FIT_SECONDS = {"tvae": 69.0, "ctgan": 303.0}


def run_sdv(name: str, train, metadata, epochs: int, sample_rows: int, quality: bool) -> dict:
    """SDV's model with the same data, metadata, epochs and threads: time and fidelity."""
    import warnings

    from sdv.metadata import Metadata as SDVMetadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    cls = {"tvae": TVAESynthesizer, "ctgan": CTGANSynthesizer}[name]
    spec = metadata.to_dict()
    for table_spec in spec.get("tables", {}).values():
        table_spec.pop("constraints", None)  # clinsynth's discovered rules: not SDV's words
    sdv_metadata = SDVMetadata.load_from_dict(spec)
    table = next(iter(sdv_metadata.tables))

    def sample(n: int):
        out = model.sample(n)
        return out[table] if isinstance(out, dict) else out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(sdv_metadata, epochs=epochs, enable_gpu=False)
        start = time.perf_counter()
        cpu = time.process_time()
        model.fit({table: train})  # SDV 2 takes {table name: DataFrame}
        fit_s = time.perf_counter() - start
        fit_cpu = time.process_time() - cpu
        start = time.perf_counter()
        sample(sample_rows)
        sample_s = time.perf_counter() - start
        row = {
            "model": f"SDV {name}",
            "epochs": epochs,
            "s/epoch (median)": fit_s / epochs,
            "fit s": fit_s,
            "fit CPU s": fit_cpu,
            f"sample {sample_rows:,} s": sample_s,
            "rows/s": sample_rows / sample_s,
        }
        if quality:
            row["SDMetrics quality"] = sdmetrics_quality(train, sample(len(train)), metadata)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--models", nargs="+", default=["tvae", "ctgan"])
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-quality", action="store_true", help="skip the fidelity scores")
    parser.add_argument("--sdv", action="store_true", help="also run SDV's model, same settings")
    parser.add_argument(
        "--training-precision",
        default=None,
        help="clinsynth models' training_precision (float32, bfloat16 or auto; default: each "
        "model's own default, CTGAN's 'auto')",
    )
    parser.add_argument(
        "--bf16-sample",
        action="store_true",
        help="also sample (time and fidelity) with sample_precision='bfloat16'",
    )
    parser.add_argument("--sdv-sample-rows", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # a benchmark's choice, never the library's
    # The first torch optimizer of a process imports torch._dynamo (0.5-0.9 s here); both
    # libraries create one, and whichever fits first would carry it. Pay it before timing.
    importlib.import_module("torch._dynamo")

    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}", flush=True)

    train, _ = split(load_rhc())
    metadata = Metadata.detect_from_dataframe(train)
    rows = []
    for name in args.models:
        epoch_times: list[float] = []
        last = [time.perf_counter()]

        def progress(
            total: int, done: int, message: str, _t: list = epoch_times, _last: list = last
        ) -> None:
            if message.startswith("epoch"):
                now = time.perf_counter()
                _t.append(now - _last[0])
                _last[0] = now

        model = get_synthesizer(name)(
            metadata,
            epochs=args.epochs,
            device=args.device,
            random_state=args.seed,
            progress=progress,
            **(
                {"training_precision": args.training_precision}
                if args.training_precision is not None
                else {}
            ),
        )
        start = time.perf_counter()
        last[0] = start
        cpu = time.process_time()
        model.fit(train)
        fit_s = time.perf_counter() - start
        fit_cpu = time.process_time() - cpu
        # Per-epoch time without the first epoch (warm-up, transformer fit).
        per_epoch = sorted(epoch_times[1:] or epoch_times)[len(epoch_times[1:] or epoch_times) // 2]
        start = time.perf_counter()
        big = model.sample(args.sample_rows)
        sample_s = time.perf_counter() - start
        del big
        row = {
            "model": name,
            "trained in": model.trained_precision_,
            "epochs": args.epochs,
            "s/epoch (median)": per_epoch,
            "fit s": fit_s,
            "fit CPU s": fit_cpu,
            "SDV fit s (300 ep)": SDV_FIT_SECONDS.get(name, float("nan")),
            "speed-up (scaled to 300 ep)": SDV_FIT_SECONDS.get(name, float("nan"))
            / (fit_s * 300 / args.epochs),
            f"sample {args.sample_rows:,} s": sample_s,
            "rows/s": args.sample_rows / sample_s,
        }
        if not args.no_quality:
            model.reset_sampling()
            synthetic = model.sample(len(train))
            row["SDMetrics quality"] = sdmetrics_quality(train, synthetic, metadata)
            try:
                from clinsynth.evaluation import evaluate_quality

                report = evaluate_quality(train, synthetic, metadata, detection=False)
                row["clinsynth quality"] = float(report.get_score())
            except ImportError:
                pass
        if args.bf16_sample:
            model.sample_precision = "bfloat16"
            start = time.perf_counter()
            big = model.sample(args.sample_rows)
            bf16_s = time.perf_counter() - start
            del big
            row[f"bf16 sample {args.sample_rows:,} s"] = bf16_s
            row["bf16 rows/s"] = args.sample_rows / bf16_s
            if not args.no_quality:
                model.reset_sampling()
                synthetic = model.sample(len(train))
                row["bf16 SDMetrics quality"] = sdmetrics_quality(train, synthetic, metadata)
            model.sample_precision = "float32"
        row["load (1 min)"] = os.getloadavg()[0]
        rows.append(row)
        print(markdown([row]), flush=True)
        if args.sdv:
            sdv_row = run_sdv(
                name, train, metadata, args.epochs, args.sdv_sample_rows, not args.no_quality
            )
            row["speed-up vs SDV (same run)"] = sdv_row["fit s"] / fit_s
            row["CPU speed-up vs SDV (same run)"] = sdv_row["fit CPU s"] / fit_cpu
            sdv_row["load (1 min)"] = os.getloadavg()[0]
            rows.append(sdv_row)
            print(markdown([sdv_row]), flush=True)
    print()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    print(markdown([{k: row.get(k, "") for k in columns} for row in rows]))


if __name__ == "__main__":
    main()
