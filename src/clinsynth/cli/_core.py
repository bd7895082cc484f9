"""Core commands: detect (metadata from data) and fit (a model from data, saved)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from clinsynth.cli._app import app
from clinsynth.cli._console import console, load_metadata, progress_bar
from clinsynth.errors import ParameterError

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
    md = load_metadata(None, tables)
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
    from clinsynth.io._paths import check_output_path
    from clinsynth.synthesizers._limits import check_param_names, check_trainable

    if data is None and sql is None:
        raise ParameterError("Give the training data: a file, a folder of CSVs, or --sql URL.")
    if schema is not None and sql is None:
        raise ParameterError("--schema names a schema of a database: give the database with --sql.")
    check_output_path([data, metadata], output, "model")
    params = _model_params(param, seed, epochs, batch_size)
    tables, md = _read_training(data, metadata, sql, schema, sheet)
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
        if multi:
            schema_options = {
                "orphans": orphans,
                "reference_tables": reference_table or None,
                "empty_columns": empty_columns,
                "privacy_unit": privacy_unit,
            }
            synth = _schema_model(md, model, schema_options, params, update)
        else:
            options = {"device": device, "time_budget": time_budget, "target": target}
            synth = _table_model(md, model, options, params, update)
        synth.fit(tables)
    _report_fit(synth, model, md, tables, output, held_out, time_budget, started)


def _model_params(
    param: list[str], seed: int | None, epochs: int | None, batch_size: int | None
) -> dict[str, Any]:
    """The model's parameters from --seed, --param NAME=VALUE, --epochs and --batch-size."""
    from clinsynth.synthesizers._condition_parse import parse_value

    params: dict[str, Any] = {"random_state": seed}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"Cannot read --param {item!r}; write NAME=VALUE.")
        params[key.strip()] = parse_value(value)
    if epochs is not None:
        params["epochs"] = epochs
    if batch_size is not None:
        params["batch_size"] = batch_size
    return params


def _read_training(
    data: Path | None,
    metadata: Path | None,
    sql: str | None,
    schema: str | None,
    sheet: str | None,
) -> tuple[Any, Any]:
    """The training table(s) (a file, a folder or a database) and their metadata."""
    if sql is not None:
        from clinsynth.io import read_sql_schema

        tables, md = read_sql_schema(sql, schema=schema)
        if metadata is not None:
            md = load_metadata(metadata, tables)
        return tables, md
    from clinsynth.io import read_data

    tables = read_data(data, sheet_name=sheet)
    return tables, load_metadata(metadata, tables)


def _schema_model(
    md: Any, model: str, options: dict[str, Any], params: dict[str, Any], update: Any
) -> Any:
    """The multi-table model of a schema, each table's model named by --model."""
    from clinsynth.multitable import HMASynthesizer

    return HMASynthesizer(md, table_synthesizers=model, progress=update, **options, **params)


def _table_model(
    md: Any, model: str, options: dict[str, Any], params: dict[str, Any], update: Any
) -> Any:
    """A single table's model; --device, --time-budget and --target where they were given
    (the last two only to a model that takes them)."""
    from clinsynth import get_synthesizer

    cls = get_synthesizer(model)
    if options["device"] != "cpu":
        params["device"] = options["device"]
    for name in ("time_budget", "target"):
        value = options[name]
        if value is not None:
            if name not in cls._param_names():
                raise ParameterError(
                    f"--{name.replace('_', '-')} needs a model that takes it (auto); "
                    f"{model} does not."
                )
            params[name] = value
    return cls(md, progress=update, **params)


def _report_fit(
    synth: Any,
    model: str,
    md: Any,
    tables: Any,
    output: Path,
    held_out: Any,
    time_budget: str | None,
    started: float,
) -> None:
    """Save the fitted model, print what was fitted, and write the held-out rows beside it."""
    if getattr(synth, "leaderboard_", None) is not None:
        _print_leaderboard(synth.leaderboard_, time_budget)
    path = synth.save(output)
    precision = getattr(synth, "trained_precision_", None)
    how = f" ({precision} matrix products)" if precision else ""
    chosen = getattr(synth, "chosen_", None)
    what = f"{model} (chose {chosen})" if chosen else model
    console.print(f"Fitted {what}{how} in {time.perf_counter() - started:.1f} s; saved to {path}")
    multi = isinstance(tables, dict)
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
