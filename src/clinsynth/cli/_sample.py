"""The sample command: rows from a saved model to files, folders, a database or a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clinsynth.cli import _stream
from clinsynth.cli._app import app
from clinsynth.cli._console import console, output_kind, progress_bar
from clinsynth.errors import DataError, ParameterError, SamplingError


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
    from clinsynth.io._paths import check_output_path
    from clinsynth.multitable import HierarchicalSynthesizer

    if output is None and sql is None:
        raise ParameterError("Say where to write the rows: -o OUT.csv (or a folder), or --sql URL.")
    if schema is not None and sql is None:
        raise ParameterError("--schema names a schema of a database: give the database with --sql.")
    synth = clinsynth.load(model, device=device)
    multi = isinstance(synth, HierarchicalSynthesizer)
    if output is not None and not (scheduler and _stream.is_parts_folder(output)):
        kind = "tables" if multi or scheduler else "table"
        check_output_path([model], output, kind)
    if multi:
        _stream.check_args(1, batch_size, scheduler, multi=True)
        _sample_schema(synth, scale, seed, output, sql, schema)
        return
    num_rows = _prepare_table_model(synth, num_rows, scale, precision, seed)
    from clinsynth.synthesizers._condition_parse import parse_condition_strings

    conditions = parse_condition_strings(condition) if condition else None
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
    _sample_table(synth, num_rows, conditions, output, sql, schema, quiet)


def _sample_schema(
    synth: Any,
    scale: float,
    seed: int | None,
    output: Path | None,
    sql: str | None,
    schema: str | None,
) -> None:
    """A schema's tables at --scale, in memory, to a folder and/or a database."""
    from clinsynth.io import write_tables
    from clinsynth.synthesizers._limits import check_rows_memory

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
            f"Sampling the schema at scale {scale} ran out of memory. Sample at a smaller --scale."
        ) from None
    if sql is not None:
        from clinsynth.io import write_sql_schema

        write_sql_schema(tables, sql, metadata=synth.metadata, schema=schema)
        console.print(f"Wrote {len(tables)} tables to the database.")
    if output is not None:
        write_tables(tables, output, file_format="parquet" if str(output).endswith("pq") else "csv")
        console.print(f"Wrote {len(tables)} tables to {output}/")


def _prepare_table_model(
    synth: Any, num_rows: int | None, scale: float, precision: str | None, seed: int | None
) -> int:
    """Set --precision and --seed on a table model; the number of rows (-n, or --scale of the
    training rows or sequences)."""
    if num_rows is None:
        if not 0 <= scale < float("inf"):
            raise ParameterError(f"The '--scale' option must be a number >= 0. Got {scale}.")
        sequences = getattr(synth, "_sequential", False)
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
    return num_rows


def _sample_table(
    synth: Any,
    num_rows: int,
    conditions: Any,
    output: Path | None,
    sql: str | None,
    schema: str | None,
    quiet: bool,
) -> None:
    """A table's rows in memory, written to one file and/or a database table."""
    from clinsynth.io import write_table
    from clinsynth.io._limits import check_table_disk
    from clinsynth.synthesizers._limits import check_sample_size

    if output is not None and output_kind(output) == "folder":
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
    sequences = getattr(synth, "_sequential", False)
    made = f" of {num_rows:,} sequences" if sequences else ""
    console.print(f"Generated {len(df)} rows{made}" + (f" -> {output}" if output else ""))
