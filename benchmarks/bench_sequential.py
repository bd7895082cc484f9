"""Sequences of events per patient: clinsynth's SequentialSynthesizer (and SDV's PAR beside it
when SDV is installed) on pbcseq (repeated liver labs, 312 patients) and on simulated repeated
lab trajectories (``simulate_lab_trajectories``: 50,000 patients x about 20 visits by default).

Each run fits in its own process (so its peak memory is its own), samples as many patients as
the real table has, and measures: fit and sample time, peak resident memory, the KS statistic
of events per patient and of the gaps between events, the lag-1 autocorrelation of each
numeric event column (real and synthetic: the largest absolute difference is shown), the mean
KS of the per-step changes, the mean total-variation distance of the categorical transition
matrices, and the temporal-logic violations (events not after the previous one, events after
the end of follow-up).

    .venv/bin/python benchmarks/bench_sequential.py                      # both, ours only
    .venv/bin/python benchmarks/bench_sequential.py --datasets pbcseq --seeds 0 1 2
    .venv/bin/python benchmarks/bench_sequential.py --datasets simulated --patients 5000
    .venv-bench/bin/python benchmarks/bench_sequential.py --sdv --patients 1000 --sdv-epochs 128
    .venv/bin/python benchmarks/bench_sequential.py --datasets mt_pbc --seeds 0 1 2
    .venv/bin/python benchmarks/bench_sequential.py --datasets pbcseq --epsilon none 1 3

``--epsilon`` fits our model once per value (``none``: without differential privacy), with
the patient as the unit of privacy; the model column then reads ``clinsynth_sequential
eps=1``.

``mt_pbc`` is the schema path: ``pbc`` (418 patients) -> ``pbcseq`` (its visits, FK ``id``,
``sequence_index`` ``day``) fitted by ``HMASynthesizer``, the visits learned as sequences under
their synthetic patients (106 real patients have none); the measures are those of the schema
report's sequences section, the upper bound being the parent's ``pbc.time`` (end of follow-up).
SDV's PAR has no schema mode: ``--sdv`` skips this dataset.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
#: Upper time bound of each dataset (end of follow-up), checked for violations.
BOUNDS = {"pbcseq": ["futime"], "simulated": ["followup_days"]}
#: Datasets fitted as a schema (a parent table and its sequence child).
SCHEMAS = {"mt_pbc": ("pbc", "pbcseq", "id", "day")}


def load_schema(name: str) -> tuple[dict[str, pd.DataFrame], Any]:
    from clinsynth import Metadata

    parent, child, key, index = SCHEMAS[name]
    folder = SHARED / name
    if not folder.exists():
        raise SystemExit(f"{folder} is missing: the {name} benchmark needs ../shared/data.")
    tables = {t: pd.read_csv(folder / f"{t}.csv") for t in (parent, child)}
    metadata = Metadata.detect_from_dataframes(tables)
    metadata.set_sequence_key(key, table_name=child)
    metadata.set_sequence_index(index, table_name=child)
    return tables, metadata


def _run_schema(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The schema path: HMASynthesizer with the child learned as sequences."""
    from clinsynth.multitable import HMASynthesizer
    from clinsynth.multitable._sequence import sequence_figures

    tables, metadata = load_schema(name)
    parent, child, key, _ = SCHEMAS[name]
    start = time.perf_counter()
    model = HMASynthesizer(
        metadata,
        epochs=args["epochs"],
        batch_size=args["batch_size"],
        random_state=args["seed"],
        device=args["device"],
    ).fit(tables)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = model.sample()
    sample = time.perf_counter() - start
    scores = sequence_figures(child, tables, synthetic, metadata)["measures"]
    events = synthetic[child].groupby(key).size()
    return {
        "patients": len(tables[parent]),
        "rows": len(tables[child]),
        "epochs": model.get_table_synthesizer(child).epochs_trained_,
        "fit_s": fit,
        "sample_s": sample,
        "synthetic_rows": len(synthetic[child]),
        "parents_without_events": {
            "real": int((~tables[parent][key].isin(tables[child][key])).sum()),
            "synthetic": int(len(synthetic[parent]) - len(events)),
        },
        **scores,
    }


