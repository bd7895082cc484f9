"""``clinsynth sample`` in chunks: one table streamed to a .csv/.parquet file, into a SQL
database (``--sql``), or to both at once (each chunk to both; each made visible only at the end),
or sampled on a Dask cluster into a folder of Parquet parts (``--scheduler``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from clinsynth.errors import ParameterError, SamplingError


def is_parts_folder(path: Path) -> bool:
    """Whether ``path`` holds the parts of an earlier ``--scheduler`` run (replaced whole)."""
    from clinsynth.synthesizers._dask import is_parts_folder as parts

    return parts(path)


def check_args(num_rows: int, batch_size: int, scheduler: str | None, multi: bool) -> None:
    """The option errors of a single-table sample run (-n, --batch-size, --scheduler)."""
    if num_rows < 1:
        raise ParameterError(f"The '-n/--num-rows' option must be an int >= 1. Got {num_rows}.")
    if batch_size < 1:
        raise ParameterError(f"The '--batch-size' option must be an int >= 1. Got {batch_size}.")
    if scheduler is not None and multi:
        raise ParameterError(
            "--scheduler samples one table; this model is a schema's. Leave --scheduler out."
        )


def streams(
    synth: Any,
    num_rows: int,
    output: Path | None,
    sql: str | None,
    scheduler: str | None,
    batch_size: int,
) -> bool:
    """Whether this run writes in chunks (checks -n and the options first): a .csv, .tsv or
    .parquet output, a database (--sql, alone or with such an output), or a Dask run."""
    from clinsynth.io._chunked import can_write_chunks

    check_args(num_rows, batch_size, scheduler, multi=False)
    sequences = bool(getattr(synth, "_sequential", False))
    if scheduler is not None:
        if output is None or output.suffix or sql is not None or sequences:
            raise ParameterError(
                "--scheduler writes one table's rows as Parquet parts into a folder: give -o "
                "FOLDER (no file type), without --sql, and a single-table (not sequence) model."
            )
        return True
    if sequences:
        return False
    if sql is not None and output is None:
        return True
    return output is not None and can_write_chunks(output)  # with --sql or not


def sample_streamed(
    synth: Any,
    num_rows: int,
    output: Path | None,
    seed: int | None,
    conditions: dict[str, Any] | None,
    batch_size: int,
    scheduler: str | None,
    quiet: bool,
    sql: tuple[str, str | None] | None = None,
) -> None:
    """Write ``num_rows`` rows to ``output`` chunk by chunk (or on the Dask cluster, or into
    the database ``sql = (url, schema)``)."""
    from clinsynth.cli._console import console, progress_bar

    if scheduler is not None:
        _sample_on_cluster(synth, num_rows, output, seed, conditions, scheduler, quiet)
        return
    if sql is not None:
        _sample_to_sql(synth, num_rows, sql, output, seed, conditions, batch_size, quiet)
        return
    assert output is not None
    from clinsynth.io._chunked import write_chunks
    from clinsynth.io._limits import check_table_disk

    columns = synth.get_metadata().get_table(synth.table_name).columns
    check_table_disk(output, num_rows, len(columns))  # a first guess, before any work
    chunks = synth.sample_batches(num_rows, batch_size=batch_size, seed=seed, conditions=conditions)
    with progress_bar("sampling", quiet) as update:
        try:
            rows = write_chunks(chunks, output, num_rows=num_rows, progress=update)
            if update is not None:
                update(num_rows, rows, "done")
        except MemoryError:
            raise SamplingError(
                f"Sampling ran out of memory with chunks of {batch_size:,} rows; nothing was "
                "written. Give a smaller --batch-size."
            ) from None
    console.print(f"Generated {rows} rows -> {output}")


def _sample_on_cluster(
    synth: Any,
    num_rows: int,
    output: Path,
    seed: int | None,
    conditions: dict[str, Any] | None,
    scheduler: str,
    quiet: bool,
) -> None:
    from clinsynth.cli._console import console, progress_bar
    from clinsynth.synthesizers._dask import connect, sample_to_parquet

    client = connect(scheduler)
    try:
        with progress_bar("sampling", quiet) as update:
            manifest = sample_to_parquet(
                synth,
                num_rows,
                output,
                client=client,
                seed=seed,
                conditions=conditions,
                progress=update,
            )
            if update is not None:
                update(num_rows, manifest["rows"], "done")
    finally:
        client.close()
    parts = len(manifest["parts"])
    console.print(
        f"Generated {manifest['rows']} rows in {parts} part{'s' if parts != 1 else ''} -> {output}/"
    )


def _sample_to_sql(
    synth: Any,
    num_rows: int,
    sql: tuple[str, str | None],
    output: Path | None,
    seed: int | None,
    conditions: dict[str, Any] | None,
    batch_size: int,
    quiet: bool,
) -> None:
    from clinsynth.cli._console import console, progress_bar
    from clinsynth.io._sql_stream import write_sql_chunks

    url, schema = sql
    metadata = synth.get_metadata()
    name = metadata.single_table_name()
    if output is not None:
        from clinsynth.io._limits import check_table_disk

        check_table_disk(output, num_rows, len(metadata.get_table(name).columns))
    chunks = synth.sample_batches(num_rows, batch_size=batch_size, seed=seed, conditions=conditions)
    target = {"table_name": name, "metadata": metadata, "schema": schema, "num_rows": num_rows}
    with progress_bar("sampling", quiet) as update:
        try:
            if output is None:
                rows = write_sql_chunks(chunks, url, progress=update, **target)
            else:
                rows = _to_file_and_sql(chunks, output, url, update, target)
        except MemoryError:
            raise SamplingError(
                f"Sampling ran out of memory with chunks of {batch_size:,} rows; nothing was "
                "written. Give a smaller --batch-size."
            ) from None
    also = f" and {output}" if output is not None else ""
    console.print(f"Generated {rows} rows -> table '{name}' in the database{also}.")


def _to_file_and_sql(
    chunks: Iterable[pd.DataFrame],
    output: Path,
    url: str,
    update: Any,
    target: dict[str, Any],
) -> int:
    """Each chunk to the file and to the table. The file is finished before the table is made
    visible, and renamed over ``output`` after it; if that rename fails, the table is dropped
    again, so neither is left looking complete when the other failed."""
    from clinsynth.io._chunked import chunk_file
    from clinsynth.io._sql_stream import drop_sql_table, write_sql_chunks

    committed = False
    try:
        with chunk_file(output, num_rows=target["num_rows"]) as out:
            rows = write_sql_chunks(
                _tee(chunks, out), url, progress=update, before_commit=out.close, **target
            )
            committed = True
    except BaseException:
        if committed:
            drop_sql_table(url, target["table_name"], target["schema"])
        raise
    return rows


def _tee(chunks: Iterable[pd.DataFrame], out: Any) -> Iterator[pd.DataFrame]:
    """The chunks, each written to the file ``out`` before it goes on to the database."""
    for chunk in chunks:
        out.write(chunk)
        yield chunk
