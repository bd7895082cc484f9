"""The CLI's shared console, progress bar and helpers (metadata given or detected, output kind)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from clinsynth.errors import DataError

console = Console(stderr=False, highlight=False)


class _Remaining(TimeRemainingColumn):
    """rich's time remaining, unless the library's message already says its own ETA (the deep
    models' training loop): one estimate on the line, not two that disagree."""

    def render(self, task: Any) -> Text:
        if "ETA" in str(task.fields.get("message", "")):
            return Text("")
        return Text("ETA ") + super().render(task)


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


def load_metadata(metadata: Path | None, data: Any) -> Any:
    from clinsynth import Metadata

    if metadata is not None:
        return Metadata.load_from_json(metadata)
    if isinstance(data, dict):
        return Metadata.detect_from_dataframes(data)
    return Metadata.detect_from_dataframe(data)


def output_kind(path: Path) -> str:
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
