"""Benchmark against the field: every registered model (and SDV's) on clinical datasets.

For each dataset: a fixed 70/30 train/holdout split (seed 0). For each model: fit time, sampling
throughput, peak memory (resident set growth of a fresh worker process during fit and sample),
the fidelity of as many synthetic rows as training rows (Column Shapes, Column Pair Trends and
their mean, the quality score; detection AUC of the better of two classifiers, 0.5 is best),
ML utility (ROC AUC of histogram gradient boosting trained on synthetic or real rows and tested on
the holdout: TSTR and TRTR) and privacy against the holdout (DCR share, 0.5 is best;
membership-inference AUC, 0.5 is best). Every (dataset, model) runs in its own process, so memory
is measured cleanly and a model that runs over ``--timeout`` is reported, not waited for.

Small tables make every measure noisy (the DCR share's standard error is 0.5/sqrt(holdout
rows), 0.03-0.05 on a few hundred rows), so ``--splits`` repeats the split with more seeds
(``--splits 5``, or per dataset ``--splits heart_failure_clinical=5,breast_cancer_wisconsin=5``):
split ``k`` uses seed ``--seed + k`` for the split, the model and the evaluation, and the tables
and the goal give the mean over the splits with its standard error (``mean ± se``).

Where SDV is installed (``pip install clinsynth[bench]``) its GaussianCopula, TVAE and CTGAN run
side by side on the same split, with the same epochs and SDV's other defaults.

A baseline row, ``independent``, samples each column independently from the training rows'
own values (its marginal, missing values included): it scores near 1 on shapes and is detected
at once, so every other figure is read against it. It is never "the best clinsynth model".

    .venv/bin/python benchmarks/bench_field.py --epochs 100 --output docs/BENCHMARKS.md
    .venv/bin/python benchmarks/bench_field.py --datasets heart_failure_clinical \\
        --models gaussian_copula tabddpm sdv_gaussian_copula --epochs tabddpm=300,tvae=50
    .venv/bin/python benchmarks/bench_field.py --from-results benchmarks/results/field.jsonl \\
        --output docs/BENCHMARKS.md   # re-render after re-running some models
    .venv/bin/python benchmarks/bench_field.py --datasets heart_disease_uci --splits 5

The population simulator's rows are simulated once by the main process (seed ``--seed``) and
read back by every worker.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import shared_path, split  # noqa: E402

#: Dataset -> its binary target (heart_disease_uci: num > 0).
DATASETS: dict[str, str] = {
    "rhc": "fac_swang1",
    "support2": "hospdead",
    "heart_disease_uci": "num",
    "heart_failure_clinical": "DEATH_EVENT",
    "breast_cancer_wisconsin": "target",
    "simulated_population": "type2_diabetes",
    "actg175": "cens",
    "whas500": "fstat",
}
#: A model name ending so is that model with ``refine=True`` (density-ratio refinement).
REFINED = "+refine"
SDV_MODELS = ("sdv_gaussian_copula", "sdv_tvae", "sdv_ctgan")
#: Reference rows that are no model of either library.
BASELINES = ("independent",)
DEEP = ("tvae", "ctgan", "cwgan", "hvaegan", "tabddpm", "sdv_tvae", "sdv_ctgan")
#: Measures shown as the mean over splits with its standard error; then those shown as a mean.
WITH_SE = (
    "quality",
    "shapes",
    "pair_trends",
    "detection_auc",
    "tstr",
    "trtr",
    "dcr_share",
    "mia_auc",
)
MEAN_ONLY = {"fit_s": 1, "sample_rows_per_s": 0, "peak_mib": 0}  # and their rounding


def load_dataset(name: str) -> tuple[pd.DataFrame, Any, str]:
    """The table, its metadata and its target (a binary outcome)."""
    from clinsynth import Metadata

    target = DATASETS[name]
    if name == "simulated_population":
        # Simulated once by the main process and read back, so every worker sees the same rows.
        cache = Path(os.environ["BENCH_FIELD_SIMULATED"])
        md = Metadata.load_from_json(cache.with_suffix(".json"))
        return pd.read_parquet(cache), md, target
    # heart_failure_clinical writes platelets with a thousands separator ("265,000"): without
    # ``thousands`` that count is read as a 176-level string column.
    df = pd.read_csv(shared_path(name, f"{name}.csv"), thousands=",", low_memory=False)
    if name == "heart_disease_uci":
        df["num"] = (df["num"] > 0).astype(int)  # any disease vs none
    md = Metadata.detect_from_dataframe(df)
    table = md.get_table()
    if table.columns[target]["sdtype"] not in ("categorical", "boolean"):
        md.update_column(target, sdtype="categorical")
    return df, md, target


def sdv_synthesizer(name: str, md: Any, train: pd.DataFrame, epochs: int | None, seed: int) -> Any:
    import torch
    from sdv.metadata import Metadata as SDVMetadata
    from sdv.single_table import (
        CTGANSynthesizer,
        GaussianCopulaSynthesizer,
        TVAESynthesizer,
    )

    np.random.seed(seed)  # noqa: NPY002 (SDV has no seed parameter; a worker may set it)
    torch.manual_seed(seed)
    keys = ("columns", "primary_key", "alternate_keys", "sequence_key", "sequence_index")
    table = {k: v for k, v in md.get_table().to_dict().items() if k in keys}  # no column_groups
    sdv_md = SDVMetadata.load_from_dict({"METADATA_SPEC_VERSION": "V1", "tables": {"table": table}})
    if name == "sdv_gaussian_copula":
        return GaussianCopulaSynthesizer(sdv_md)
    cls = TVAESynthesizer if name == "sdv_tvae" else CTGANSynthesizer
    return cls(sdv_md, **({"epochs": epochs} if epochs else {}))


class IndependentMarginals:
    """The baseline: every column drawn on its own from the training rows' values."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def fit(self, train: pd.DataFrame) -> IndependentMarginals:
        self.train = train
        return self

    def sample(self, num_rows: int) -> pd.DataFrame:
        n = len(self.train)
        return pd.DataFrame(
            {
                c: self.train[c].to_numpy()[self.rng.integers(0, n, num_rows)]
                for c in self.train.columns
            }
        )


