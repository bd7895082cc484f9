"""Conditional sampling for any synthesizer: equality on levels, ranges on numbers.

Models with native conditioning define ``_sample_conditioned(n, parsed, rng)``, which returns
either ``n`` candidate rows (encoded, or decoded as a DataFrame) generated under the condition,
which are then checked and topped up here, or a :class:`ConditionedRows` of rows that already meet
the condition and the rules (the noise-space importance resampling of TVAE, HVAE-GAN and CTGAN, see
``_latent_conditioning``; TabDDPM's splitting of its reverse diffusion, see
``_diffusion_conditioning``; such a model sets ``_conditioning_checks_rows = True`` and its hook
takes ``max_rounds``), or None for "no native way".
Every other model gets rejection sampling whose batch size follows the measured acceptance rate.

After each conditional ``sample``, ``model.conditioning_stats_`` tells how the rows were made:
``method``, ``draws`` (rows generated and decoded) and ``rounds``, plus the hook's own counts
(``ConditionedRows.details``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinsynth.errors import ParameterError, SamplingError
from clinsynth.synthesizers import _rules
from clinsynth.transform import CategoricalTransformer

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer


logger = logging.getLogger(__name__)


@dataclass
class ConditionedRows:
    """What a native hook returns when it checks the condition itself.

    ``rows`` all meet the condition and every rule (there may be fewer than asked when the
    budget ran out); ``draws`` rows were generated in ``rounds`` rounds; ``details`` (counts of
    the method's phases) are added to ``conditioning_stats_``.
    """

    rows: pd.DataFrame
    draws: int
    rounds: int
    method: str
    details: dict[str, int] = field(default_factory=dict)


_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|==|=|>|<)\s*(.+?)\s*$")


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
    for item in items:
        match = _CONDITION.match(item)
        if not match:
            raise ParameterError(
                f"Cannot read condition {item!r}. Write COLUMN=VALUE, COLUMN>=LOW or COLUMN<=HIGH, "
                "e.g. --condition 'condition=diabetes' --condition 'age>=60'."
            )
        column, op, raw = match.groups()
        value = parse_value(raw)
        if op in ("=", "=="):
            out[column] = value
            continue
        low, high = (
            out.get(column, (None, None))
            if isinstance(out.get(column), tuple)
            else (
                None,
                None,
            )
        )
        if op in (">=", ">"):
            low = value
        else:
            high = value
        out[column] = (low, high)
    return out


def parse_conditions(synth: BaseSynthesizer, conditions: dict[str, Any]) -> dict[str, Any]:
    """Check condition columns and values against the fitted model; normalize ranges."""
    table = synth._table_metadata()
    parsed: dict[str, Any] = {}
    for column, value in conditions.items():
        if column not in table.columns:
            raise SamplingError(
                f"Condition on '{column}', which is not a column. {_hint(column, table.columns)}"
            )
        sdtype = table.columns[column]["sdtype"]
        if isinstance(value, tuple | list) and len(value) == 2:
            low, high = value
            if sdtype not in ("numerical", "datetime", "ordinal"):
                raise SamplingError(
                    f"Condition on '{column}' is a range, but the column is {sdtype}; give one "
                    "value."
                )
            if low is not None and high is not None and low > high:
                raise SamplingError(
                    f"Condition on '{column}' is a contradictory range ({low}, {high}): the low "
                    "end is above the high end."
                )
            _check_range_reachable(synth, column, low, high)
            parsed[column] = ("range", low, high)
        else:
            model_columns = synth._transformer_.column_names
            transformer = (
                synth._transformer_.get_transformer(column) if column in model_columns else None
            )
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
                        f"Condition {column}={value!r} was never seen in the training data, so "
                        f"no row can be made for it. Known values: {known}."
                    )
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
    to_num = (lambda v: pd.Timestamp(v).value / 1e9) if transformer.kind == "datetime" else float
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


def mask_for(df: pd.DataFrame, parsed: dict[str, Any], synth: BaseSynthesizer) -> np.ndarray:
    keep = np.ones(len(df), dtype=bool)
    for column, cond in parsed.items():
        values = df[column]
        if cond[0] == "eq" and (
            cond[1] is None or (isinstance(cond[1], float) and np.isnan(cond[1]))
        ):
            keep &= values.isna().to_numpy()  # a condition on "missing"
        elif cond[0] == "eq":
            # Compare as levels do: 2, 2.0 and "2" are the same value.
            key = CategoricalTransformer._key(cond[1])
            factor, uniques = pd.factorize(values, use_na_sentinel=True)
            hits = np.array([CategoricalTransformer._key(u) == key for u in uniques], dtype=bool)
            keep &= (factor >= 0) & (hits[np.maximum(factor, 0)] if len(hits) else False)
        else:
            _, low, high = cond
            compare = (
                pd.to_datetime(values) if not pd.api.types.is_numeric_dtype(values) else values
            )
            ok = compare.notna()
            if low is not None:
                ok &= compare >= (pd.Timestamp(low) if isinstance(low, str) else low)
            if high is not None:
                ok &= compare <= (pd.Timestamp(high) if isinstance(high, str) else high)
            keep &= ok.to_numpy(dtype=bool)
    return keep


def sample_with_conditions(
    synth: BaseSynthesizer, num_rows: int, conditions: dict[str, Any], max_tries: int
) -> pd.DataFrame:
    """Exactly ``num_rows`` rows meeting ``conditions`` and every rule of the model.

    Uses the model's native conditioning (``_sample_conditioned``, see the module docstring)
    when it has one; a hook that returns encoded rows is used only when no condition falls on a
    column reparametrized by a rule (it conditions on encoded columns). Otherwise rejection,
    with batches sized by the measured acceptance rate.
    """
    parsed = parse_conditions(synth, conditions)
    rng = synth._sample_rng
    native = getattr(synth, "_sample_conditioned", None)
    checks_rows = native is not None and bool(getattr(synth, "_conditioning_checks_rows", False))
    if checks_rows and num_rows > 0:
        out = native(num_rows, parsed, rng, max_rounds=max_tries)
        if out is not None:
            return _checked_rows(synth, out, num_rows, conditions, parsed, rng)
    changed = _rules.model_changed_columns(getattr(synth, "_rules_", []))
    use_native = native is not None and not set(parsed) & changed
    kept: list[pd.DataFrame] = []
    have, tried, batch, rounds = 0, 0, max(num_rows, 100), 0
    method = "rejection"
    for _ in range(max_tries):
        rounds += 1
        df = None
        if use_native:
            out = native(batch, parsed, rng)
            if isinstance(out, ConditionedRows):  # e.g. a wrapper (auto) around such a hook
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
        # Ask for what is missing at the measured acceptance rate, with margin; cap memory.
        batch = int(min(max((num_rows - have) / rate * 1.2, 100), 2_000_000))
    if method != "rejection" and rounds == 1:
        method = "native conditioning"
    _record(synth, method, tried, rounds, have)
    if have < num_rows:
        raise SamplingError(
            f"Could make only {have} of {num_rows} rows meeting {conditions} after {tried} "
            "draws: the condition is too rare for the model (or contradicts the data). Relax "
            "the condition or use a model with native conditioning (gaussian_copula, ctgan)."
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
    # The hook checked them; checking again costs little and keeps the promise here.
    rows = rows[mask_for(rows, parsed, synth) & synth._valid(rows)]
    _record(synth, out.method, out.draws, out.rounds, len(rows), out.details)
    if len(rows) < num_rows:
        raise SamplingError(
            f"Could make only {len(rows)} of {num_rows} rows meeting {conditions} after "
            f"{out.draws} draws in {out.rounds} rounds ({out.method}): the condition is too "
            "rare for the model (or contradicts the data). Relax the condition, train longer, "
            "or raise max_tries_per_batch."
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
