"""Conditional sampling for any synthesizer: equality on levels, ranges on numbers.

A model meets a condition through the strategy it declares (``model.conditioning()``, see
:mod:`clinsynth.synthesizers._conditioning`): :class:`Candidates` are rows generated under the
condition, then checked and topped up here; :class:`CheckedRows` already meet the condition and
the rules (the noise-space importance resampling of TVAE, HVAE-GAN and CTGAN; TabDDPM's splitting
of its reverse diffusion); :class:`Rejection` (every other model) gets rejection sampling whose
batch size follows the measured acceptance rate.

After each conditional ``sample``, ``model.conditioning_stats_`` tells how the rows were made:
``method``, ``draws`` (rows generated and decoded) and ``rounds``, plus the strategy's own counts
(``ConditionedRows.details``).
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinsynth.errors import ParameterError, SamplingError
from clinsynth.metadata import is_pii
from clinsynth.synthesizers import _rules
from clinsynth.synthesizers._conditioning import ConditionedRows
from clinsynth.transform import CategoricalTransformer

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer


logger = logging.getLogger(__name__)


_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|==|=|>|<)\s*(.+?)\s*$")
_SYNTAX = (
    "Write COLUMN=VALUE, COLUMN>=LOW or COLUMN<=HIGH, e.g. --condition 'condition=diabetes' "
    "--condition 'age>=60'."
)

#: Rejection gives up after this many draws for ``n`` rows: ``max(MIN_DRAW_BUDGET,
#: DRAWS_PER_ROW * n)`` (about a minute for the slowest model), or earlier once ``PROBE_DRAWS``
#: draws show an acceptance rate that could not make the rows within it.
MIN_DRAW_BUDGET = 2_000_000
DRAWS_PER_ROW = 2_000
PROBE_DRAWS = 100_000


def draw_budget(num_rows: int) -> int:
    """The most rows a conditional sample of ``num_rows`` rows may draw before giving up.

    >>> draw_budget(10), draw_budget(10_000)
    (2000000, 20000000)
    """
    return max(MIN_DRAW_BUDGET, DRAWS_PER_ROW * int(num_rows))


def hopeless(have: int, tried: int, num_rows: int, budget: int) -> bool:
    """Whether the acceptance rate seen in ``tried`` draws (``have`` accepted) cannot make
    ``num_rows`` rows within ``budget`` draws (decided after :data:`PROBE_DRAWS` draws)."""
    if have >= num_rows or tried < PROBE_DRAWS:
        return False
    if have == 0:
        return True
    return tried + (num_rows - have) * tried / have > budget


def _rate_text(have: int, tried: int, num_rows: int) -> str:
    """How rare the condition was: the acceptance rate seen and the draws ``num_rows`` need."""
    if tried == 0:
        return "no draw was made"
    if have == 0:
        return f"not one of {tried:,} draws met it (acceptance rate below {1 / tried:.2g})"
    rate = have / tried
    return (
        f"{have:,} of {tried:,} draws met it (acceptance rate {rate:.2g}); {num_rows:,} rows "
        f"would need about {num_rows / rate:,.0f} draws"
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
            levels = getattr(transformer, "levels", None)
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
                        f"Condition {column}={_short(value)} was never seen in the training "
                        f"data, so no row can be made for it. Known values: {known}."
                    )
            if sdtype == "datetime" and not _is_missing(value):
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


def _short(value: Any) -> str:
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


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _as_number(column: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        try:
            return float(str(value).strip())
        except ValueError:
            raise SamplingError(
                f"Condition {column}={_short(value)}: '{column}' is numerical, so the value must "
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
            f"Condition {column}={_short(value)}: '{column}' holds dates, so the value must be a "
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
                f"Condition on '{column}': {_short(value)} is not one of its ordered levels "
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
    if _is_missing(value) or sdtype not in ("numerical", "datetime"):
        return
    if sdtype == "numerical":
        number = _as_number(column, value)
        seconds = None
    else:
        stamp = _as_time(column, value)
        number = stamp.tz_convert("UTC").tz_localize(None) if stamp.tz else stamp
        seconds = (number - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        number = seconds
    if transformer is None or getattr(transformer, "empty", True):
        return
    if synth.enforce_min_max_values and not transformer.min <= number <= transformer.max:
        shown = (
            (transformer.min, transformer.max)
            if seconds is None
            else tuple(str(pd.Timestamp(v, unit="s")) for v in (transformer.min, transformer.max))
        )
        raise SamplingError(
            f"Condition {column}={_short(value)} lies outside the values seen in training "
            f"({shown[0]} to {shown[1]}), so no row can meet it."
        )
    if seconds is None:
        decimals = getattr(transformer, "decimals", None)
        if decimals is not None and round(number, decimals) != number:
            step = "whole numbers" if decimals == 0 else f"{decimals} decimal(s)"
            raise SamplingError(
                f"Condition {column}={_short(value)} can never be met: '{column}' comes out "
                f"rounded to {step}, as in the training data. Give a value with {step}, or a "
                f"range ({column}>=LOW and {column}<=HIGH)."
            )
    else:
        unit = float(getattr(transformer, "unit", 0) or 0)
        if unit >= 1 and abs(seconds / unit - round(seconds / unit)) > 1e-9:
            raise SamplingError(
                f"Condition {column}={_short(value)} can never be met: '{column}' comes out "
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
    if transformer.kind not in ("numerical", "datetime") or getattr(transformer, "empty", True):
        return
    lo, hi = transformer.min, transformer.max
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


def mask_for(df: pd.DataFrame, parsed: dict[str, Any], synth: BaseSynthesizer | None) -> np.ndarray:
    """Rows of ``df`` meeting every parsed condition (``synth`` gives the columns' metadata:
    ordinal orders, date formats)."""
    keep = np.ones(len(df), dtype=bool)
    columns = synth._table_metadata().columns if synth is not None else {}
    for column, cond in parsed.items():
        values = df[column]
        if cond[0] == "eq" and _is_missing(cond[1]):
            keep &= values.isna().to_numpy()  # a condition on "missing"
        elif cond[0] == "eq":
            # Compare as levels do: 2, 2.0 and "2" are the same value.
            key = CategoricalTransformer._key(cond[1])
            factor, uniques = pd.factorize(values, use_na_sentinel=True)
            hits = np.array([CategoricalTransformer._key(u) == key for u in uniques], dtype=bool)
            keep &= (factor >= 0) & (hits[np.maximum(factor, 0)] if len(hits) else False)
        else:
            keep &= _in_range(values, cond[1], cond[2], columns.get(column, {}))
    return keep


def _in_range(values: pd.Series, low: Any, high: Any, spec: dict) -> np.ndarray:
    """Rows whose value lies in ``[low, high]``: numbers, dates (with the column's format and
    time zone), or ordinal levels by their position in the order."""
    if spec.get("sdtype") == "ordinal" and spec.get("order") is not None:
        keys = [CategoricalTransformer._key(v) for v in spec["order"]]
        position = {k: i for i, k in enumerate(keys)}
        factor, uniques = pd.factorize(values, use_na_sentinel=True)
        where = np.array([position.get(CategoricalTransformer._key(u), -1) for u in uniques])
        pos = np.where(factor >= 0, where[np.maximum(factor, 0)] if len(where) else -1, -1)
        ok = pos >= 0
        if low is not None:
            ok &= pos >= position[CategoricalTransformer._key(low)]
        if high is not None:
            ok &= pos <= position[CategoricalTransformer._key(high)]
        return ok
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        compare = values
        bounds = [low, high]
    else:
        compare = _to_times(values, spec.get("datetime_format"))
        tz = getattr(compare.dt, "tz", None)
        bounds = [None if b is None else _stamp_in(b, tz) for b in (low, high)]
    ok = compare.notna()
    if bounds[0] is not None:
        ok &= compare >= bounds[0]
    if bounds[1] is not None:
        ok &= compare <= bounds[1]
    return ok.to_numpy(dtype=bool)


def _to_times(values: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt:
            return pd.to_datetime(values, format=fmt, errors="coerce", utc=_has_offset(fmt))
        return pd.to_datetime(values, errors="coerce", format="mixed")


def _has_offset(fmt: str) -> bool:
    return "%z" in fmt or fmt.endswith("Z")


def _stamp_in(value: Any, tz: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if tz is None:
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp
    return stamp.tz_localize(tz) if stamp.tz is None else stamp.tz_convert(tz)


def sample_with_conditions(
    synth: BaseSynthesizer,
    num_rows: int,
    conditions: dict[str, Any],
    max_tries: int,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Exactly ``num_rows`` rows meeting ``conditions`` and every rule of the model.

    Uses the strategy the model declares (``synth.conditioning()``, see the module docstring):
    candidates generated under the condition are used only when no condition falls on a column
    reparametrized by a rule (they condition on encoded columns). Otherwise rejection, with
    batches sized by the measured acceptance rate.
    """
    parsed = parse_conditions(synth, conditions)
    rng = synth._sample_rng if rng is None else rng
    strategy = synth.conditioning()
    if strategy.checks_rows and num_rows > 0:
        out = strategy.rows(num_rows, parsed, rng, max_rounds=max_tries)
        if out is not None:
            return _checked_rows(synth, out, num_rows, conditions, parsed, rng)
    changed = _rules.model_changed_columns(getattr(synth, "_rules_", []))
    use_native = not strategy.checks_rows and not set(parsed) & changed
    kept: list[pd.DataFrame] = []
    have, tried, batch, rounds = 0, 0, max(num_rows, 100), 0
    budget = draw_budget(num_rows)
    method = "rejection"
    for _ in range(max_tries):
        if tried >= budget or hopeless(have, tried, num_rows, budget):
            break
        rounds += 1
        df = None
        if use_native:
            out = strategy.candidates(batch, parsed, rng)
            if isinstance(out, ConditionedRows):  # e.g. auto around a checking strategy
                return _checked_rows(synth, out, num_rows, conditions, parsed, rng)
            if out is None:
                use_native = False
            else:
                method = "native conditioning, then rejection"
                df = out if isinstance(out, pd.DataFrame) else synth._decode(out, rng)
        if df is None:
            df = synth._decode(synth._sample(batch, rng), rng)
        tried += len(df)
        ok = mask_for(df, parsed, synth) & synth._valid(df)
        if ok.any():
            kept.append(df[ok])
            have += int(ok.sum())
        if have >= num_rows:
            break
        rate = max(have / tried, 1.0 / tried)
        # Ask for what is missing at the measured acceptance rate, with margin; cap memory and
        # the draws left in the budget.
        batch = int(min(max((num_rows - have) / rate * 1.2, 100), 2_000_000, budget - tried))
        batch = max(batch, 1)
    if method != "rejection" and rounds == 1:
        method = "native conditioning"
    _record(synth, method, tried, rounds, have)
    if have < num_rows:
        raise SamplingError(
            f"Could make only {have:,} of {num_rows:,} rows meeting {_short(conditions)}: "
            f"{_rate_text(have, tried, num_rows)}, and sampling gives up after "
            f"{budget:,}. The condition is too rare for the model (or contradicts the data). "
            "Relax the condition, ask for fewer rows, or use a model with native conditioning "
            "(gaussian_copula, ctgan)."
        )
    out = pd.concat(kept, ignore_index=True).iloc[:num_rows].reset_index(drop=True)
    return synth._regenerate_ids(out, rng)