class SDVAdapter:
    """SDV 2 takes and returns ``{table name: DataFrame}``; older SDV a DataFrame."""

    def __init__(self, synth: Any) -> None:
        self.synth = synth
        self.epochs = synth.get_parameters().get("epochs")

    def fit(self, train: pd.DataFrame) -> None:
        try:
            self.synth.fit({"table": train})
        except (AttributeError, TypeError):  # SDV 1.x
            self.synth.fit(train)

    def sample(self, num_rows: int) -> pd.DataFrame:
        out = self.synth.sample(num_rows)
        return next(iter(out.values())) if isinstance(out, dict) else out


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_one(
    dataset: str,
    model: str,
    epochs: int | None,
    seed: int,
    auto_budget: float,
    threads: int,
    epochs_spec: str | None = None,
) -> dict[str, Any]:
    """Fit, sample and evaluate one model on one dataset (in a worker process)."""
    import torch

    torch.set_num_threads(threads)  # a benchmark's choice, never the library's
    from clinsynth import get_synthesizer
    from clinsynth.evaluation import evaluate_privacy, evaluate_quality, evaluate_utility

    df, md, target = load_dataset(dataset)
    train, holdout = split(df, 0.7, seed)
    base_rss = rss_mib()
    start = time.perf_counter()
    used_epochs = None
    if model == "independent":
        synth = IndependentMarginals(seed).fit(train)
    elif model.startswith("sdv_"):
        synth = SDVAdapter(sdv_synthesizer(model, md, train, epochs, seed))
        synth.fit(train)
        used_epochs = synth.epochs
    else:
        cls = get_synthesizer(model.removesuffix(REFINED))
        params: dict[str, Any] = {"random_state": seed}
        if model.endswith(REFINED):
            params["refine"] = True
        if model == "auto":
            # auto's candidates get the epochs the same run gives the models on their own.
            params.update(time_budget=auto_budget, target=target, epochs=epochs)
            per_model = {
                c: {"epochs": n}
                for c in _registered()
                if c in DEEP and (n := epochs_for(epochs_spec, c)) and epochs is None
            }
            if per_model:
                params["candidate_params"] = per_model
        elif epochs and "epochs" in cls._param_names():
            params["epochs"] = epochs
        if model.removesuffix(REFINED) == "dp_marginal":
            params["epsilon"] = 3.0
        if "condition_column" in cls._param_names():  # the outcome is the class label
            params["condition_column"] = target
        synth = cls(md, **params)
        synth.fit(train)
        used_epochs = getattr(synth, "epochs", None)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    syn = synth.sample(len(train))
    sample_s = time.perf_counter() - start
    peak = rss_mib() - base_rss
    syn = syn[list(train.columns)]
    table = md.get_table()
    quality = evaluate_quality(
        train, syn, table, max_rows_detection=4000, max_rows_precision=2000, random_state=seed
    )
    utility = evaluate_utility(train, syn, table, target=target, holdout=holdout, random_state=seed)
    privacy = evaluate_privacy(
        train, syn, table, holdout=holdout, max_rows=4000, n_attacks=200, random_state=seed
    )
    aucs = [v for v in quality.metrics["detection_auc"].values() if v == v]
    row = {
        "dataset": dataset,
        "model": model,
        "epochs": used_epochs,
        "fit_s": round(fit_s, 1),
        "sample_rows_per_s": round(len(train) / max(sample_s, 1e-9)),
        "peak_mib": round(peak),
        "quality": quality.get_score(),
        "shapes": quality.metrics["column_shapes"],
        "pair_trends": quality.metrics["column_pair_trends_all_pairs"],
        "detection_auc": max(aucs) if aucs else None,
        "tstr": utility.metrics["tstr"].get("HistGradientBoosting"),
        "trtr": utility.metrics["trtr"].get("HistGradientBoosting"),
        "dcr_share": privacy.metrics["dcr_share"],
        "mia_auc": privacy.metrics["mia_auc"],
    }
    row["split_seed"] = seed
    if model == "auto":
        board = synth.leaderboard_.set_index("model")
        row["chosen"] = synth.chosen_
        row["note"] = (
            f"chose {synth.chosen_} (validation DCR share "
            + ", ".join(
                f"{name} {board.loc[name, 'dcr_share']:.2f}"
                for name in board.index
                if board.loc[name, "dcr_share"] == board.loc[name, "dcr_share"]
            )
            + ")"
        )
        why = board.loc[synth.chosen_, "note"]
        if isinstance(why, str) and why:
            row["note"] += f"; {why}"
    return row


