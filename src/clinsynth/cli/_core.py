"""Core commands: detect, fit, sample, info, models, demo."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from clinsynth.cli._app import app
from clinsynth.errors import DataError, ParameterError, SamplingError

console = Console(stderr=False, highlight=False)


class _Remaining(TimeRemainingColumn):
    """rich's time remaining, unless the library's message already says its own ETA (the deep
    models' training loop): one estimate on the line, not two that disagree."""

    def render(self, task: Any) -> Text:
        if "ETA" in str(task.fields.get("message", "")):
            return Text("")
        return Text("ETA ") + super().render(task)


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Any]:
    """A rich progress bar driven by the library's ``(total, completed, message)`` callback."""
    if quiet:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        _Remaining(),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(total: int, completed: int, message: str = "") -> None:
            bar.update(task, total=total, completed=completed, message=message)

        yield update


def _load_metadata(metadata: Path | None, data: Any) -> Any:
    from clinsynth import Metadata

    if metadata is not None:
        return Metadata.load_from_json(metadata)
    if isinstance(data, dict):
        return Metadata.detect_from_dataframes(data)
    return Metadata.detect_from_dataframe(data)


def _output_kind(path: Path) -> str:
    from clinsynth.io._formats import format_of, listed_suffixes

    suffix = path.suffix.lower()
    if format_of(path, writing=True) is not None:
        return "file"
    if suffix == "":
        return "folder"
    raise DataError(
        f"Cannot write '{path}': unsupported type '{suffix}'. Use {listed_suffixes()} (or a "
        "folder for multi-table output)."
    )


#: Options of the multi-table model that --param may set (the rest go to each table's model).
_HMA_PARAMS = ("max_context_columns", "max_rows_per_patient", "privacy_weights")


# --------------------------------------------------------------------------- detect
@app.command()
def detect(
    data: Path = typer.Argument(..., help="A CSV/Excel/Parquet file, or a folder of CSVs."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write metadata.json."),
    sheet: str | None = typer.Option(None, "--sheet", help="Excel: the sheet to read."),
) -> None:
    """Detect the metadata (column types, keys, relationships, PII) and save it as JSON.

    Example: clinsynth detect patients.csv -o metadata.json
    """
    from clinsynth.io import read_data
    from clinsynth.io._paths import check_output_path

    check_output_path([data], output, "metadata")
    tables = read_data(data, sheet_name=sheet)
    md = _load_metadata(None, tables)
    md.save_to_json(output)
    for name, table in md.tables.items():
        grid = Table(title=f"{name} ({len(table.columns)} columns, key: {table.primary_key})")
        grid.add_column("column")
        grid.add_column("sdtype")
        grid.add_column("details")
        for col, spec in table.columns.items():
            details = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "sdtype")
            grid.add_row(col, spec["sdtype"], details)
        console.print(grid)
        _print_rules(name, table)
    if not isinstance(tables, dict):
        suggestions = md.suggest_constraints(tables)
        if suggestions:
            console.print(
                "Suggested rules (not applied; add them to 'constraints' in the JSON "
                "to enforce them):"
            )
            for rule in suggestions:
                console.print(f"  {json.dumps(rule.to_dict())}")
    for rel in md.relationships:
        console.print(
            f"relationship: {rel['parent_table_name']}.{rel['parent_primary_key']} -> "
            f"{rel['child_table_name']}.{rel['child_foreign_key']}"
        )
    from clinsynth.cli._keys_view import print_keys

    print_keys(console, md)
    unknown = [
        c for t in md.tables.values() for c, s in t.columns.items() if s["sdtype"] == "unknown"
    ]
    if unknown:
        console.print(
            f"[yellow]Empty columns (type 'unknown'): {unknown}. They stay empty in the "
            "synthetic data; drop them, or set their sdtype in the JSON if they will hold "
            "values.[/yellow]"
        )
    console.print(f"Metadata written to {output}")