def load(name: str, patients: int, mean_visits: float) -> tuple[pd.DataFrame, Any]:
    from clinsynth import Metadata
    from clinsynth.simulate import simulate_lab_trajectories

    if name == "simulated":
        return simulate_lab_trajectories(patients, mean_visits=mean_visits, seed=0)
    path = SHARED / "mt_pbc" / "pbcseq.csv"
    if not path.exists():
        raise SystemExit(f"{path} is missing: the pbcseq benchmark needs ../shared/data.")
    df = pd.read_csv(path)
    metadata = Metadata.detect_from_dataframe(df)
    metadata.set_sequence_key("id")
    metadata.set_sequence_index("day")
    return df, metadata


def _fit_ours(
    df: pd.DataFrame, metadata: Any, args: dict[str, Any]
) -> tuple[pd.DataFrame, float, float, int]:
    from clinsynth import SequentialSynthesizer

    start = time.perf_counter()
    model = SequentialSynthesizer(
        metadata,
        epochs=args["epochs"],
        batch_size=args["batch_size"],
        random_state=args["seed"],
        device=args["device"],
        epsilon=args.get("epsilon"),
    ).fit(df)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = model.sample(df[metadata.get_table().sequence_key].nunique())
    return synthetic, fit, time.perf_counter() - start, model.epochs_trained_


def _fit_par(
    df: pd.DataFrame, metadata: Any, args: dict[str, Any]
) -> tuple[pd.DataFrame, float, float]:
    from sdv.metadata import Metadata as SDVMetadata
    from sdv.sequential import PARSynthesizer

    table = metadata.get_table()
    key, index = table.sequence_key, table.sequence_index
    sdv_md = SDVMetadata.detect_from_dataframes({"events": df}, infer_keys=None)
    sdv_md.update_column(key, sdtype="id", table_name="events")
    sdv_md.set_sequence_key(key, table_name="events")
    sdv_md.set_sequence_index(index, table_name="events")
    context = args["context_columns"]
    start = time.perf_counter()
    model = PARSynthesizer(
        sdv_md, context_columns=context, epochs=args["sdv_epochs"], verbose=False
    )
    try:
        model.fit({"events": df})  # SDV 2: a dict of one table
    except TypeError:
        model.fit(df)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    sample = getattr(model, "sample_sequences", None)  # SDV 2 (a dict of tables)
    if sample is not None:
        synthetic = next(iter(sample(df[key].nunique()).values()))
    else:
        synthetic = model.sample(num_sequences=df[key].nunique())
    return synthetic, fit, time.perf_counter() - start


def _run(queue: Any, model: str, name: str, args: dict[str, Any]) -> None:
    """One fit + sample + evaluation, in its own process."""
    import torch

    from clinsynth.evaluation import evaluate_sequences

    torch.set_num_threads(args["threads"])
    if name in SCHEMAS:
        scores = _run_schema(name, args)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(
            {"dataset": name, "model": model, "seed": args["seed"], "peak_mb": peak_mb, **scores}
        )
        return
    patients = args["patients"]
    if model == "sdv_par" and args["sdv_patients"] is not None:
        patients = args["sdv_patients"]
    df, metadata = load(name, patients, args["mean_visits"])
    table = metadata.get_table()
    if model == "sdv_par":
        # PAR needs its context columns named: those constant within every patient.
        key = table.sequence_key
        others = [c for c in df.columns if c not in (key, table.sequence_index)]
        constant = df.groupby(key)[others].nunique(dropna=False).max() <= 1
        args = {**args, "context_columns": [c for c in others if constant[c]]}
        synthetic, fit, sample = _fit_par(df, metadata, args)
    else:
        synthetic, fit, sample, trained = _fit_ours(df, metadata, args)
    scores = evaluate_sequences(df, synthetic, metadata, upper_bounds=BOUNDS[name])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "dataset": name,
            "model": model,
            "seed": args["seed"],
            "patients": int(df[table.sequence_key].nunique()),
            "rows": len(df),
            "epochs": args["sdv_epochs"] if model == "sdv_par" else trained,
            "fit_s": fit,
            "sample_s": sample,
            "peak_mb": peak_mb,
            **scores,
        }
    )


