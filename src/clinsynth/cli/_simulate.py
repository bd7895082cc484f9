"""``clinsynth simulate``: write one of the built-in simulated data sets to disk."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from clinsynth.cli._app import app
from clinsynth.errors import ParameterError
from clinsynth.io._formats import (
    folder_formats,
    format_of,
    get_format,
    listed_formats,
    listed_names,
    listed_suffixes,
)


class Simulator(StrEnum):
    population = "population"
    cohort = "cohort"
    hospital = "hospital"
    case_control = "case-control"


def _format_name(value: str | None) -> str | None:
    """--format: a format of the table of formats, read when the command runs (a folder of
    tables takes those with folder=True)."""
    if value is not None and value.lower() not in listed_formats():
        raise ParameterError(
            f"--format '{value}' is not a format clinsynth writes. Use one of: "
            f"{', '.join(listed_formats())}."
        )
    return None if value is None else value.lower()


_HELP = (
    "Simulate a built-in data set and write it with its metadata.\n\n"
    "population: patients from a knowledge graph (variants, exposures, diseases, labs, "
    "drugs).\n"
    "cohort: 20 clinical features and a condition label.\n"
    "hospital: patients, visits and lab results (3 tables).\n"
    "case-control: a study matched 1:4 on age and sex, each control's case.id pointing to its "
    "case (-n: the number of cases).\n\n"
    "Single tables go to OUT (.csv, .xlsx or .parquet, by suffix) with the metadata beside it "
    "as <OUT stem>.metadata.json. The hospital and the case-control study go to the folder "
    "OUT, one file per table, with metadata.json inside. Writes are atomic.\n\n"
    "Examples:\n\n"
    "  clinsynth simulate population -n 10000 -o pop.csv --seed 1\n\n"
    "  clinsynth simulate population -n 5000 -o t2d.parquet --diseases type2_diabetes,obesity"
    "\n\n"
    "  clinsynth simulate population -n 1000 -o mine.csv --config my_graph.yaml\n\n"
    "  clinsynth simulate cohort -n 2000 -o cohort.xlsx --conditions healthy,diabetes\n\n"
    "  clinsynth simulate hospital -n 500 -o hospital --format parquet\n\n"
    "  clinsynth simulate case-control -n 1000 -o matched\n"
)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command("simulate", help=_HELP)
def simulate(
    kind: Simulator = typer.Argument(
        ..., help="Which simulator: population, cohort, hospital or case-control."
    ),
    num_rows: int = typer.Option(
        1000,
        "-n",
        "--num-rows",
        help="Rows to simulate (patients for 'hospital', cases for 'case-control').",
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Output file (population, cohort) or folder (hospital, case-control).",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed: same seed, same data."),
    config: Path | None = typer.Option(
        None, "--config", help="Knowledge graph as YAML or JSON (population only)."
    ),
    diseases: str | None = typer.Option(
        None, "--diseases", help="Comma-separated disease ids to keep (population only)."
    ),
    conditions: str | None = typer.Option(
        None, "--conditions", help="Comma-separated conditions to draw (cohort only)."
    ),
    file_format: str | None = typer.Option(
        None,
        "--format",
        help="csv, parquet (or xlsx for one table). Default: OUT's suffix, else csv.",
        callback=_format_name,
    ),
) -> None:
    from clinsynth import simulate as sim

    _check_options(kind, config=config, diseases=diseases, conditions=conditions)
    if kind in (Simulator.hospital, Simulator.case_control):
        fmt = file_format or "csv"
        if not get_format(fmt).folder:
            raise ParameterError(
                f"The {kind.value} simulator writes a folder of "
                f"{listed_names(folder=True, labels=True)} files; use --format "
                f"{' or --format '.join(folder_formats())}."
            )
        _check_folder(output)
        if kind is Simulator.hospital:
            tables, metadata = sim.simulate_hospital(num_rows, seed=seed)
        else:
            tables, metadata = sim.simulate_case_control(num_rows, seed=seed)
        _write_folder(tables, metadata, output, fmt)
        sizes = ", ".join(f"{name} {len(df)}" for name, df in tables.items())
        typer.echo(f"Wrote {sizes} rows to '{output}' (with metadata.json).")
        return
    path = _single_path(output, file_format)
    if kind is Simulator.population:
        data, metadata = sim.simulate_population(
            num_rows, seed=seed, diseases=_split(diseases), graph=config
        )
    else:
        data, metadata = sim.simulate_cohort(num_rows, seed=seed, conditions=_split(conditions))
    from clinsynth.io import write_table

    meta_path = path.with_name(f"{path.stem}.metadata.json")
    write_table(data, path)
    metadata.save_to_json(meta_path)
    typer.echo(f"Wrote {len(data)} rows to '{path}' and the metadata to '{meta_path}'.")


def _check_options(kind: Simulator, **given: object) -> None:
    allowed = {
        Simulator.population: ("config", "diseases"),
        Simulator.cohort: ("conditions",),
        Simulator.hospital: (),
        Simulator.case_control: (),
    }[kind]
    wrong = [name for name, value in given.items() if value is not None and name not in allowed]
    if wrong:
        raise ParameterError(
            f"--{wrong[0]} does not apply to 'clinsynth simulate {kind.value}'. "
            "--config and --diseases are for population, --conditions for cohort."
        )


def _single_path(output: Path, file_format: str | None) -> Path:
    suffix = output.suffix.lower()
    if not suffix:
        fmt = get_format(file_format or "csv")
        return output.with_name(f"{output.name}{fmt.writes[0]}")
    written = format_of(output, writing=True)
    if written is None:
        raise ParameterError(
            f"Cannot write '{output}': unsupported type '{suffix}'. Use {listed_suffixes()}."
        )
    if file_format is not None and written.name != file_format:
        raise ParameterError(
            f"--format {file_format} disagrees with the suffix of '{output}'. Drop --format "
            "or change the suffix."
        )
    return output


def _check_folder(output: Path) -> None:
    """Refuse to replace a folder that holds anything other than a previous simulation."""
    if output.exists() and not output.is_dir():
        raise ParameterError(f"'{output}' is a file; the simulated tables need a folder path.")
    if output.is_dir():
        ours = {"metadata.json"} | {
            f"{t}.{ext}"
            for t in ("patients", "visits", "lab_results", "subjects")
            for ext in (get_format(name).writes[0].lstrip(".") for name in folder_formats())
        }
        others = sorted(p.name for p in output.iterdir() if p.name not in ours)
        if others:
            raise ParameterError(
                f"Folder '{output}' already holds other files ({', '.join(others[:3])}); the "
                "whole folder would be replaced. Choose a new or empty folder."
            )


def _write_folder(tables: dict, metadata, output: Path, fmt: str) -> None:
    from clinsynth.io import atomic_path, write_tables

    # One atomic move for the tables and their metadata together.
    with atomic_path(output, directory=True) as tmp:
        write_tables(tables, tmp, file_format=fmt)
        metadata.save_to_json(tmp / "metadata.json")