def _record(
    synth: BaseSynthesizer,
    method: str,
    draws: int,
    rounds: int,
    kept: int,
    details: dict[str, int] | None = None,
) -> None:
    synth.conditioning_stats_ = {
        "method": method,
        "draws": int(draws),
        "rounds": int(rounds),
        **{k: int(v) for k, v in (details or {}).items()},
    }
    logger.info(
        "conditional sampling by %s: %d rows met the condition out of %d draws in %d rounds",
        method,
        kept,
        draws,
        rounds,
    )


def _checked_rows(
    synth: BaseSynthesizer,
    out: ConditionedRows,
    num_rows: int,
    conditions: dict[str, Any],
    parsed: dict[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    rows = out.rows
    # The strategy checked them; checking again costs little and keeps the promise here.
    rows = rows[mask_for(rows, parsed, synth) & synth._valid(rows)]
    _record(synth, out.method, out.draws, out.rounds, len(rows), out.details)
    if len(rows) < num_rows:
        raise SamplingError(
            f"Could make only {len(rows):,} of {num_rows:,} rows meeting {_short(conditions)} "
            f"in {out.rounds} rounds ({out.method}): "
            f"{_rate_text(len(rows), out.draws, num_rows)}, and sampling gives up after "
            f"{draw_budget(num_rows):,}. The condition is too rare for the model (or "
            "contradicts the data). Relax the condition, ask for fewer rows, or train longer."
        )
    rows = rows.iloc[:num_rows].reset_index(drop=True)
    return synth._regenerate_ids(rows, rng)


def sample_from_condition_rows(synth: BaseSynthesizer, conditions: pd.DataFrame) -> pd.DataFrame:
    if len(conditions) == 0:
        return synth._sample_rows(0)
    cols = list(conditions.columns)
    filled = conditions.notna()
    groups = conditions.assign(_order=np.arange(len(conditions)))
    pieces = []
    keys = (
        filled.astype(int).astype(str).agg("".join, axis=1)
        + "|"
        + conditions.map(str).agg("\x1f".join, axis=1)  # pandas 3's astype(str) keeps NaN
    )
    for _, idx in groups.groupby(keys, sort=False).groups.items():
        first = conditions.loc[idx[0]]
        cond = {c: first[c] for c in cols if pd.notna(first[c])}
        rows = synth.sample(len(idx), conditions=cond) if cond else synth._sample_rows(len(idx))
        rows.index = groups.loc[idx, "_order"].to_numpy()
        pieces.append(rows)
    return pd.concat(pieces).sort_index().reset_index(drop=True)