def _registered() -> list[str]:
    from clinsynth import list_synthesizers

    return list(list_synthesizers())


def sdv_available() -> bool:
    try:
        import sdv  # noqa: F401
    except ImportError:
        return False
    return True


def epochs_for(spec: str | None, model: str) -> int | None:
    """``"50"`` for every deep model, or ``"tabddpm=300,tvae=50"`` per model (others: default)."""
    if not spec:
        return None
    model = model.removesuffix(REFINED)
    if "=" not in spec:
        return int(spec) if model in DEEP or model == "auto" else None
    pairs = dict(item.split("=") for item in spec.split(","))
    if model == "auto":
        return None
    return int(pairs[model]) if model in pairs else None


def splits_for(spec: str | None, dataset: str) -> int:
    """``"5"`` for every dataset, or ``"heart_failure_clinical=5,rhc=2"`` (others: 1 split)."""
    if not spec:
        return 1
    if "=" not in spec:
        return int(spec)
    pairs = dict(item.split("=") for item in spec.split(","))
    return int(pairs.get(dataset, 1))


def split_seed(row: dict[str, Any]) -> int:
    """The seed of a row's split (rows written before ``--splits`` existed: the seed-0 split)."""
    return int(row.get("split_seed", 0))


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per dataset and model: the mean of each measure over its scored splits.

    A measure of ``WITH_SE`` gets its standard error over the splits as ``<measure>_se`` (the
    standard deviation / sqrt(splits); None with one split). ``n`` counts the scored splits,
    ``seeds`` lists them; the note says which splits failed and, for ``auto``, what it chose.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    out = []
    for (dataset, model), part in groups.items():
        part = sorted(part, key=split_seed)
        ok = [r for r in part if r.get("quality") is not None]
        agg: dict[str, Any] = {
            "dataset": dataset,
            "model": model,
            "n": len(ok),
            "seeds": [split_seed(r) for r in ok],
            "epochs": next((r["epochs"] for r in ok or part if r.get("epochs") is not None), None),
        }
        for measure in (*MEAN_ONLY, *WITH_SE):
            values = [float(r[measure]) for r in ok if r.get(measure) is not None]
            mean = float(np.mean(values)) if values else None
            if measure in MEAN_ONLY and mean is not None:
                digits = MEAN_ONLY[measure]
                mean = round(mean, digits) if digits else round(mean)
            agg[measure] = mean
            if measure in WITH_SE:
                se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else None
                agg[measure + "_se"] = None if se is None else float(se)
        agg["note"] = _aggregate_note(part, ok)
        out.append(agg)
    return out


