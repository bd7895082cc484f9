"""Conditions read and checked before any row is drawn: COLUMN=VALUE / COLUMN>=LOW / COLUMN<=HIGH
texts parsed, every value checked against the column's kind, levels and reachable range, and
impossible conditions refused at once with what the column holds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinsynth.errors import ParameterError, SamplingError
from clinsynth.metadata import is_pii
from clinsynth.synthesizers import _rules
from clinsynth.transform import CategoricalTransformer

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer


_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|==|=|>|<)\s*(.+?)\s*$")


_SYNTAX = (
    "Write COLUMN=VALUE, COLUMN>=LOW or COLUMN<=HIGH, e.g. --condition 'condition=diabetes' "
    "--condition 'age>=60'."
)


def parse_value(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text.strip("'\"")


def parse_condition_strings(items: list[str]) -> dict[str, Any]:
    """``["condition=diabetes", "age>=60"]`` -> ``{"condition": "diabetes", "age": (60, None)}``.

    >>> parse_condition_strings(["sex=F", "age>=60", "age<=80"])
    {'sex': 'F', 'age': (60, 80)}
    """
    out: dict[str, Any] = {}
    given: dict[tuple[str, str], str] = {}  # (column, "eq"/"low"/"high") -> the text given
    for item in items:
        match = _CONDITION.match(item)
        if not match or match.group(3)[:1] in "<>=!":
            raise ParameterError(f"Cannot read condition {item[:100]!r}. {_SYNTAX}")
        column, op, raw = match.groups()
        value = parse_value(raw)
        if op in (">", "<"):
            example = (
                f", e.g. '{column}{op}={value + 1 if op == '>' else value - 1}'"
                if isinstance(value, int) and not isinstance(value, bool)
                else ""
            )
            raise ParameterError(
                f"Condition {item[:100]!r} uses a strict '{op}'; clinsynth ranges include their "
                f"ends. Write '{column}{op}=' with the first value to keep{example}."
            )
        part = {"=": "eq", "==": "eq", ">=": "low", "<=": "high"}[op]
        _check_repeat(given, column, part, item, value, out)
        given[(column, part)] = item
        if part == "eq":
            out[column] = value
            continue
        low, high = out.get(column, (None, None))
        out[column] = (value, high) if part == "low" else (low, value)
    return out


def _check_repeat(
    given: dict[tuple[str, str], str],
    column: str,
    part: str,
    item: str,
    value: Any,
    out: dict[str, Any],
) -> None:
    """Refuse a condition that repeats or contradicts one given before on the same column."""
    if part == "eq" and (column, "eq") in given and out[column] == value:
        return  # the same condition twice
    clash = given.get((column, part))
    if clash is None and part == "eq":
        clash = given.get((column, "low")) or given.get((column, "high"))
    if clash is None and part != "eq":
        clash = given.get((column, "eq"))
    if clash is not None:
        raise ParameterError(
            f"Conditions {clash[:100]!r} and {item[:100]!r} both constrain '{column}' and "
            "contradict or repeat each other (only one could be kept). A row has one value per "
            f"column: give one value, or one range (one low and one high end), for '{column}'."
        )


def parse_conditions(synth: BaseSynthesizer, conditions: dict[str, Any]) -> dict[str, Any]:
    """Check condition columns and values against the fitted model; normalize ranges.

    A condition no row can meet is refused at once, with the reason: an unknown column or
    level, a value of the wrong type (a word for a number), a value outside the range seen in
    training or finer than the column's rounding, a condition on a generated column.
    """
    table = synth._table_metadata()
    parsed: dict[str, Any] = {}
    for column, value in conditions.items():
        if column not in table.columns:
            raise SamplingError(
                f"Condition on '{column}', which is not a column. {_hint(column, table.columns)}"
            )
        spec = table.columns[column]
        sdtype = spec["sdtype"]
        transformer = _transformer_of(synth, column)
        _refuse_generated(column, spec, transformer)
        if isinstance(value, tuple | list) and len(value) == 2:
            low, high = value
            if sdtype not in ("numerical", "datetime", "ordinal"):
                raise SamplingError(
                    f"Condition on '{column}' is a range, but the column is {sdtype}; give one "
                    "value."
                )
            low, high = (_range_end(column, spec, v) for v in (low, high))
            if (
                low is not None
                and high is not None
                and _order_key(spec, low) > _order_key(spec, high)
            ):
                raise SamplingError(
                    f"Condition on '{column}' is a contradictory range ({low}, {high}): the low "
                    "end is above the high end."
                )
            _check_range_reachable(synth, column, low, high)
            parsed[column] = ("range", low, high)
        else:
            _check_value(synth, column, spec, transformer, value)
            levels = getattr(transformer, "levels_", None)
            if transformer is None:  # derived by a rule: the values the rule can give
                levels = _rules.derived_levels(getattr(synth, "_rules_", []), column)
                if levels is not None and CategoricalTransformer._key(value) not in {
                    CategoricalTransformer._key(v) for v in levels
                }:
                    raise SamplingError(
                        f"Condition {column}={value!r} can never be met: '{column}' is derived "
                        f"by a rule and takes only {levels[:10]}."
                    )
            elif levels is not None:
                keys = {transformer._key_or_none(v) for v in levels}
                if transformer._key_or_none(value) not in keys:
                    known = [v for v in levels if v is not None][:10]
                    raise SamplingError(
                        f"Condition {column}={brief(value)} was never seen in the training "
                        f"data, so no row can be made for it. Known values: {known}."
                    )
            if sdtype == "datetime" and not is_missing(value):
                # A date equals a date whatever its spelling ("2021-03-01" and a Timestamp).
                parsed[column] = ("range", value, value)
            else:
                parsed[column] = ("eq", value)
    return parsed


def _hint(column: str, columns: Any, most: int = 8) -> str:
    """ "Did you mean ...?" from the close names, else the first few columns and a count.

    >>> _hint("agee", ["age", "sex", "agent"])
    "Did you mean 'age' or 'agent'?"
    """
    import difflib

    names = [str(c) for c in columns]
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(column.lower(), list(lower), n=3, cutoff=0.6)
    if close:
        quoted = [f"'{lower[c]}'" for c in close]
        return f"Did you mean {' or '.join(quoted) if len(quoted) < 3 else ', '.join(quoted)}?"
    shown = ", ".join(names[:most])
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"Columns: {shown}{more}."


def brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _transformer_of(synth: BaseSynthesizer, column: str) -> Any:
    """The model's transformer of ``column``, or None (a column reparametrized by a rule)."""
    if column in synth._transformer_.column_names:
        return synth._transformer_.get_transformer(column)
    return None


