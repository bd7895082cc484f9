"""The typer application that every ``clinsynth`` command module registers on."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def _no_flag_types(params: list[Any]) -> list[Any]:
    """Flags take no value: recent typers still print ``<bool>`` after them; an empty metavar
    prints nothing (older typers never print one for flags)."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_types(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_types(super().get_params(ctx))


class _Typer(typer.Typer):
    """A typer app whose commands print no type after their flags."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _Typer(
    name="clinsynth",
    help="Synthetic clinical data with evidence of fidelity and privacy.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
