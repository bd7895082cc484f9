"""Date order across and within tables: detect the rules the real data always keeps, keep them.

At fit time every date column ``X`` of a table is compared with the earlier date columns of its
own row and with the date columns of its parent, grandparent... rows. A *rule* is a pair that
is ordered the same way on every real row where both are present (a visit's admission is never
before the patient's birth; a lab result lies between admission and discharge). The tightest
rule on each side becomes the column's *anchor* and the model learns the gap rather than the
date: ``X - low`` (``offset``), ``high - X`` (``offset_up``), or the position of ``X`` between
both anchors (``fraction``, in ``[0, 1]``). Sampling rebuilds the date from the synthetic
anchors, then clips it to every rule as a safety net, so each detected rule holds on 100% of the
synthetic rows (lower bounds win when a synthetic parent contradicts itself).

Dates are handled as int64 nanoseconds (float64 would lose precision), rounded to the column's
own resolution (a day, an hour, ... as in the real data).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import DataError

#: Resolutions tried from coarsest, in nanoseconds: day, hour, minute, second, ms, us, ns.
UNITS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
#: Least rows where both dates are present for a rule to count.
MIN_SUPPORT = 5
#: Least share of the column's present rows where an anchor is present.
MIN_COVERAGE = 0.99
_NAT = np.iinfo(np.int64).min

Bound = tuple[str, str]  # (source table, "" for the same row; column)


def to_ns(values: pd.Series, datetime_format: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(nanoseconds since 1970 as int64, present mask)`` of a date column (text or native).

    >>> ns, ok = to_ns(pd.Series(["1970-01-02", None]), "%Y-%m-%d")
    >>> int(ns[0]), ok.tolist()
    (86400000000000, [True, False])
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if datetime_format:
                parsed = pd.to_datetime(text, format=datetime_format, errors="coerce")
            else:
                parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    _refuse_far_dates(values, parsed, datetime_format)
    present = parsed.notna().to_numpy()
    ns = parsed.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    ns[~present] = 0
    return ns, present


def _refuse_far_dates(values: pd.Series, parsed: pd.Series, fmt: str | None) -> None:
    """Dates pandas cannot hold in nanoseconds (before 1677, after 2262) would silently become
    missing here: refuse them (single-table models handle them)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        lost = values.notna() & parsed.isna()
    else:
        from clinsynth.metadata._detect import _FAR_YEAR, _parses

        lost = values.notna() & parsed.isna()
        text = values[lost].astype(str)
        text = text[text.str.contains(_FAR_YEAR)]
        lost = pd.Series(False, index=values.index)
        lost[text.index[_parses(text, fmt)]] = True
    # pandas 3 parses such dates at a coarser resolution (microseconds): present, but beyond
    # what nanoseconds hold.
    lost = lost | (parsed.notna() & ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max)))
    if lost.any():
        first = values[lost].iloc[0]
        raise DataError(
            f"Column '{values.name}' holds {int(lost.sum())} dates outside 1677-2262 (first: "
            f"{str(first)[:40]!r}), which multi-table synthesis cannot keep in its date rules. "
            "Shift the dates into that range, or synthesize the table on its own."
        )