def _refuse_generated(column: str, spec: dict, transformer: Any) -> None:
    kind = getattr(transformer, "kind", None)
    if spec["sdtype"] == "id" or is_pii(spec) or kind in ("id", "pii", "format"):
        raise SamplingError(
            f"Condition on '{column}', a column that is generated (identifiers, personal data, "
            "or values too rare to learn), not learned: no row can be asked to have a given "
            "value there. Condition on a learned column instead."
        )


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _as_number(column: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        try:
            return float(str(value).strip())
        except ValueError:
            raise SamplingError(
                f"Condition {column}={brief(value)}: '{column}' is numerical, so the value must "
                f"be a number (e.g. {column}=60 or {column}>=60)."
            ) from None
    return float(value)


def _as_time(column: str, value: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise SamplingError(
            f"Condition {column}={brief(value)}: '{column}' holds dates, so the value must be a "
            f"date such as 2020-01-31 (or a range: {column}>=2020-01-01)."
        ) from None
    return stamp


def _range_end(column: str, spec: dict, value: Any) -> Any:
    """A range end checked against the column's type (numbers, dates, or ordinal levels)."""
    if value is None:
        return None
    sdtype = spec["sdtype"]
    if sdtype == "numerical":
        number = _as_number(column, value)
        return int(number) if isinstance(value, int) else number
    if sdtype == "datetime":
        _as_time(column, value)
        return value
    order = spec.get("order")
    if order is not None:
        keys = [CategoricalTransformer._key(v) for v in order]
        if CategoricalTransformer._key(value) not in keys:
            raise SamplingError(
                f"Condition on '{column}': {brief(value)} is not one of its ordered levels "
                f"{list(order)[:10]}."
            )
    return value


def _order_key(spec: dict, value: Any) -> Any:
    if spec["sdtype"] == "datetime":
        return _seconds(value)
    if spec["sdtype"] == "ordinal" and spec.get("order") is not None:
        keys = [CategoricalTransformer._key(v) for v in spec["order"]]
        return keys.index(CategoricalTransformer._key(value))
    return value


def _check_value(synth: BaseSynthesizer, column: str, spec: dict, transformer: Any, value: Any):
    """Refuse at once an equality on a number or a date that no decoded row can have."""
    sdtype = spec["sdtype"]
    if is_missing(value) or sdtype not in ("numerical", "datetime"):
        return
    if sdtype == "numerical":
        number = _as_number(column, value)
        seconds = None
    else:
        stamp = _as_time(column, value)
        number = stamp.tz_convert("UTC").tz_localize(None) if stamp.tz else stamp
        seconds = (number - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        number = seconds
    if transformer is None or getattr(transformer, "empty_", True):
        return
    if synth.enforce_min_max_values and not transformer.min_ <= number <= transformer.max_:
        shown = (
            (transformer.min_, transformer.max_)
            if seconds is None
            else tuple(str(pd.Timestamp(v, unit="s")) for v in (transformer.min_, transformer.max_))
        )
        raise SamplingError(
            f"Condition {column}={brief(value)} lies outside the values seen in training "
            f"({shown[0]} to {shown[1]}), so no row can meet it."
        )
    if seconds is None:
        decimals = getattr(transformer, "decimals_", None)
        if decimals is not None and round(number, decimals) != number:
            step = "whole numbers" if decimals == 0 else f"{decimals} decimal(s)"
            raise SamplingError(
                f"Condition {column}={brief(value)} can never be met: '{column}' comes out "
                f"rounded to {step}, as in the training data. Give a value with {step}, or a "
                f"range ({column}>=LOW and {column}<=HIGH)."
            )
    else:
        unit = float(getattr(transformer, "unit_", 0) or 0)
        if unit >= 1 and abs(seconds / unit - round(seconds / unit)) > 1e-9:
            raise SamplingError(
                f"Condition {column}={brief(value)} can never be met: '{column}' comes out "
                f"rounded to whole {_unit_name(unit)}s, as in the training data. Give such a "
                f"date, or a range ({column}>=START and {column}<=END)."
            )


def _unit_name(unit: float) -> str:
    return {86400.0: "day", 3600.0: "hour", 60.0: "minute"}.get(unit, "second")


def _check_range_reachable(synth: BaseSynthesizer, column: str, low: Any, high: Any) -> None:
    """A range entirely outside the values seen in training can never be met: say so at once
    instead of drawing millions of rows."""
    if not synth.enforce_min_max_values or column not in synth._transformer_.column_names:
        return
    if column in _rules.model_changed_columns(getattr(synth, "_rules_", [])):
        return
    transformer = synth._transformer_.get_transformer(column)
    if transformer.kind not in ("numerical", "datetime") or getattr(transformer, "empty_", True):
        return
    lo, hi = transformer.min_, transformer.max_
    to_num = _seconds if transformer.kind == "datetime" else float
    if (low is not None and to_num(low) > hi) or (high is not None and to_num(high) < lo):
        shown = (
            (lo, hi)
            if transformer.kind == "numerical"
            else tuple(str(pd.Timestamp(v, unit="s")) for v in (lo, hi))
        )
        raise SamplingError(
            f"Condition {column} in ({low}, {high}) lies outside the values seen in training "
            f"({shown[0]} to {shown[1]}), so no row can meet it. Choose a range that overlaps it."
        )


def _seconds(value: Any) -> float:
    stamp = pd.Timestamp(value)
    if stamp.tz is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return (stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
