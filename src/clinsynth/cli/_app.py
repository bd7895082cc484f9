"""The typer application that every ``clinsynth`` command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="clinsynth",
    help="Synthetic clinical data with evidence of fidelity and privacy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