def _aggregate_note(part: list[dict[str, Any]], ok: list[dict[str, Any]]) -> str | None:
    if len(part) == 1:
        return part[0].get("note")
    notes = []
    chosen: dict[str, list[int]] = {}
    for r in ok:
        name = r.get("chosen") or (r.get("note") or "").removeprefix("chose ").split(" ")[0]
        if r["model"] == "auto" and name:
            chosen.setdefault(name, []).append(split_seed(r))
    if chosen:
        notes.append(
            "chose "
            + ", ".join(
                f"{name} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
                for name, seeds in sorted(chosen.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            )
        )
    notes += [f"seed {split_seed(r)}: {r.get('note')}" for r in part if r not in ok]
    return "; ".join(notes) or None


def worker_main(args: argparse.Namespace) -> None:
    row = run_one(
        args.worker[0],
        args.worker[1],
        args.worker_epochs,
        args.seed,
        args.auto_budget,
        args.threads,
        args.epochs,
    )
    print("RESULT " + json.dumps(row, default=float))


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def cell(row: dict[str, Any], column: str) -> str:
    """A table cell: ``mean ± se`` for a measure averaged over splits, else the value."""
    se = row.get(column + "_se")
    if column in WITH_SE and se is not None and row.get(column) is not None:
        return f"{fmt(row[column])} ± {fmt(se)}"
    if column in MEAN_ONLY:
        value = row.get(column)
        return "" if value is None else f"{value:.{MEAN_ONLY[column]}f}"
    return fmt(row.get(column))


def render(rows: list[dict[str, Any]], commands: list[str], args: argparse.Namespace) -> str:
    """The markdown: a table per dataset (means over its splits) and the two goal tables.

    Within a dataset the models come in one order whatever the order of the runs: ``auto``,
    the other registered models, then SDV's.
    """
    datasets = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in rows))}
    order = {m: i for i, m in enumerate([*BASELINES, "auto", *_registered(), *SDV_MODELS])}
    rows = sorted(
        aggregate(rows),
        key=lambda r: (datasets[r["dataset"]], order.get(r["model"], len(order))),
    )
    cols = ["model", "epochs", *MEAN_ONLY, *WITH_SE, "note"]
    out = [
        "# Benchmarks against the field",
        "",
        "Made by:",
        "",
        *[f"    {command}" for command in commands],
        "",
        f"on {os.cpu_count()} CPU cores shared with other work (torch threads: {args.threads}), "
        f"{time.strftime('%Y-%m-%d')}. A 70/30 train/holdout split (seed {args.seed}); where a "
        "dataset's heading says so, the split is repeated with more seeds (the split's seed "
        "also seeds the model and the evaluation) and each figure is the mean over the splits, "
        "with its standard error after `±` (standard deviation / sqrt(splits); times and memory "
        "as means). As many synthetic rows as training rows. `quality` is the SDMetrics-style "
        "score (mean of Column Shapes and Column Pair Trends over the pairs associated in the "
        "real data); "
        "`pair_trends` averages every pair. `detection_auc`: the better of two classifiers "
        "telling real training rows from synthetic ones (0.5 best). `tstr`/`trtr`: holdout ROC "
        "AUC of gradient boosting trained on synthetic/real rows. `dcr_share`: share of "
        "synthetic rows closer to a training row than to a holdout row (0.5 best); `mia_auc`: "
        "distance-based membership inference (0.5 best). `peak_mib`: growth of the worker's "
        "peak resident memory during fit and sample. `independent` is the baseline: each "
        "column drawn on its own from the training rows (read every figure against it). "
        "Models prefixed `sdv_` are SDV "
        f"{_sdv_version()} with its defaults except epochs. `auto` had a time budget of "
        f"{args.auto_budget:.0f} s and the same epochs cap. Models with a `condition_column` "
        "(tabddpm, cwgan) get the target as their class label.",
        "",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        part = [r for r in rows if r["dataset"] == dataset]
        out += [f"## {dataset} (target `{DATASETS.get(dataset)}`)", ""]
        seeds = sorted({s for r in part for s in r["seeds"]})
        if len(seeds) > 1:
            out += [
                f"Mean ± standard error over {len(seeds)} splits (seeds "
                f"{', '.join(map(str, seeds))}); the note gives any split that failed.",
                "",
            ]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for r in part:
            out.append("| " + " | ".join(cell(r, c) for c in cols) + " |")
        out.append("")
    out += summary(rows)
    return "\n".join(out) + "\n"


_YES_NO = {True: "yes", False: "no", None: "n/a"}


def _by_dataset(rows: list[dict[str, Any]]):
    """``(dataset, clinsynth rows, SDV rows)`` per dataset, in order, scored rows only.

    ``rows`` are aggregated (see :func:`aggregate`): the goal is judged on the means.
    """
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        ok = [r for r in rows if r["dataset"] == dataset and r.get("quality") is not None]
        theirs = [r for r in ok if r["model"].startswith("sdv_")]
        ours = [r for r in ok if not r["model"].startswith("sdv_") and r["model"] not in BASELINES]
        yield dataset, ours, theirs


def _table(title: str, head: list[str]) -> list[str]:
    return [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def _splits(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    counts = sorted({r["n"] for r in ours + theirs})
    return "-".join(map(str, counts[:: max(len(counts) - 1, 1)]))


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per dataset: the best clinsynth model against the best SDV model (the issue's goal).

    ``rows`` are aggregated: quality, detection AUC and DCR share are means over the splits.
    """
    head = [
        "dataset",
        "splits",
        "best clinsynth (quality)",
        "quality",
        "best SDV (quality)",
        "quality",
        "fidelity beats SDV?",
        "lowest detection AUC clinsynth (model)",
        "lowest detection AUC SDV",
        "detection beats SDV?",
        "DCR share of the best clinsynth",
        "DCR in [0.45, 0.55]?",
    ]
    lines = _table("## Goal: the best clinsynth model against the best SDV model", head)
    yes_no = _YES_NO
    for dataset, ours, theirs in _by_dataset(rows):
        if not ours:
            continue
        best = max(ours, key=lambda r: r["quality"])
        least = min(ours, key=lambda r: r["detection_auc"])
        fid = det = None
        sdv_cells = ["(SDV not run)", "", ""]
        if theirs:
            best_sdv = max(theirs, key=lambda r: r["quality"])
            least_sdv = min(theirs, key=lambda r: r["detection_auc"])
            fid = best["quality"] > best_sdv["quality"]
            det = least["detection_auc"] < least_sdv["detection_auc"]
            sdv_cells = [
                best_sdv["model"],
                cell(best_sdv, "quality"),
                cell(least_sdv, "detection_auc"),
            ]
        cells = [
            dataset,
            _splits(ours, theirs),
            best["model"],
            cell(best, "quality"),
            sdv_cells[0],
            sdv_cells[1],
            yes_no[fid],
            f"{cell(least, 'detection_auc')} ({least['model']})",
            sdv_cells[2],
            yes_no[det],
            cell(best, "dcr_share"),
            yes_no[0.45 <= best["dcr_share"] <= 0.55],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", *summary_private(rows)]


def summary_private(rows: list[dict[str, Any]]) -> list[str]:
    """The same comparison restricted to the clinsynth models whose DCR share is in range.

    The table above judges the model with the best quality, whatever its DCR share; a model that
    wins fidelity by staying close to its training rows then fails the goal. This one asks
    whether *some* clinsynth model meets all three conditions at once (the choice auto makes).
    """
    head = [
        "dataset",
        "splits",
        "best clinsynth with DCR in [0.45, 0.55]",
        "quality",
        "detection AUC",
        "DCR share",
        "quality beats SDV's best?",
        "detection beats SDV's lowest?",
    ]
    lines = _table(
        "Among the clinsynth models whose DCR share is in [0.45, 0.55] (SDV's side unchanged):",
        head,
    )
    yes_no = _YES_NO
    for dataset, ours, theirs in _by_dataset(rows):
        private = [r for r in ours if 0.45 <= r["dcr_share"] <= 0.55]
        if not private:
            cells = [dataset, _splits(ours, theirs), "(none)", "", "", "", "no", "no"]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        best = max(private, key=lambda r: r["quality"])
        fid = det = None
        if theirs:
            fid = best["quality"] > max(r["quality"] for r in theirs)
            det = best["detection_auc"] < min(r["detection_auc"] for r in theirs)
        cells = [
            dataset,
            _splits(ours, theirs),
            best["model"],
            cell(best, "quality"),
            cell(best, "detection_auc"),
            cell(best, "dcr_share"),
            yes_no[fid],
            yes_no[det],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _sdv_version() -> str:
    try:
        import sdv

        return sdv.__version__
    except ImportError:
        return "(not installed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="registered names, sdv_gaussian_copula/sdv_tvae/sdv_ctgan and the baseline "
        "'independent' (default: the baseline, all registered, auto and dp_marginal "
        "(epsilon 3) included, and SDV's where installed)",
    )
    parser.add_argument(
        "--epochs",
        default=None,
        help="epochs of every deep model ('100') or per model "
        "('tabddpm=300,tvae=50'); default: each model's own",
    )
    parser.add_argument(
        "--auto-budget", type=float, default=180.0, help="time budget of the auto model, seconds"
    )
    parser.add_argument("--timeout", type=float, default=1200.0, help="per model and dataset")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--splits",
        default=None,
        help="train/holdout splits per dataset, seeds --seed .. --seed+K-1: 'K' for every "
        "dataset or 'heart_failure_clinical=5,breast_cancer_wisconsin=5' (others: 1); the "
        "tables give the mean and its standard error",
    )
    parser.add_argument("--output", default=None, help="markdown file to write (atomic)")
    parser.add_argument(
        "--results",
        default="benchmarks/results/field.jsonl",
        help="raw rows, one JSON object per line",
    )
    parser.add_argument(
        "--from-results",
        default=None,
        help="only render --output from a results file (the last row of each "
        "dataset, model and split seed wins), e.g. after re-running one model",
    )
    parser.add_argument(
        "--made-by",
        action="append",
        default=[],
        help="with --from-results: the commands that made the rows",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--worker-epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    if args.from_results:
        latest: dict[tuple[str, str, int], dict[str, Any]] = {}
        for line in Path(args.from_results).read_text().splitlines():
            row = json.loads(line)
            latest[(row["dataset"], row["model"], split_seed(row))] = row
        order = {d: i for i, d in enumerate(DATASETS)}
        rows = sorted(latest.values(), key=lambda r: order.get(r["dataset"], len(order)))
        text = render(rows, args.made_by, args)
        if args.output:
            _write(args.output, text)
        else:
            print(text)
        return
    models = args.models or [
        *BASELINES,
        *_registered(),
        *(SDV_MODELS if sdv_available() else ()),
    ]
    if any(m.startswith("sdv_") for m in models) and not sdv_available():
        raise SystemExit("SDV is not installed: pip install 'clinsynth[bench]' (or drop sdv_*).")
    command = "python benchmarks/bench_field.py " + " ".join(sys.argv[1:])
    if "simulated_population" in args.datasets:
        from clinsynth.simulate import simulate_population

        cache = Path(args.results).with_name("field_simulated_population.parquet")
        cache.parent.mkdir(parents=True, exist_ok=True)
        df, md = simulate_population(3000, seed=args.seed)
        df.to_parquet(cache, index=False)
        md.save_to_json(cache.with_suffix(".json"))
        os.environ["BENCH_FIELD_SIMULATED"] = str(cache)
    rows: list[dict[str, Any]] = []
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    run_started = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    jobs = [
        (dataset, args.seed + k, model)
        for dataset in args.datasets
        for k in range(splits_for(args.splits, dataset))
        for model in models
    ]
    for dataset, seed, model in jobs:
        epochs = epochs_for(args.epochs, model)
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            dataset,
            model,
            "--seed",
            str(seed),
            "--threads",
            str(args.threads),
            "--auto-budget",
            str(args.auto_budget),
        ]
        if epochs:
            cmd += ["--worker-epochs", str(epochs)]
        if args.epochs:
            cmd += ["--epochs", args.epochs]
        started = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            row = {
                "dataset": dataset,
                "model": model,
                "epochs": epochs,
                "split_seed": seed,
                "note": f"timeout after {args.timeout:.0f} s",
            }
        else:
            found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode == 0 and found:
                row = json.loads(found[-1][len("RESULT ") :])
            else:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                row = {
                    "dataset": dataset,
                    "model": model,
                    "epochs": epochs,
                    "split_seed": seed,
                    "note": f"failed: {last[:120]}",
                }
        row["wall_s"] = round(time.perf_counter() - started, 1)
        row["run"] = run_started
        rows.append(row)
        with results.open("a") as fh:
            fh.write(json.dumps(row, default=float) + "\n")
        print(json.dumps(row, default=float), flush=True)
        if args.output:
            _write(args.output, render(rows, [command], args))
    text = render(rows, [command], args)
    if args.output:
        _write(args.output, text)
    else:
        print(text)


#: Where the hand-written part of the markdown output begins; it is kept when the output is
#: rewritten (everything above it is generated).
HAND_WRITTEN = "## Reading the figures"


def _write(path: str, text: str) -> None:
    target = Path(path)
    if target.suffix == ".md" and target.exists():
        old = target.read_text()
        if HAND_WRITTEN in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(HAND_WRITTEN) :]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)


if __name__ == "__main__":
    main()
