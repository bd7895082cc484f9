"""Conditional sampling for any synthesizer: equality on levels, ranges on numbers.

A model meets a condition through the strategy it declares (``model.conditioning()``, see
:mod:`clinsynth.synthesizers._conditioning`): :class:`Candidates` are rows generated under the
condition, then checked and topped up here; :class:`CheckedRows` already meet the condition and
the rules (the noise-space importance resampling of TVAE, HVAE-GAN and CTGAN; TabDDPM's splitting
of its reverse diffusion); :class:`Rejection` (every other model) gets rejection sampling whose
batch size follows the measured acceptance rate.

After each conditional ``sample``, ``model.conditioning_stats_`` tells how the rows were made:
``method``, ``draws`` (rows generated and decoded) and ``rounds``, plus the strategy's own counts
(``ConditionedRows.details``). Conditions are parsed and checked in ``_condition_parse``.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinsynth.errors import SamplingError
from clinsynth.synthesizers import _rules
from clinsynth.synthesizers._condition_parse import (
    brief,
    is_missing,
    parse_condition_strings,  # noqa: F401  (the tests import it from here)
    parse_conditions,
)
from clinsynth.synthesizers._conditioning import ConditionedRows
from clinsynth.transform import CategoricalTransformer

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer


logger = logging.getLogger(__name__)


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


def mask_for(df: pd.DataFrame, parsed: dict[str, Any], synth: BaseSynthesizer | None) -> np.ndarray:
    """Rows of ``df`` meeting every parsed condition (``synth`` gives the columns' metadata:
    ordinal orders, date formats)."""
    keep = np.ones(len(df), dtype=bool)
    columns = synth._table_metadata().columns if synth is not None else {}
    for column, cond in parsed.items():
        values = df[column]
        if cond[0] == "eq" and is_missing(cond[1]):
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
    rng = synth._sample_rng_ if rng is None else rng
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
            f"Could make only {have:,} of {num_rows:,} rows meeting {brief(conditions)}: "
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
            f"Could make only {len(rows):,} of {num_rows:,} rows meeting {brief(conditions)} "
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
