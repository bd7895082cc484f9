"""The model registry: name -> synthesizer class (drives CLI, dashboard, benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from clinsynth.errors import ParameterError

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer

_REGISTRY: dict[str, type[BaseSynthesizer]] = {}
_ALIASES: dict[str, str] = {}

T = TypeVar("T", bound="type[BaseSynthesizer]")


def register(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
    """Class decorator: make a synthesizer available by ``name`` (and its aliases)."""

    def wrap(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ParameterError(f"A synthesizer named '{name}' is already registered.")
        cls._model_name = name
        _REGISTRY[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return wrap


def get_synthesizer(name: str) -> type[BaseSynthesizer]:
    """The synthesizer class registered as ``name`` (or one of its aliases, or its class name)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key in _REGISTRY:
        return _REGISTRY[key]
    for cls in _REGISTRY.values():
        if cls.__name__ == name:
            return cls
    raise ParameterError(
        f"Unknown model '{name}'. Available: {', '.join(sorted(_REGISTRY))} "
        "(see `clinsynth models`)."
    )


def list_synthesizers(*, sequential: bool = False) -> dict[str, type[BaseSynthesizer]]:
    """Every registered single-table synthesizer by name, in registration order; with
    ``sequential=True`` also the models of sequences (one table of events per patient, with a
    ``sequence_key``), whose ``sample`` counts sequences rather than rows."""
    return {
        name: cls
        for name, cls in _REGISTRY.items()
        if sequential or not getattr(cls, "_sequential", False)
    }