def _print_rules(name: str, table: Any) -> None:
    """The rules discovery found in one table, with their support."""
    from clinsynth.constraints import constraint_from_dict

    if not table.constraints:
        return
    grid = Table(
        title=f"{name}: rules every row obeys ({len(table.constraints)}; kept in the JSON's "
        "'constraints' and kept by every model; delete any you do not want)"
    )
    for header in ("#", "rule", "kind", "rows", "informative"):
        grid.add_column(header)
    for i, item in enumerate(table.constraints, start=1):
        rule = constraint_from_dict(item)
        support = item.get("support") or {}
        grid.add_row(
            str(i),
            rule.describe(),
            rule.type,
            str(support.get("rows", "")),
            str(support.get("informative", "")),
        )
    console.print(grid)


# --------------------------------------------------------------------------- fit
@app.command()
def fit(
    data: Path | None = typer.Argument(
        None, help="Training data: a CSV/Excel/Parquet file, or a folder of CSVs (multi-table)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Where to save the model (folder or .zip)."
    ),
    metadata: Path | None = typer.Option(
        None, "--metadata", "-m", help="metadata.json (detected if omitted)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Model name (see `clinsynth models`); gaussian_copula, or sequential for a table "
        "with a sequence key.",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="Training epochs (deep models; with --model auto, the most each candidate trains).",
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size (deep models)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    seed: int | None = typer.Option(0, "--seed", help="Random seed (same seed, same model)."),
    sql: str | None = typer.Option(None, "--sql", help="Read every table of this database URL."),
    schema: str | None = typer.Option(
        None,
        "--schema",
        help="With --sql: the database schema (namespace) to read, e.g. clinical; default: "
        "the connection's (PostgreSQL: public, DuckDB: main).",
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Extra model parameter NAME=VALUE (repeatable), e.g. --param epsilon=1"
    ),
    orphans: str = typer.Option(
        "error",
        "--orphans",
        help="Multi-table rows whose parent is missing: error, drop or keep_as_null.",
    ),
    reference_table: list[str] = typer.Option(
        [],
        "--reference-table",
        help="Multi-table: a table copied as is (e.g. OMOP's concept vocabulary); repeatable.",
    ),
    empty_columns: str = typer.Option(
        "keep", "--empty-columns", help="Multi-table: columns with no value: keep or drop."
    ),
    privacy_unit: str | None = typer.Option(
        None,
        "--privacy-unit",
        help="Multi-table with --param epsilon=E: the patient key (TABLE.COLUMN) the budget "
        "protects across all tables; default: the root table's primary key.",
    ),
    time_budget: str | None = typer.Option(
        None, "--time-budget", help="Seconds for the whole fit (auto model): 90s, 10m, 1h."
    ),
    target: str | None = typer.Option(
        None, "--target", help="Column to predict: the auto model also scores ML utility on it."
    ),
    holdout: float | None = typer.Option(
        None,
        "--holdout",
        help="Keep this share of the rows (e.g. 0.2) out of training, written beside the model "
        "as MODEL.holdout.csv (real rows: do not share it), where `clinsynth evaluate --model` "
        "finds them to measure privacy and utility.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    sheet: str | None = typer.Option(None, "--sheet", help="Excel: the sheet to read."),
    sequence_key: str | None = typer.Option(
        None, "--sequence-key", help="Longitudinal table: the column naming the patient."
    ),
    sequence_index: str | None = typer.Option(
        None, "--sequence-index", help="Longitudinal table: the time (number or date) of events."
    ),
) -> None:
    """Fit a synthesizer on real data and save it (JSON + tensors, never pickle).

    Examples:
      clinsynth fit patients.csv -o model
      clinsynth fit patients.csv --holdout 0.2 -o model   (and model.holdout.csv beside it)
      clinsynth fit patients.csv --metadata metadata.json --model tvae --epochs 300 -o model.zip
      clinsynth fit --sql duckdb:///hospital.duckdb -o hospital_model
      clinsynth fit --sql postgresql://me@db:5432/ehr --schema clinical -o ehr_model
      clinsynth fit omop_csvs/ --orphans drop --reference-table concept -o omop_model
      clinsynth fit pbc_tables/ --model dp_marginal --param epsilon=1 --privacy-unit pbc.id -o m
      clinsynth fit patients.csv --model auto --time-budget 10m --target outcome -o model
      clinsynth fit patients.csv --model auto --epochs 100 --target outcome -o model
      clinsynth fit visits.csv --sequence-key patient_id --sequence-index date -o model
    """
    from clinsynth import get_synthesizer
    from clinsynth.io import read_data
    from clinsynth.io._paths import check_output_path
    from clinsynth.synthesizers._limits import check_param_names, check_trainable

    if data is None and sql is None:
        raise ParameterError("Give the training data: a file, a folder of CSVs, or --sql URL.")
    if schema is not None and sql is None:
        raise ParameterError("--schema names a schema of a database: give the database with --sql.")
    check_output_path([data, metadata], output, "model")
    params: dict[str, Any] = {"random_state": seed}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"Cannot read --param {item!r}; write NAME=VALUE.")
        from clinsynth.synthesizers._conditions import parse_value

        params[key.strip()] = parse_value(value)
    if epochs is not None:
        params["epochs"] = epochs
    if batch_size is not None:
        params["batch_size"] = batch_size
    if sql is not None:
        from clinsynth.io import read_sql_schema

        tables, md = read_sql_schema(sql, schema=schema)
        if metadata is not None:
            md = _load_metadata(metadata, tables)
    else:
        tables = read_data(data, sheet_name=sheet)
        md = _load_metadata(metadata, tables)
    multi = isinstance(tables, dict)
    if privacy_unit is not None and not multi:
        raise ParameterError(
            "--privacy-unit names the patient key of a schema: give a folder of tables or --sql "
            "(a single table's DP unit is its row), or leave --privacy-unit out."
        )
    model = _sequence_words(md, tables, model, sequence_key, sequence_index, holdout)
    check_param_names(get_synthesizer(model), params, extra=_HMA_PARAMS if multi else ())
    if not multi:
        check_trainable(md.get_table(), tables, f"The table in '{data}'")
    held_out = None
    if holdout is not None:
        if multi:
            raise ParameterError(
                "--holdout keeps rows of a single table aside; a multi-table model trains on "
                "every table. Leave --holdout out."
            )
        from clinsynth.evaluation._holdout import split_holdout

        tables, held_out = split_holdout(tables, holdout, seed)
    started = time.perf_counter()
    with progress_bar(f"fitting {model}", quiet) as update:
        if isinstance(tables, dict):
            from clinsynth.multitable import HMASynthesizer

            synth = HMASynthesizer(
                md,
                table_synthesizers=model,
                orphans=orphans,
                reference_tables=reference_table or None,
                empty_columns=empty_columns,
                privacy_unit=privacy_unit,
                progress=update,
                **params,
            )
        else:
            cls = get_synthesizer(model)
            if device != "cpu":
                params["device"] = device
            for name, value in (("time_budget", time_budget), ("target", target)):
                if value is not None:
                    if name not in cls._param_names():
                        raise ParameterError(
                            f"--{name.replace('_', '-')} needs a model that takes it (auto); "
                            f"{model} does not."
                        )
                    params[name] = value
            synth = cls(md, progress=update, **params)
        synth.fit(tables)
    if getattr(synth, "leaderboard_", None) is not None:
        _print_leaderboard(synth.leaderboard_, time_budget)
    path = synth.save(output)
    precision = getattr(synth, "trained_precision_", None)
    how = f" ({precision} matrix products)" if precision else ""
    chosen = getattr(synth, "chosen_", None)
    what = f"{model} (chose {chosen})" if chosen else model
    console.print(f"Fitted {what}{how} in {time.perf_counter() - started:.1f} s; saved to {path}")
    if multi and not any(r["parent_table_name"] != r["child_table_name"] for r in md.relationships):
        console.print(
            f"[bold red]Warning: the {len(tables)} tables were fitted as INDEPENDENT tables (no "
            "relationship between them): their synthetic rows are not linked. See `clinsynth "
            "detect` for the candidates and declare the links with --metadata.[/bold red]"
        )
    if held_out is not None:
        from clinsynth.evaluation._holdout import holdout_path
        from clinsynth.io import write_table

        kept = write_table(held_out, holdout_path(path))
        console.print(
            f"Kept {len(held_out)} real rows aside in {kept} (real data: keep it with the model, "
            "do not share it); `clinsynth evaluate` with --model finds it."
        )


def _sequence_words(
    md: Any,
    tables: Any,
    model: str | None,
    key: str | None,
    index: str | None,
    holdout: float | None,
) -> str:
    """Set --sequence-key / --sequence-index on the metadata; the model they call for.

    An index of numbers that detection took for a category (few distinct days in a small
    table) is declared numerical: the option says it is a time.
    """
    import pandas as pd

    multi = isinstance(tables, dict)
    if key is not None or index is not None:
        if multi:
            raise ParameterError(
                "--sequence-key and --sequence-index name columns of one table; give a file, "
                "not a folder of tables."
            )
        if key is None or index is None:
            raise ParameterError(
                "Give both --sequence-key (the patient) and --sequence-index (the time)."
            )
        md.set_sequence_key(key)
        md.set_sequence_index(index)
        values = tables[index]
        if md.get_table().sdtype(index) in ("categorical", "ordinal") and (
            pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        ):
            whole = pd.api.types.is_integer_dtype(values)
            md.update_column(
                index, sdtype="numerical", computer_representation="Int64" if whole else "Float"
            )
    table = None if multi else md.get_table()
    sequences = table is not None and table.sequence_key is not None
    if sequences and holdout is not None:
        raise ParameterError(
            "--holdout keeps rows aside, which would cut patients' sequences; leave it out "
            "for a longitudinal table."
        )
    return model or ("sequential" if sequences else "gaussian_copula")


def _print_leaderboard(board: Any, time_budget: str | None) -> None:
    """The auto model's candidates in five columns (the full table is in the bundle)."""
    from clinsynth.synthesizers._auto_board import budget_skips, leaderboard_compact

    compact = leaderboard_compact(board)
    grid = Table(title="auto: the candidates")
    for column in compact.columns:
        grid.add_column(column, justify="left" if column in ("model", "verdict") else "right")
    for row in compact.itertuples(index=False):
        grid.add_row(*row)
    console.print(grid)
    skipped = budget_skips(board)
    if skipped:
        budget = f"the time budget ({time_budget})" if time_budget else "the time budget"
        console.print(
            f"[yellow]Note: {budget} left no time for {', '.join(skipped)}; auto chose among "
            "the others. Give a larger --time-budget to try them.[/yellow]"
        )


# --------------------------------------------------------------------------- sample
@app.command()
def sample(
    model: Path = typer.Argument(..., help="A saved model (folder or .zip)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="OUT.csv|.xlsx|.parquet, or a folder."
    ),
    num_rows: int | None = typer.Option(
        None, "--num-rows", "-n", help="Rows to generate (single table)."
    ),
    scale: float = typer.Option(
        1.0, "--scale", help="Size relative to the training data (multi-table)."
    ),
    condition: list[str] = typer.Option(
        [],
        "--condition",
        "-c",
        help="Condition, e.g. 'condition=diabetes' or 'age>=60' (repeatable).",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Sampling seed (default: the model's)."),
    sql: str | None = typer.Option(None, "--sql", help="Write the tables to this database URL."),
    schema: str | None = typer.Option(
        None,
        "--schema",
        help="With --sql: the database schema (namespace) to write into, created if missing; "
        "default: the connection's.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    precision: str | None = typer.Option(
        None,
        "--precision",
        help="Deep models: float32, bfloat16 (2-3x faster bulk sampling on CPUs with "
        "AMX/AVX-512 BF16 and on GPUs) or auto (bfloat16 on CPUs with AMX); default: the "
        "model's own (CTGAN: auto, the others: float32).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    batch_size: int = typer.Option(
        262_144,
        "--batch-size",
        help="Rows generated and written at a time to .csv/.parquet or --sql (memory stays "
        "flat in -n).",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Sample on a Dask cluster (clinsynth[dask]): its scheduler's address, e.g. "
        "tcp://host:8786; -o names a folder of Parquet parts.",
    ),
) -> None:
    """Generate synthetic rows from a saved model.

    Examples:
      clinsynth sample model -n 1000 -o synthetic.csv
      clinsynth sample model -n 500 -c 'condition=diabetes' -c 'age>=60' -o dm.xlsx
      clinsynth sample hospital_model --scale 0.5 -o synthetic_hospital/
      clinsynth sample ehr_model --sql postgresql://me@db:5432/ehr --schema synthetic
      clinsynth sample model -n 100000000 -o parts/ --scheduler tcp://host:8786
    """
    import clinsynth
    from clinsynth.io import write_table, write_tables
    from clinsynth.io._limits import check_table_disk
    from clinsynth.io._paths import check_output_path
    from clinsynth.synthesizers._limits import check_rows_memory, check_sample_size

    if output is None and sql is None:
        raise ParameterError("Say where to write the rows: -o OUT.csv (or a folder), or --sql URL.")
    if schema is not None and sql is None:
        raise ParameterError("--schema names a schema of a database: give the database with --sql.")
    from clinsynth.cli import _stream
    from clinsynth.multitable import HierarchicalSynthesizer

    synth = clinsynth.load(model, device=device)
    multi = isinstance(synth, HierarchicalSynthesizer)
    if output is not None and not (scheduler and _stream.is_parts_folder(output)):
        kind = "tables" if multi or scheduler else "table"
        check_output_path([model], output, kind)
    if multi:
        _stream.check_args(1, batch_size, scheduler, multi=True)
        if seed is not None:
            synth.random_state = seed
        if scale >= 0:  # (a negative scale is the library's clear error)
            widest = max(len(t.columns) for t in synth.metadata.tables.values())
            rows = float(synth.get_plan()["rows"].sum()) * scale
            check_rows_memory(int(min(rows, 1e18)), widest, f"Sampling the schema at scale {scale}")
        try:
            tables = synth.sample(scale=scale)
        except MemoryError:
            raise SamplingError(
                f"Sampling the schema at scale {scale} ran out of memory. Sample at a smaller "
                "--scale."
            ) from None
        if sql is not None:
            from clinsynth.io import write_sql_schema

            write_sql_schema(tables, sql, metadata=synth.metadata, schema=schema)
            console.print(f"Wrote {len(tables)} tables to the database.")
        if output is not None:
            write_tables(
                tables, output, file_format="parquet" if str(output).endswith("pq") else "csv"
            )
            console.print(f"Wrote {len(tables)} tables to {output}/")
        return
    sequences = getattr(synth, "_sequential", False)
    if num_rows is None:
        if not 0 <= scale < float("inf"):
            raise ParameterError(f"The '--scale' option must be a number >= 0. Got {scale}.")
        trained = synth.num_training_sequences_ if sequences else synth.num_training_rows_
        num_rows = max(1, round(trained * scale))
    if precision is not None:
        if not hasattr(synth, "sample_precision") and precision != "float32":
            raise ParameterError(
                f"--precision {precision} applies to the deep models; {type(synth).__name__} "
                "samples in float32. Leave --precision out."
            )
        if hasattr(synth, "sample_precision"):
            synth.sample_precision = precision
    if seed is not None:
        synth.reset_sampling(seed=seed)
    from clinsynth.cli import parse_conditions

    conditions = parse_conditions(condition) if condition else None
    if _stream.streams(synth, num_rows, output, sql, scheduler, batch_size):
        _stream.sample_streamed(
            synth,
            num_rows,
            output,
            seed,
            conditions,
            batch_size,
            scheduler,
            quiet,
            sql=None if sql is None else (sql, schema),
        )
        return
    if output is not None and _output_kind(output) == "folder":
        from clinsynth.io._formats import listed_suffixes

        names = listed_suffixes().replace(".", "OUT.")
        raise DataError(f"'{output}' has no file type. Give {names} for a single table.")
    check_sample_size(synth, num_rows)
    if output is not None:
        columns = synth.get_metadata().get_table(synth.table_name).columns
        check_table_disk(output, num_rows, len(columns))
    steps = 1 + (output is not None) + (sql is not None)
    with progress_bar("sampling", quiet) as update:
        tick = update or (lambda total, completed, message="": None)
        tick(steps, 0, f"generating {num_rows:,} rows")
        try:
            df = synth.sample(num_rows, conditions=conditions)
        except MemoryError:
            raise SamplingError(
                f"Sampling {num_rows:,} rows ran out of memory. Ask for fewer rows (-n) and make "
                "a larger set in several runs with different seeds (--seed)."
            ) from None
        if output is not None:
            tick(steps, 1, f"writing {output.name}")
            write_table(df, output)
        if sql is not None:
            from clinsynth.io import write_sql_schema

            tick(steps, steps - 1, "writing to the database")
            write_sql_schema(
                {synth.get_metadata().single_table_name(): df},
                sql,
                metadata=synth.get_metadata(),
                schema=schema,
            )
        tick(steps, steps, "done")
    made = f" of {num_rows:,} sequences" if sequences else ""
    console.print(f"Generated {len(df)} rows{made}" + (f" -> {output}" if output else ""))


# --------------------------------------------------------------------------- info / models
@app.command()
def info(model: Path = typer.Argument(..., help="A saved model (folder or .zip).")) -> None:
    """Describe a saved model: its type, parameters, training size and privacy budget."""
    from clinsynth.io._bundle import load_bundle

    manifest, documents, _ = load_bundle(model)
    grid = Table(title=f"{model}", show_header=False)
    grid.add_row("model", str(manifest.get("model")))
    grid.add_row("class", str(manifest.get("class", "")))
    grid.add_row("clinsynth version", str(manifest.get("clinsynth_version")))
    grid.add_row("bundle format", str(manifest.get("format_version")))
    fit_info = manifest.get("fit", {})
    if fit_info:
        grid.add_row("training rows", str(fit_info.get("num_training_rows")))
        grid.add_row("fit time (s)", f"{fit_info.get('seconds', 0):.2f}")
    auto = manifest.get("auto")
    if isinstance(auto, dict) and auto.get("chosen"):
        grid.add_row("auto's choice", str(auto["chosen"]))
    state = documents.get("model.json")
    if isinstance(state, dict) and state.get("trained_precision"):
        grid.add_row("trained precision", str(state["trained_precision"]))
    if isinstance(state, dict) and isinstance(state.get("leaf_search"), list):
        tried = ", ".join(
            f"{r['min_leaf']}: {r['dcr_share']:.2f} ± {r['dcr_share_se']:.2f}"
            for r in state["leaf_search"]
        )
        grid.add_row(
            "leaf size (rows)",
            f"{state.get('min_leaf')}"
            + (f" (held-out DCR share by size: {tried})" if tried else ""),
        )
    tables = manifest.get("metadata", {}).get("tables", {})
    grid.add_row(
        "tables", ", ".join(f"{k} ({len(v['columns'])} columns)" for k, v in tables.items())
    )
    for key, value in manifest.get("params", {}).items():
        grid.add_row(f"param {key}", json.dumps(value))
    privacy = manifest.get("privacy")
    if privacy:
        for key, value in privacy.items():
            if key == "shares" and isinstance(value, dict):  # a schema's patient budget
                for name, share in value.items():
                    grid.add_row(f"privacy share of '{name}'", _share(share))
            else:
                grid.add_row(
                    f"privacy {key}", value if isinstance(value, str) else json.dumps(value)
                )
    elif manifest.get("kind") == "multi_table":
        for name, entry in manifest.get("tables", {}).items():
            table_privacy = entry.get("privacy") or {}
            grid.add_row(f"privacy of '{name}'", _guarantee(table_privacy, entry))
    else:
        grid.add_row("privacy", "no differential privacy (no formal guarantee)")
    console.print(grid)
    if isinstance(auto, dict) and auto.get("leaderboard"):
        from clinsynth.synthesizers._auto_board import leaderboard_compact, leaderboard_frame

        compact = leaderboard_compact(leaderboard_frame(auto["leaderboard"]))
        board = Table(title="auto: the candidates")
        for column in compact.columns:
            board.add_column(column)
        for row in compact.itertuples(index=False):
            board.add_row(*row)
        console.print(board)


def _share(share: dict) -> str:
    """One table's share of a patient's budget, in one line."""
    return (
        f"epsilon {share.get('epsilon', 0):.4g} (spent {share.get('epsilon_spent', 0):.4g}), "
        f"delta {share.get('delta', 0):.3g}, up to {share.get('rows_per_patient')} rows "
        f"per patient, weight {share.get('weight')}"
    )


def _guarantee(privacy: dict, entry: dict) -> str:
    """One table's privacy in a schema bundle, in one line."""
    if not entry.get("model"):
        return "reference table (stored verbatim)"
    if privacy.get("differential_privacy"):
        return str(privacy.get("guarantee", "differential privacy"))
    return "no differential privacy (no formal guarantee)"


@app.command()
def models() -> None:
    """List the available synthesizers (the model registry)."""
    from clinsynth import list_synthesizers

    grid = Table(title="clinsynth models")
    grid.add_column("name")
    grid.add_column("class")
    grid.add_column("description")
    for name, cls in list_synthesizers(sequential=True).items():
        doc = (cls.__doc__ or "").strip().splitlines()
        grid.add_row(name, cls.__name__, doc[0] if doc else "")
    console.print(grid)


# --------------------------------------------------------------------------- demo
@app.command()
def demo(
    output: Path = typer.Option(
        Path("demo_output"), "--output", "-o", help="Folder for the results."
    ),
    rows: int = typer.Option(2000, "--rows", "-n", help="Size of the simulated real cohort."),
    model: str = typer.Option(
        "gaussian_copula", "--model", help="Model name (see `clinsynth models`)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (deep models)."),
) -> None:
    """Run the whole job on built-in data: simulate a cohort, fit, sample, evaluate, report.

    Writes OUTPUT/real.csv, OUTPUT/synthetic.csv, OUTPUT/metadata.json, OUTPUT/model/,
    OUTPUT/report.html and OUTPUT/report.json.
    """
    from clinsynth import get_synthesizer
    from clinsynth.evaluation import evaluate
    from clinsynth.io import write_table
    from clinsynth.simulate import simulate_cohort

    real, md = simulate_cohort(rows, seed=seed)
    holdout_n = max(1, len(real) // 4)
    train, holdout = (
        real.iloc[holdout_n:].reset_index(drop=True),
        real.iloc[:holdout_n].reset_index(drop=True),
    )
    params: dict[str, Any] = {"random_state": seed}
    if epochs is not None:
        params["epochs"] = epochs
    with progress_bar(f"fitting {model}") as update:
        synth = get_synthesizer(model)(md, progress=update, **params)
        synth.fit(train)
    synthetic = synth.sample(len(train))
    output.mkdir(parents=True, exist_ok=True)
    write_table(real, output / "real.csv")
    write_table(synthetic, output / "synthetic.csv")
    md.save_to_json(output / "metadata.json")
    synth.save(output / "model")
    target = "condition" if "condition" in real.columns else None
    result = evaluate(train, synthetic, md, holdout=holdout, target=target, model=synth)
    result.save_html(output / "report.html")
    result.save_json(output / "report.json")
    grid = Table(title=f"clinsynth demo: {model} on a simulated cohort of {rows} patients")
    grid.add_column("evidence")
    grid.add_column("score", justify="right")
    grid.add_column("verdict")
    for _, row in result.summary().iterrows():
        score = "-" if row["Score"] != row["Score"] else f"{row['Score']:.3f}"
        grid.add_row(str(row["Section"]), score, str(row["Verdict"]))
    console.print(grid)
    if result.quality is not None:
        props = result.quality.get_properties()
        console.print(
            "Fidelity: "
            + ", ".join(
                f"{p} {s:.3f}" for p, s in zip(props["Property"], props["Score"], strict=True)
            )
        )
    console.print(
        f"Real data, synthetic data, model and report written to {output}/ "
        f"(open {output / 'report.html'} in a browser)."
    )