def _representable(values: pd.Series) -> pd.Series:
    """A model's dates clipped to what nanoseconds hold (1677-2262): a differentially private
    model's noisy range may reach far outside the real one (the real dates were checked)."""
    if not pd.api.types.is_datetime64_any_dtype(values) or getattr(values.dt, "tz", None):
        return values
    return values.clip(pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D"))


def date_format_of(values: pd.Series, spec: dict) -> dict[str, Any]:
    """How a real date column is written: text with a format, or native (with its time zone)."""
    text = not pd.api.types.is_datetime64_any_dtype(values)
    tz = None if text else getattr(values.dt, "tz", None)
    return {"text": text, "format": spec.get("datetime_format"), "tz": str(tz) if tz else None}


def from_ns(ns: np.ndarray, present: np.ndarray, fmt: dict[str, Any], unit: int) -> pd.Series:
    """Nanoseconds back to a column written like the real one."""
    values = pd.Series(np.where(present, ns, 0).view("datetime64[ns]")).where(present)
    if fmt.get("tz"):
        values = values.dt.tz_localize("UTC").dt.tz_convert(fmt["tz"])
    if fmt.get("text"):
        default = "%Y-%m-%d" if unit % UNITS_NS[0] == 0 else "%Y-%m-%d %H:%M:%S"
        return values.dt.strftime(fmt.get("format") or default).astype(object).where(present, None)
    return values


def resolution(ns: np.ndarray) -> int:
    """The coarsest unit (day, hour, ...) dividing every value.

    >>> resolution(np.array([0, 86_400 * 10**9 * 3]))
    86400000000000
    """
    for unit in UNITS_NS:
        if np.all(ns % unit == 0):
            return unit
    return 1


def floor_to(ns: np.ndarray, unit: int) -> np.ndarray:
    return (ns // unit) * unit


def ceil_to(ns: np.ndarray, unit: int) -> np.ndarray:
    return -((-ns) // unit) * unit


# --------------------------------------------------------------------------- detection
def plan_dates(
    own: dict[str, tuple[np.ndarray, np.ndarray]],
    formats: dict[str, dict[str, Any]],
    ancestors: dict[Bound, tuple[np.ndarray, np.ndarray]],
) -> list[dict[str, Any]]:
    """The date rules and anchors of one table, in decoding order.

    Parameters
    ----------
    own : dict
        ``{column: (ns, present)}`` of the table's date columns, in column order.
    formats : dict
        ``{column: date_format_of(...)}``.
    ancestors : dict
        ``{(table, column): (ns, present)}`` of ancestor date columns aligned with the rows.

    Returns
    -------
    list of dict
        One entry per own date column: ``column``, ``unit``, ``mode`` (``raw``, ``offset``,
        ``offset_up``, ``fraction``), anchors ``low``/``high`` and every rule in
        ``lower``/``upper`` (lists of ``[table, column]``, table ``""`` for the same row).
    """
    names = list(own)
    medians = {c: float(np.median(ns[ok])) if ok.any() else np.inf for c, (ns, ok) in own.items()}
    order = sorted(names, key=lambda c: (medians[c], names.index(c)))
    plan = []
    for i, column in enumerate(order):
        xs, xp = own[column]
        candidates: dict[Bound, tuple[np.ndarray, np.ndarray]] = {
            ("", c): own[c] for c in order[:i]
        }
        candidates.update(ancestors)
        unit = resolution(xs[xp]) if xp.any() else UNITS_NS[0]
        spread = float(np.std(xs[xp])) if xp.any() else 0.0
        lower, upper = [], []
        for bound, (bs, bp) in candidates.items():
            both = xp & bp
            support = int(both.sum())
            if support < MIN_SUPPORT:
                continue
            gap = xs[both] - bs[both]
            coverage = support / max(int(xp.sum()), 1)
            # An anchor must explain the date: a gap that varies less than the date itself
            # (a lab within its visit), not a loose bound (a visit after the birth date).
            tight = coverage >= MIN_COVERAGE and float(np.std(gap)) < spread
            if np.all(gap >= 0):
                lower.append((bound, tight, float(np.median(gap))))
            elif np.all(gap <= 0):
                upper.append((bound, tight, float(np.median(-gap))))
        plan.append(
            {
                "column": column,
                "unit": int(unit),
                "low": _anchor(lower),
                "high": _anchor(upper),
                "lower": [list(b) for b, _, _ in lower],
                "upper": [list(b) for b, _, _ in upper],
                "mode": "raw",
                "whole": False,
                **formats[column],
            }
        )
        entry = plan[-1]
        if entry["low"] and entry["high"]:
            entry["mode"] = "fraction"
        elif entry["low"]:
            entry["mode"] = "offset"
        elif entry["high"]:
            entry["mode"] = "offset_up"
    return plan


def _anchor(rules: list[tuple[Bound, bool, float]]) -> list[str] | None:
    covering = [r for r in rules if r[1]]
    if not covering:
        return None
    return list(min(covering, key=lambda r: r[2])[0])


# --------------------------------------------------------------------------- encode / decode
def encode_dates(
    plan: list[dict[str, Any]],
    own: dict[str, tuple[np.ndarray, np.ndarray]],
    ancestors: dict[Bound, tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The model's stand-in column (a gap or a position) of every anchored date column.

    Sets ``entry["whole"]`` when every gap is a whole number of units (an integer column).
    """
    out = {}
    for entry in plan:
        if entry["mode"] == "raw":
            continue
        xs, xp = own[entry["column"]]
        unit = entry["unit"]
        low = _lookup(entry["low"], own, ancestors) if entry["low"] else None
        high = _lookup(entry["high"], own, ancestors) if entry["high"] else None
        if entry["mode"] == "offset":
            ok = xp & low[1]
            gap = xs - low[0]
        elif entry["mode"] == "offset_up":
            ok = xp & high[1]
            gap = high[0] - xs
        else:
            ok = xp & low[1] & high[1]
            span = (high[0] - low[0]).astype(np.float64)
            pos = np.divide(
                (xs - low[0]).astype(np.float64), span, out=np.zeros(len(xs)), where=span > 0
            )
            # Where both anchors coincide any position gives the same date: a random one keeps
            # the learned distribution smooth instead of piling up at 0.
            pos = np.where(span > 0, pos, rng.random(len(xs)))
            out[entry["column"]] = np.where(ok, np.clip(pos, 0.0, 1.0), np.nan)
            continue
        entry["whole"] = bool(np.all(gap[ok] % unit == 0))
        out[entry["column"]] = np.where(ok, gap.astype(np.float64) / unit, np.nan)
    return out


def decode_dates(
    plan: list[dict[str, Any]],
    model_values: dict[str, pd.Series],
    ancestors: dict[Bound, tuple[np.ndarray, np.ndarray]],
) -> dict[str, pd.Series]:
    """Rebuild every date column from the model output and the synthetic anchors; clip to
    every rule."""
    own: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out = {}
    for entry in plan:
        column, unit, mode = entry["column"], entry["unit"], entry["mode"]
        values = model_values[column]
        if mode == "raw":
            xs, xp = to_ns(_representable(values), entry.get("format"))
        else:
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            present = ~np.isnan(v)
            v = np.nan_to_num(v)
            if mode == "offset":
                bs, bp = _lookup(entry["low"], own, ancestors)
                xs = ceil_to(bs + np.round(np.maximum(v, 0) * unit).astype(np.int64), unit)
                xp = present & bp
            elif mode == "offset_up":
                bs, bp = _lookup(entry["high"], own, ancestors)
                xs = floor_to(bs - np.round(np.maximum(v, 0) * unit).astype(np.int64), unit)
                xp = present & bp
            else:
                ls, lp = _lookup(entry["low"], own, ancestors)
                hs, hp = _lookup(entry["high"], own, ancestors)
                span = np.maximum(hs - ls, 0).astype(np.float64)
                xs = ls + np.round(np.clip(v, 0.0, 1.0) * span).astype(np.int64)
                xs = np.clip((xs + unit // 2) // unit * unit, ceil_to(ls, unit), None)
                xs = np.where(
                    floor_to(hs, unit) >= ceil_to(ls, unit), np.minimum(xs, floor_to(hs, unit)), xs
                )
                xp = present & lp & hp
        xs = _clip_to_rules(entry, xs, xp, own, ancestors)
        own[column] = (xs, xp)
        out[column] = from_ns(xs, xp, entry, unit)
    return out


def _clip_to_rules(entry, xs, xp, own, ancestors):  # noqa: ANN001, ANN202 - internal
    unit = entry["unit"]
    floor = np.full(len(xs), _NAT, dtype=np.int64)
    for bound in entry["lower"]:
        bs, bp = _lookup(bound, own, ancestors)
        floor = np.where(bp, np.maximum(floor, ceil_to(bs, unit)), floor)
    xs = np.maximum(xs, floor)
    for bound in entry["upper"]:
        bs, bp = _lookup(bound, own, ancestors)
        cap = floor_to(bs, unit)
        # A lower bound wins over an upper one that a synthetic parent made contradictory.
        xs = np.where(bp & (cap >= floor), np.minimum(xs, cap), xs)
    return np.where(xp, xs, 0)


def _lookup(bound, own, ancestors):  # noqa: ANN001, ANN202 - internal
    src, column = bound
    if src == "":
        return own[column]
    return ancestors[(src, column)]


def needed_ancestor_bounds(plan: list[dict[str, Any]]) -> set[Bound]:
    """The ancestor date columns the plan reads."""
    out: set[Bound] = set()
    for entry in plan:
        for bound in [entry["low"], entry["high"], *entry["lower"], *entry["upper"]]:
            if bound and bound[0] != "":
                out.add((bound[0], bound[1]))
    return out


def shift_dates(
    plan: list[dict[str, Any]],
    decoded: dict[str, pd.Series],
    columns: list[str],
    delta: np.ndarray,
    ancestors: dict[Bound, tuple[np.ndarray, np.ndarray]],
) -> dict[str, pd.Series]:
    """Move ``columns`` of each row by ``delta`` nanoseconds (rounded to each column's unit),
    then clip every date column to every rule again, in decoding order: the rules still hold
    on 100% of the rows."""
    out = dict(decoded)
    own: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    moved = delta != 0
    for entry in plan:
        column, unit = entry["column"], entry["unit"]
        if column not in decoded:
            continue
        xs, xp = to_ns(decoded[column], entry.get("format"))
        changed = column in columns and bool((moved & xp).any())
        if changed:
            shifted = xs + delta
            xs = np.where(moved & xp, (shifted + unit // 2) // unit * unit, xs)
        clipped = _clip_to_rules(entry, xs, xp, own, ancestors)
        own[column] = (clipped, xp)
        if changed or not np.array_equal(clipped[xp], xs[xp]):
            out[column] = from_ns(clipped, xp, entry, unit)
    return out
