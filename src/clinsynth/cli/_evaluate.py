"""``clinsynth evaluate``: the HTML (and JSON) evaluation report of a synthetic table, or of a
synthetic schema when REAL and SYNTHETIC are folders of CSV files (one file per table)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clinsynth.cli._app import app

console = Console(highlight=False)


@app.command("evaluate")
def evaluate_command(
    real: Path = typer.Argument(
        ...,
        help="Real data the model was trained on (CSV/Excel/Parquet), or a folder of CSVs "
        "(one per table) for a multi-table report.",
    ),
    synthetic: Path = typer.Argument(
        ..., help="Synthetic data to evaluate (a file, or a folder of CSVs like REAL)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="HTML report to write."),
    metadata: Path | None = typer.Option(
        None, "--metadata", "-m", help="Metadata JSON; detected from REAL when not given."
    ),
    holdout: Path | None = typer.Option(
        None,
        "--holdout",
        help="Real records the model never saw (needed for privacy, utility); default: "
        "MODEL.holdout.csv beside the --model, written by `clinsynth fit --holdout`.",
    ),
    target: str | None = typer.Option(None, "--target", help="Column to predict (ML utility)."),
    sensitive: list[str] | None = typer.Option(
        None, "--sensitive", help="Sensitive column for inference risk (repeat for several)."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="The saved model (folder or .zip): its training loss curve, and the rows it kept "
        "aside (MODEL.holdout.csv), which are then taken out of REAL if REAL holds them.",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
    no_detection: bool = typer.Option(
        False, "--no-detection", help="Skip the detection classifiers (faster)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of every subsample and model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    dask: bool = typer.Option(
        False,
        "--dask",
        help="Fidelity only, computed partition by partition on Dask (clinsynth[dask]): "
        "tables larger than memory; REAL and SYNTHETIC may be Parquet files or folders of parts.",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="With --dask: the Dask scheduler to compute on (tcp://host:8786); default: this "
        "machine's threads.",
    ),
) -> None:
    """Evaluate SYNTHETIC against REAL: diagnostic, fidelity, ML utility and privacy risk.

    With two folders: keys and links, children per parent, parent-child trends and each
    table's fidelity (the multi-table report).

    Examples:
      clinsynth fit patients.csv --holdout 0.2 -o model
      clinsynth sample model -n 1000 -o synthetic.csv
      clinsynth evaluate patients.csv synthetic.csv --model model --target outcome -o report.html
      clinsynth evaluate train.csv synthetic.csv --holdout holdout.csv -o report.html
      clinsynth evaluate real.parquet parts/ --dask -m metadata.json -o fidelity.html
    """
    from clinsynth.io._paths import check_output_path

    for written in (output, json_path):
        if written is not None:
            check_output_path([real, synthetic, metadata, holdout, model], written, "metadata")
    if dask or scheduler is not None:
        _evaluate_on_dask(
            real,
            synthetic,
            output=output,
            metadata=metadata,
            json_path=json_path,
            seed=seed,
            scheduler=scheduler,
            no_detection=no_detection,
            single_only={
                "--holdout": holdout,
                "--target": target,
                "--sensitive": sensitive,
                "--model": model,
            },
        )
        return
    if real.is_dir() or synthetic.is_dir():
        _evaluate_schema(
            real,
            synthetic,
            output=output,
            metadata=metadata,
            json_path=json_path,
            seed=seed,
            quiet=quiet,
            model=model,
            single_only={
                "--holdout": holdout,
                "--target": target,
                "--sensitive": sensitive,
            },
        )
        return
    from clinsynth.evaluation import evaluate
    from clinsynth.io import read_table
    from clinsynth.metadata import Metadata

    real_df = read_table(real)
    synth_df = read_table(synthetic)
    fitted = None
    if model is not None:
        from clinsynth import load  # written alongside; imported only when asked for

        fitted = load(model)
    real_df, holdout_df = _real_and_holdout(real_df, holdout, model, fitted)
    md = (
        Metadata.load_from_json(metadata)
        if metadata is not None
        else Metadata.detect_from_dataframe(real_df)
    )
    if metadata is None:
        _sequence_words_of(fitted, md)

    kwargs = dict(
        holdout=holdout_df,
        target=target,
        model=fitted,
        sensitive_columns=list(sensitive) if sensitive else None,
        detection=not no_detection,
        random_state=seed,
    )
    with _progress(quiet) as update:
        result = evaluate(real_df, synth_df, md, progress=update, **kwargs)

    _save_and_show(result, output, json_path, "Evaluation summary", result.summary())
    _show_metrics(result)
    for name, why in result.info["skipped"].items():
        console.print(f"[dim]{name}: {why}[/dim]")
    written = f"Wrote {output}" + (f" and {json_path}" if json_path is not None else "")
    console.print(written + ".")


#: Rows of each table the diagnostic reads with --dask.
_DIAGNOSTIC_ROWS = 50_000


def _evaluate_on_dask(
    real: Path,
    synthetic: Path,
    *,
    output: Path,
    metadata: Path | None,
    json_path: Path | None,
    seed: int,
    scheduler: str | None,
    no_detection: bool,
    single_only: dict[str, Any],
) -> None:
    """``--dask``: the fidelity report, computed partition by partition (no table held whole)."""
    import time
    from datetime import UTC, datetime

    from clinsynth.errors import ParameterError
    from clinsynth.evaluation import EvaluationResult, evaluate_quality_dask
    from clinsynth.evaluation._dask_sources import frame
    from clinsynth.metadata import Metadata

    given = [name for name, value in single_only.items() if value]
    if given:
        raise ParameterError(
            f"{', '.join(given)} cannot be used with --dask, which measures fidelity only. "
            "Leave them out, or evaluate a sample of the rows without --dask."
        )
    if metadata is not None:
        md = Metadata.load_from_json(metadata)
    else:  # detected on the first rows of REAL (give --metadata for the exact types)
        md = Metadata.detect_from_dataframe(frame(real, "REAL").head(10_000, npartitions=-1))
    client = None
    if scheduler is not None:
        from clinsynth.synthesizers._dask import connect

        client = connect(scheduler)
    start = time.perf_counter()
    try:
        context = client.as_current() if client is not None else contextlib.nullcontext()
        with context:
            report = evaluate_quality_dask(
                real, synthetic, md, detection=not no_detection, random_state=seed
            )
    finally:
        if client is not None:
            client.close()
    from clinsynth.evaluation import run_diagnostic

    # validity and structure on the first rows of each table (the fidelity above saw them all)
    heads = [
        frame(p, n).head(_DIAGNOSTIC_ROWS, npartitions=-1)
        for p, n in ((real, "REAL"), (synthetic, "SYNTHETIC"))
    ]
    diagnostic = run_diagnostic(heads[0], heads[1], md)
    rows = report.metrics["rows"]
    table = md.get_table()
    sampling = {"quality": report.sampling} if report.sampling else {}
    sampling["diagnostic"] = {
        "Diagnostic (first rows)": {"real": len(heads[0]), "synthetic": len(heads[1])}
    }
    info = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": {**rows, "holdout": None},
        "columns": len(table.columns),
        "random_state": seed,
        "timings_s": {"quality": round(time.perf_counter() - start, 2)},
        "sampling": sampling,
        "skipped": {
            "utility": "Not run with --dask (fidelity only).",
            "privacy": "Not run with --dask (fidelity only).",
        },
        "notes": list(report.notes),
        "model": None,
    }
    result = EvaluationResult({"diagnostic": diagnostic, "quality": report}, {}, info)
    _save_and_show(result, output, json_path, "Evaluation summary (Dask)", result.summary())
    _show_metrics(result)
    console.print(
        f"{rows['real']:,} real and {rows['synthetic']:,} synthetic rows. Wrote {output}."
    )


def _real_and_holdout(
    real_df: Any, holdout: Path | None, model: Path | None, fitted: Any
) -> tuple[Any, Any]:
    """The training rows and the holdout: ``--holdout``, or the rows ``clinsynth fit
    --holdout`` kept aside beside ``--model``; taken out of REAL when REAL holds them."""
    from clinsynth.io import read_table

    if holdout is None and model is not None:
        from clinsynth.evaluation._holdout import holdout_path

        beside = holdout_path(model)
        if beside.exists():
            holdout = beside
            console.print(f"Holdout: the {beside.name} that `clinsynth fit` kept aside.")
    if holdout is None:
        return real_df, None
    holdout_df = read_table(holdout)
    trained_on = getattr(fitted, "num_training_rows_", None)
    if trained_on is not None and hasattr(real_df, "columns"):
        from clinsynth.evaluation._holdout import exclude_holdout

        real_df, removed = exclude_holdout(real_df, holdout_df, int(trained_on))
        if removed:
            console.print(f"Took the {removed} held-out rows out of REAL ({len(real_df)} left).")
    return real_df, holdout_df


def _save_and_show(
    result: Any, output: Path, json_path: Path | None, title: str, frame: Any
) -> None:
    """Write the HTML (and JSON) report, then print ``frame`` (scores to 3 decimals)."""
    result.save_html(output)
    if json_path is not None:
        result.save_json(json_path)
    _show(title, frame)


def _show_metrics(result: Any) -> None:
    """The registered metrics of the sections that ran (``clinsynth.evaluation.metrics``)."""
    table = result.metric_table(text=True)
    if len(table):
        _show("Metrics", table[["Metric", "Value", "Better", "Threshold"]])


def _show(title: str, frame: Any) -> None:
    """Print ``frame`` as a table (floats to 3 decimals)."""
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        cells = [("—" if v != v else f"{v:.3f}") if isinstance(v, float) else str(v) for v in row]
        table.add_row(*cells)
    console.print(table)


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Callable[..., None] | None]:
    """A progress callback drawing a rich bar (None when quiet)."""
    if quiet:
        yield None
        return
    with Progress(
        TextColumn("[bold]Evaluating"),
        BarColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("evaluate", total=None, message="")

        def update(total: int, completed: int, message: str = "") -> None:
            bar.update(task, total=total, completed=completed, message=message)

        yield update


def _evaluate_schema(
    real: Path,
    synthetic: Path,
    *,
    output: Path,
    metadata: Path | None,
    json_path: Path | None,
    seed: int,
    quiet: bool,
    model: Path | None,
    single_only: dict[str, object],
) -> None:
    """The multi-table report of two folders of CSV files (with ``--model``, the schema
    model's privacy guarantee too)."""
    from clinsynth.errors import DataError, ParameterError
    from clinsynth.io import load_csvs
    from clinsynth.metadata import Metadata
    from clinsynth.multitable import evaluate_multi_table

    given = [name for name, value in single_only.items() if value]
    if given:
        raise ParameterError(
            f"{', '.join(given)} apply to a single table; a folder is evaluated as a schema "
            "(keys, cardinality, parent-child trends, per-table fidelity). Leave them out, or "
            "give one file for REAL and one for SYNTHETIC."
        )
    for path in (real, synthetic):
        if not path.is_dir():
            raise DataError(
                f"'{path}' is not a folder. Give two folders of CSV files (one file per table) "
                "for a multi-table report, or two files for a single table."
            )
    fitted = None
    if model is not None:
        from clinsynth import load
        from clinsynth.multitable import HierarchicalSynthesizer

        fitted = load(model)
        if not isinstance(fitted, HierarchicalSynthesizer):
            raise ParameterError(
                f"--model '{model}' is a single-table model; a folder is evaluated as a schema. "
                "Give the schema model the synthetic tables came from, or leave --model out."
            )
    real_tables = load_csvs(real)
    synth_tables = load_csvs(synthetic)
    md = (
        Metadata.load_from_json(metadata)
        if metadata is not None
        else Metadata.detect_from_dataframes(real_tables)
    )
    with _progress(quiet) as update:
        result = evaluate_multi_table(
            real_tables, synth_tables, md, random_state=seed, progress=update, model=fitted
        )
    _save_and_show(result, output, json_path, "Multi-table evaluation", result.get_properties())
    links = result.get_details("Referential Integrity")
    orphans = int(links["Orphans"].sum()) if len(links) else 0
    verdict = "PASS" if result.diagnostic_passed() else "FAIL"
    console.print(
        f"Keys and links: {verdict} ({orphans} orphan foreign keys in "
        f"{len(links)} relationships). Quality score {result.get_score():.3f}."
    )
    written = f"Wrote {output}" + (f" and {json_path}" if json_path is not None else "")
    console.print(written + ".")


def _sequence_words_of(fitted: object, md: object) -> None:
    """A longitudinal model's sequence key and index on the detected metadata (the report then
    has its sequences section)."""
    table = getattr(getattr(fitted, "metadata", None), "tables", {})
    table = next(iter(table.values()), None) if len(table) == 1 else None
    if table is None or table.sequence_index is None:
        return
    columns = md.get_table().columns
    if table.sequence_key in columns and table.sequence_index in columns:
        md.set_sequence_key(table.sequence_key)
        md.set_sequence_index(table.sequence_index)
