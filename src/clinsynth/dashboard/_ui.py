"""Small pieces shared by the steps: error messages, progress bars, the 'next step' button."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
import streamlit as st

from clinsynth.dashboard import _state
from clinsynth.errors import ClinsynthError

logger = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """The message a user reads: the ClinsynthError text, or a plain summary of anything else."""
    if isinstance(exc, ClinsynthError):
        return str(exc)
    # Anything else is a bug or an environment problem: say so plainly; the log has the trace.
    logger.exception("Unexpected error in the dashboard")
    return (
        f"Something went wrong ({type(exc).__name__}: {exc}). Your data and settings are kept; "
        "try again, or change the settings of this step."
    )


def show_error(exc: BaseException, *, where: str = "") -> None:
    """Show an error in the page (never a stack trace); the app keeps running."""
    text = error_text(exc)
    headline, *rest = text.splitlines() or [""]
    body = (f"**{where}** " if where else "") + headline
    if rest:
        body += "\n\n" + "\n".join(f"- {line.strip().removeprefix('- ')}" for line in rest)
    st.error(body, icon=":material/error:")


def progress_callback(
    bar: st.delta_generator.DeltaGenerator, what: str, *, then: Callable | None = None
) -> Callable:
    """A ``(total, completed, message)`` callback that moves ``bar`` (an ``st.progress``).

    ``then``, when given, is called with the same arguments after the bar has moved.
    """

    def update(total: int, completed: int, message: str = "") -> None:
        fraction = 0.0 if not total else min(max(completed / total, 0.0), 1.0)
        detail = f" — {message}" if message else ""
        bar.progress(fraction, text=f"{what}: {completed} of {total}{detail}")
        if then is not None:
            then(total, completed, message)

    return update


def run_with_progress(
    work: Callable[[Callable], object],
    what: str,
    *,
    failed: str,
    then: Callable | None = None,
    where: st.delta_generator.DeltaGenerator | None = None,
) -> object | None:
    """``work(progress)`` under a progress bar (in ``where``, a placeholder, when given); None
    after showing the error in the page."""
    bar = (where or st).progress(0.0, text="Starting...")
    try:
        return work(progress_callback(bar, what, then=then))
    except Exception as exc:  # noqa: BLE001 - shown in the page; the app keeps running
        show_error(exc, where=failed)
        return None
    finally:
        bar.empty()


def number(
    where: st.delta_generator.DeltaGenerator,
    label: str,
    key: str,
    first: int | float,
    *,
    min_value: int | float = 0,
    max_value: int | float | None = None,
    step: int | float = 1,
    help: str | None = None,  # noqa: A002 - Streamlit's name
) -> int | float:
    """A number input in ``where`` whose value is kept in the session under ``key``.

    Integers in, integers out; a float ``first`` gives a float input.
    """
    value = where.number_input(
        label,
        min_value=min_value,
        max_value=max_value,
        step=step,
        key=default(key, first),
        help=help,
    )
    return float(value) if isinstance(first, float) else int(value)


def next_step(current: str, *, label: str | None = None) -> None:
    """A button that opens the step after ``current`` (enabled once ``current`` is done)."""
    index = _state.STEPS.index(current)
    if index + 1 >= len(_state.STEPS):
        return
    following = _state.STEPS[index + 1]
    st.divider()
    st.button(
        label or f"Next: {index + 2}. {following} →",
        type="primary",
        disabled=not _state.is_done(current),
        on_click=_state.go_to,
        args=(following,),
        key=f"next_{current}",
    )


def needs(step: str, product: str, message: str) -> bool:
    """Show where to go first when ``product`` is missing; True when the step can go on."""
    if _state.get(product) is not None:
        return True
    st.info(message, icon=":material/arrow_back:")
    st.button(f"Go to {_state.STEPS.index(step) + 1}. {step}", on_click=_state.go_to, args=(step,))
    return False


def default(key: str, value: object) -> str:
    """Give the widget ``key`` its first value (kept in the session afterwards); returns the key.

    Widgets get their value from the session rather than from ``value=``, so that a value set
    once is neither reset nor set twice.
    """
    st.session_state.setdefault(key, value)
    return key


def describe_conditions(conditions: dict) -> str:
    """``{"sex": "F", "age": (60, None)}`` -> ``"sex = F, age >= 60"``."""
    parts = []
    for column, value in conditions.items():
        if isinstance(value, tuple):
            low, high = value
            if low is not None:
                parts.append(f"{column} >= {low}")
            if high is not None:
                parts.append(f"{column} <= {high}")
        else:
            parts.append(f"{column} = {value}")
    return ", ".join(parts)


def parents_first(names: list[str], relationships: list[dict]) -> list[str]:
    """Table names with every parent before its children (patients, visits, lab results)."""
    parents = {
        name: {
            r["parent_table_name"]
            for r in relationships
            if r["child_table_name"] == name and r["parent_table_name"] != name
        }
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        ordered += ready or [n for n in names if n not in ordered]  # a cycle: keep the rest
    return ordered


def sort_links(
    links: list[dict],
    metadata: object,
    *,
    child: str = "child_table_name",
    parent: str = "parent_table_name",
) -> list[dict]:
    """Links (relationships, or per-relationship figures) in the parents-first table order."""
    order = parents_first(list(metadata.tables), metadata.relationships)
    return sorted(links, key=lambda link: (order.index(link[child]), order.index(link[parent])))


def table_picker(tables: dict, key: str, *, label: str = "Table") -> str:
    """A choice among linked tables (``{name: DataFrame}``), parents first, kept under ``key``."""
    metadata = _state.get("metadata")
    names = parents_first(list(tables), metadata.relationships if metadata is not None else [])
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    return st.selectbox(
        label,
        names,
        key=key,
        format_func=lambda t: (
            f"{t} ({len(tables[t]):,} rows, {plural(tables[t].shape[1], 'column')})"
        ),
    )


def plural(count: int, noun: str) -> str:
    """``plural(1, "column")`` -> ``"1 column"``; ``plural(9, "column")`` -> ``"9 columns"``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def tables_label(count: int) -> str:
    """``"3 linked tables"``, or ``"2 tables (not linked)"`` when the metadata has no link."""
    metadata = _state.get("metadata")
    linked = metadata is not None and bool(metadata.relationships)
    return f"{count} linked tables" if linked else f"{count} tables (not linked)"


def preview(frame: pd.DataFrame, rows: int = 100) -> None:
    """The first ``rows`` rows; dates without a time of day are shown as dates (no 00:00:00)."""
    head = frame.head(rows)
    config = {}
    for column in head.columns:
        if pd.api.types.is_datetime64_any_dtype(head[column]):
            values = head[column].dropna()
            if (values == values.dt.normalize()).all():
                config[column] = st.column_config.DateColumn(format="YYYY-MM-DD")
    st.dataframe(head, hide_index=True, column_config=config or None)