def run(model: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(queue, model, name, args))
    process.start()
    result = {"dataset": name, "model": model, "seed": args["seed"], "error": "failed"}
    deadline = time.monotonic() + args["timeout"]
    while time.monotonic() < deadline:
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # noqa: BLE001 - queue.Empty: still running, or dead
            if not process.is_alive():
                try:  # it may have put its result just before ending
                    result = queue.get(timeout=1)
                except Exception:  # noqa: BLE001, S110 - nothing came: it failed
                    pass
                break
    if process.is_alive():
        process.kill()
    process.join()
    return result


def row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['dataset']} | {r['model']} | {r['seed']} | failed or timed out |"
    lag, ranks = (
        max(
            (abs(v["real"] - v["synthetic"]) for v in r[k].values() if not np.isnan(v["real"])),
            default=float("nan"),
        )
        for k in ("lag1", "lag1_spearman")
    )
    steps = np.nanmean(list(r["step_ks"].values())) if r["step_ks"] else float("nan")
    trans = np.nanmean(list(r["transitions"].values())) if r["transitions"] else float("nan")
    violations = sum(r["violations"].values())
    return (
        f"| {r['dataset']} | {r['model']} | {r['seed']} | {r['patients']:,} | {r['rows']:,} | "
        f"{r['epochs']} | {r['fit_s']:.1f} | {r['sample_s']:.1f} | {r['peak_mb']:,.0f} | "
        f"{r['events_per_patient_ks']:.3f} | {r['gap_ks']:.3f} | {lag:.3f} | {ranks:.3f} | "
        f"{steps:.3f} | "
        f"{trans:.3f} | {violations} |"
    )


HEADER = (
    "| dataset | model | seed | patients | rows | epochs | fit s | sample s | peak MB | "
    "events/patient KS | gap KS | max abs lag-1 diff | same, ranks | step KS (mean) | "
    "transition TV (mean) | violations |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    "---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["pbcseq", "simulated"])
    parser.add_argument("--patients", type=int, default=50_000, help="simulated patients")
    parser.add_argument("--mean-visits", type=float, default=20.0)
    parser.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=None,
        help="epochs per dataset (default: 150 for pbcseq, 10 for simulated)",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sdv", action="store_true", help="also SDV's PARSynthesizer")
    parser.add_argument("--sdv-epochs", type=int, default=128, help="PAR's epochs (its default)")
    parser.add_argument(
        "--sdv-patients",
        type=int,
        default=None,
        help="simulated patients for PAR (default: as many as ours)",
    )
    parser.add_argument(
        "--epsilon",
        nargs="+",
        default=["none"],
        help="budgets of our model, one run each ('none': no differential privacy)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    ns = parser.parse_args()
    epochs = dict(zip(ns.datasets, ns.epochs, strict=False)) if ns.epochs else {}
    results = []
    print(HEADER, flush=True)
    for name in ns.datasets:
        for seed in ns.seeds:
            args = {
                "patients": ns.patients,
                "mean_visits": ns.mean_visits,
                "epochs": epochs.get(name),
                "batch_size": ns.batch_size,
                "seed": seed,
                "threads": ns.threads,
                "device": ns.device,
                "sdv_epochs": ns.sdv_epochs,
                "sdv_patients": ns.sdv_patients,
                "timeout": ns.timeout,
            }
            budgets = [None if e.lower() == "none" else float(e) for e in ns.epsilon]
            models = [
                ("clinsynth_sequential" + (f" eps={e:g}" if e is not None else ""), e)
                for e in budgets
            ]
            models += [("sdv_par", None)] if ns.sdv else []
            if name in SCHEMAS:  # PAR has no schema mode
                models = [("clinsynth_hma_sequential", None)]
            for model, epsilon in models:
                result = run(model, name, {**args, "epsilon": epsilon})
                results.append(result)
                print(row(result), flush=True)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
