"""Sequences of events per patient: checks, context detection, the time axis as integer ticks,
and the bounds that no event may cross (death, end of follow-up, birth, enrolment).

Pure functions over DataFrames and arrays, used by :mod:`clinsynth.synthesizers._sequential`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from clinsynth.errors import DataError, MetadataError
from clinsynth.metadata import TableMetadata

#: Names of the columns the synthesizer adds to its context and event tables.
N_EVENTS = "__n_events"
START = "__start"
RATE = "__event_rate"
GAP = "__log_gap"
_SECONDS_PER = (86_400, 3_600, 60, 1)


@dataclass
class TimeAxis:
    """How the sequence index maps to integer ticks: ``value = origin + ticks * unit``.

    ``kind`` is ``"number"`` or ``"datetime"``; ``unit`` is a number (``10**-decimals``) or a
    number of seconds; ``fmt`` the strftime format of text dates (None for native dates);
    ``integer`` whether numbers come back as integers.
    """

    kind: str
    unit: float
    fmt: str | None = None
    integer: bool = True
    text: bool = False

    def to_ticks(self, values: pd.Series) -> np.ndarray:
        """Index values -> int64 ticks (numbers divided by the unit; dates in units since 1970)."""
        if self.kind == "datetime":
            return _seconds(values, self.fmt) // int(self.unit)
        return np.rint(values.to_numpy(dtype=np.float64) / self.unit).astype(np.int64)

    def from_ticks(self, ticks: np.ndarray) -> pd.Series:
        """Ticks -> index values in the real column's type (text dates in their format)."""
        if self.kind == "datetime":
            stamps = pd.to_datetime(ticks.astype(np.int64) * int(self.unit), unit="s")
            series = pd.Series(stamps)
            return series.dt.strftime(self.fmt or "%Y-%m-%d %H:%M:%S") if self.text else series
        values = ticks.astype(np.float64) * self.unit
        if self.integer:
            return pd.Series(np.rint(values).astype(np.int64))
        return pd.Series(np.round(values, _decimals(self.unit)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "unit": self.unit,
            "fmt": self.fmt,
            "integer": self.integer,
            "text": self.text,
        }


def _decimals(unit: float) -> int:
    return max(0, round(-np.log10(unit))) if unit < 1 else 0


def _seconds(values: pd.Series, fmt: str | None) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        stamps = pd.to_datetime(values, format=fmt or "mixed", errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[s]").astype(np.int64)


def time_axis(series: pd.Series, spec: dict[str, Any]) -> TimeAxis:
    """The coarsest unit that holds every value of the index exactly."""
    if spec["sdtype"] == "datetime":
        fmt = spec.get("datetime_format")
        seconds = _seconds(series, fmt)
        unit = next(u for u in _SECONDS_PER if (seconds % u == 0).all())
        text = not pd.api.types.is_datetime64_any_dtype(series)
        return TimeAxis("datetime", float(unit), fmt, True, text)
    values = series.to_numpy(dtype=np.float64)
    for decimals in range(7):
        scaled = values * 10**decimals
        if np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-6):
            return TimeAxis("number", 10.0**-decimals, None, decimals == 0 and _is_int(spec))
    return TimeAxis("number", 1e-6, None, False)


#: strftime directives of a time of day: a date format without them is a day resolution.
_TIME_OF_DAY = ("%H", "%I", "%M", "%S", "%f", "%X", "%T", "%R", "%c", "%p")


def declared_axis(series: pd.Series, spec: dict[str, Any]) -> TimeAxis:
    """The time axis from the metadata alone (differential privacy: no value is read):
    dates in days when their ``datetime_format`` has no time of day, else in seconds;
    integer numbers in units, other numbers in thousandths.

    >>> declared_axis(pd.Series(["2020-01-02"]), {"sdtype": "datetime",
    ...                                            "datetime_format": "%Y-%m-%d"}).unit
    86400.0
    """
    if spec["sdtype"] == "datetime":
        fmt = spec.get("datetime_format")
        daily = fmt is not None and not any(d in fmt for d in _TIME_OF_DAY)
        text = not pd.api.types.is_datetime64_any_dtype(series)
        return TimeAxis("datetime", 86_400.0 if daily else 1.0, fmt, True, text)
    if _is_int(spec):
        return TimeAxis("number", 1.0, None, True)
    return TimeAxis("number", 1e-3, None, False)


def _is_int(spec: dict[str, Any]) -> bool:
    return str(spec.get("computer_representation", "Float")).lower().startswith(("int", "uint"))


# --------------------------------------------------------------------------- checks
def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def check_sequences(data: pd.DataFrame, key: str, index: str, table: TableMetadata) -> None:
    """Every problem of the sequence key and index at once: nulls, ties, one event each.

    What :meth:`SequentialSynthesizer.fit` checks before training, for a caller (the dashboard)
    that wants to say it before the click.

    Parameters
    ----------
    data : DataFrame
        The events, in any order.
    key, index : str
        The ``sequence_key`` (the patient) and ``sequence_index`` (the time) columns.
    table : TableMetadata
        The table's metadata (for the index's sdtype and date format).

    Raises
    ------
    DataError
        With one problem per failed check (``exc.problems``).
    """
    problems = []
    null_key = data[key].isna().to_numpy()
    if null_key.any():
        rows = np.flatnonzero(null_key)[:3] + 1
        problems.append(
            f"the sequence key '{key}' is empty in {int(null_key.sum())} rows (first rows: "
            f"{', '.join(map(str, rows))}). Every event needs its patient: fill or drop them."
        )
    parsed = data[index]
    if table.columns[index]["sdtype"] == "datetime" and not pd.api.types.is_datetime64_any_dtype(
        parsed
    ):
        parsed = pd.to_datetime(
            parsed, format=table.columns[index].get("datetime_format") or "mixed", errors="coerce"
        )
    null_index = parsed.isna().to_numpy()
    if null_index.any():
        rows = np.flatnonzero(null_index)[:3] + 1
        problems.append(
            f"the sequence index '{index}' is empty or not a valid {table.sdtype(index)} in "
            f"{int(null_index.sum())} rows (first rows: {', '.join(map(str, rows))}). Each event "
            "needs its time: fill them, or drop those rows."
        )
    if not problems:
        tied = data.duplicated([key, index], keep=False).to_numpy()
        if tied.any():
            first = int(np.flatnonzero(tied)[0])
            patients = data.loc[tied, key].nunique()
            problems.append(
                f"the sequence index '{index}' has ties: {int(tied.sum())} rows of {patients} "
                f"patients share a time with another event of the same patient (first: "
                f"{key}={_plain(data[key].iloc[first])!r}, "
                f"{index}={_plain(data[index].iloc[first])!r}, row "
                f"{first + 1}). Events must be strictly ordered: merge or drop the duplicates, "
                "or use a finer time."
            )
        elif not data[key].duplicated().any():
            problems.append(
                f"every patient ('{key}') has exactly one event: there is no sequence to learn. "
                "Use a single-table model (e.g. gaussian_copula), or check the sequence key."
            )
    if problems:
        raise DataError.from_problems("The data cannot be learned as sequences", problems)


def sort_events(data: pd.DataFrame, key: str, index: str, axis: TimeAxis) -> pd.DataFrame:
    """A copy sorted by patient, then time (unsorted input is accepted), with ``ticks``."""
    out = data.copy()
    out["__ticks"] = axis.to_ticks(data[index])
    order = np.lexsort((out["__ticks"].to_numpy(), pd.factorize(out[key], sort=True)[0]))
    return out.iloc[order].reset_index(drop=True)


def detect_context(
    data: pd.DataFrame, key: str, candidates: list[str], declared: list[str] | None
) -> list[str]:
    """Columns constant within every patient (missing counts as a value).

    Declared context columns that change within a patient are an error naming them.
    """
    if not candidates:
        return []
    varying = data.groupby(key, sort=False)[candidates].nunique(dropna=False).max() > 1
    if declared is None:
        return [c for c in candidates if not varying[c]]
    unknown = [c for c in declared if c not in candidates]
    if unknown:
        raise MetadataError(
            f"context_columns {unknown} are not columns of the table other than the sequence "
            f"key and index. Columns: {', '.join(candidates[:20])}."
        )
    changing = [c for c in declared if varying[c]]
    if changing:
        counts = data.groupby(key, sort=False)[changing].nunique(dropna=False)
        detail = "; ".join(
            f"'{c}' in {int((counts[c] > 1).sum())} patients (first: "
            f"{key}={_plain(counts.index[np.argmax(counts[c].to_numpy() > 1)])!r})"
            for c in changing
        )
        raise DataError(
            f"Context columns must be constant within each patient, but these change: {detail}. "
            "Leave them out of context_columns (they are then learned per event), or fix them."
        )
    return list(declared)


# --------------------------------------------------------------------------- bounds
@dataclass
class Bounds:
    """Context columns that bound every event of a patient: ``upper`` (end of follow-up,
    death: no event after) and ``lower`` (birth, enrolment: no event before), each
    ``(column, strict)``."""

    upper: list[tuple[str, bool]] = field(default_factory=list)
    lower: list[tuple[str, bool]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"upper": [list(b) for b in self.upper], "lower": [list(b) for b in self.lower]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bounds:
        return cls(
            [(str(c), bool(s)) for c, s in data.get("upper", [])],
            [(str(c), bool(s)) for c, s in data.get("lower", [])],
        )


def discover_bounds(
    events: pd.DataFrame, context: list[str], table: TableMetadata, axis: TimeAxis
) -> Bounds:
    """Context columns of the index's kind that every real event respects (present on at least
    half the patients): the generated events then respect them by construction."""
    kind = "datetime" if axis.kind == "datetime" else "numerical"
    ticks = events["__ticks"].to_numpy()
    bounds = Bounds()
    for column in context:
        if table.columns[column]["sdtype"] != kind:
            continue
        limit = bound_ticks(events[column], axis)
        present = ~np.isnan(limit)
        if present.mean() < 0.5:
            continue
        t, b = ticks[present], limit[present]
        if (t < b).all():
            bounds.upper.append((column, True))
        elif (t <= b).all():
            bounds.upper.append((column, False))
        elif (t > b).all():
            bounds.lower.append((column, True))
        elif (t >= b).all():
            bounds.lower.append((column, False))
    return bounds


def bound_ticks(values: pd.Series, axis: TimeAxis) -> np.ndarray:
    """A bound column in ticks (float, NaN where missing); a fraction of a tick rounds inward
    later (floor for upper bounds, ceil for lower ones)."""
    if axis.kind == "datetime":
        seconds = _seconds(values, axis.fmt).astype(np.float64)
        seconds[values.isna().to_numpy()] = np.nan
        if not pd.api.types.is_datetime64_any_dtype(values):
            parsed = pd.to_datetime(values, format=axis.fmt or "mixed", errors="coerce")
            seconds[parsed.isna().to_numpy()] = np.nan
        return seconds / axis.unit
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64) / axis.unit


def limits(context: pd.DataFrame, bounds: Bounds, axis: TimeAxis) -> tuple[np.ndarray, np.ndarray]:
    """Per patient, the lowest and highest tick an event may take (+-inf without a bound)."""
    n = len(context)
    low = np.full(n, -np.inf)
    high = np.full(n, np.inf)
    for column, strict in bounds.upper:
        b = bound_ticks(context[column], axis)
        b = np.where(np.isnan(b), np.inf, np.ceil(b) - 1 if strict else np.floor(b))
        high = np.minimum(high, b)
    for column, strict in bounds.lower:
        b = bound_ticks(context[column], axis)
        b = np.where(np.isnan(b), -np.inf, np.floor(b) + 1 if strict else np.ceil(b))
        low = np.maximum(low, b)
    return low, high


#: Training steps (batches) the default number of epochs aims for, and its most epochs.
AUTO_STEPS, AUTO_MAX_EPOCHS = 2000, 300


def auto_epochs(patients: int, batch_size: int) -> int:
    """Epochs for about :data:`AUTO_STEPS` batches of ``batch_size`` patients.

    >>> auto_epochs(312, 128), auto_epochs(50_000, 128)
    (300, 6)
    """
    batches = -(-patients // batch_size)
    return int(np.clip(-(-AUTO_STEPS // batches), 1, AUTO_MAX_EPOCHS))


def unique_keys(keys: pd.Series) -> pd.Series:
    """Patient keys made distinct (a key shape with few possible values, such as two
    characters, can repeat): a repeated key gets ``_<position>`` appended; others are kept."""
    repeated = keys.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return keys
    out = keys.astype(object).copy()
    positions = np.flatnonzero(repeated)
    out.iloc[positions] = [f"{keys.iloc[i]}_{i}" for i in positions]
    return out


def event_rate(lengths: np.ndarray, start: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Events after the first per tick of the patient's window (NaN without an upper bound):
    the copula learns this rate, not the count, for patients whose follow-up ends."""
    room = high - start
    return np.where(np.isfinite(room), (lengths - 1) / np.maximum(room, 1.0), np.nan)


def event_counts(
    patients: pd.DataFrame, start: np.ndarray, high: np.ndarray, by_rate: bool
) -> np.ndarray:
    """Events per sampled patient: from the rate where the patient has a window (never more
    than the window holds), else the count."""
    counts = np.maximum(patients[N_EVENTS].to_numpy(dtype=np.float64), 1.0)
    room = high - start
    if by_rate:
        rate = patients[RATE].to_numpy(dtype=np.float64)
        usable = np.isfinite(room) & ~np.isnan(rate)
        counts = np.where(usable, 1.0 + np.rint(np.maximum(rate, 0.0) * room), counts)
    counts = np.where(np.isfinite(room), np.minimum(counts, 1.0 + np.maximum(room, 0.0)), counts)
    return counts.astype(np.int64)


def fit_window(
    start: np.ndarray, offsets: np.ndarray, high: np.ndarray, who: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Event ticks ``start + offsets``, a sequence that would run past its upper bound squeezed
    into ``[start, high]`` (offsets scaled, then at least one tick apart). Only a sequence with
    more events than ticks left keeps events past the bound (the caller drops them).

    ``offsets`` are >= 1 apart within a patient (0 at each first event), ``who`` the patient
    of each event, ``lengths`` the events per patient.
    """
    last = np.cumsum(lengths) - 1
    span = offsets[last]
    room = high - start
    over = np.isfinite(room) & (span > room) & (span > 0)
    if not over.any():
        return start[who] + offsets
    factor = np.where(over, room / np.where(span > 0, span, 1), 1.0)
    scaled = np.floor(offsets * factor[who])
    position = np.arange(len(offsets)) - (last - lengths + 1)[who]
    # Strictly increasing again: running maximum of (tick - position) within each patient.
    lifted = pd.Series(scaled - position).groupby(who).cummax().to_numpy()
    return start[who] + np.where(over[who], lifted + position, offsets)


def gap_scores(
    log_gaps: np.ndarray, first: np.ndarray, seed: int, knots: list[float] | None = None
) -> tuple[np.ndarray, list[float]]:
    """Normal scores of the log gaps through their empirical distribution, and its quantile
    knots: the means of runs of at least 5 consecutive sorted gaps (no gap of its own), or
    the ``knots`` given (differential privacy: from a noisy histogram). A gap equal to
    several knots (many equal gaps) is spread at random over their probabilities. First
    events (no gap) score 0."""
    if knots is None:
        later = np.ones(len(log_gaps), dtype=bool)
        later[first] = False
        values = log_gaps[later]
        k = int(np.clip(len(values) // 5, 2, 200))
        # Microaggregated: each knot is the mean of one of k runs of >= 5 sorted gaps.
        knots = [float(g.mean()) for g in np.array_split(np.sort(values), k)]
    k = len(knots)
    probs = (np.arange(k) + 0.5) / k
    knots = np.maximum.accumulate(np.asarray(knots, dtype=np.float64))
    cdf = np.interp(log_gaps, knots, probs, left=probs[0], right=probs[-1])
    left = np.searchsorted(knots, log_gaps, "left")
    right = np.searchsorted(knots, log_gaps, "right") - 1
    tied = left < right
    lo = np.where(tied, probs[np.minimum(left, k - 1)], cdf)
    hi = np.where(tied, probs[np.clip(right, 0, k - 1)], cdf)
    u = np.random.default_rng(seed).random(len(log_gaps))
    scores = special.ndtri(lo + u * (hi - lo))
    scores[first] = 0.0
    return scores, [float(v) for v in knots]


def room(
    ticks: np.ndarray, high: np.ndarray, first: np.ndarray, lengths: np.ndarray, typical: float
) -> np.ndarray:
    """Per event, the ticks left before its patient's upper bound ``high`` after the previous
    event (after its own time for a first event), in units of ``typical`` gaps (inf: none)."""
    who = np.repeat(np.arange(len(lengths)), lengths)
    previous = np.r_[ticks[:1], ticks[:-1]]
    previous[first] = ticks[first]
    return ((high[who] - previous) / typical).astype(np.float32)
