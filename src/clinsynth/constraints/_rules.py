"""Clinical rules that every synthetic row must satisfy.

Each rule can check rows (``is_valid``). Most also *reparametrize* the table so the model learns a
quantity for which the rule holds by construction (the model learns ``systolic - diastolic`` >= 0
instead of systolic); the rest are enforced by rejection. A rule is reparametrized only when its
columns are not already reparametrized by an earlier rule and the real data's missing values allow
it; otherwise it falls back to rejection, so every output row satisfies every rule either way.

A rule reads its ``inputs`` and rewrites its ``outputs`` (``columns`` is both). Rules that only
mask, force or snap values of a column (``preserving``: the column keeps values of its own kind)
may share the column with one other rule that rewrites it; ``synthesizers._rules`` orders the
rules so that a rule's inputs are final before it is reversed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError

_PREFIX = "__rule"


def _numeric(series: pd.Series, spec: dict) -> tuple[np.ndarray, bool]:
    """Values as float64 (dates as seconds since 1970) and whether they are dates."""
    if spec.get("sdtype") == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmt = spec.get("datetime_format")
            parsed = (
                series
                if pd.api.types.is_datetime64_any_dtype(series)
                # In UTC: text with several UTC offsets (winter and summer time) parses too.
                else pd.to_datetime(series, format=fmt, errors="coerce", utc=True)
                if fmt
                else pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
            )
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = parsed.to_numpy(dtype="datetime64[ns]").astype("int64").astype(np.float64)
        ns[parsed.isna().to_numpy()] = np.nan
        return ns / 1e9, True
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan), False


def _from_seconds(seconds: np.ndarray, like: pd.Series, spec: dict) -> pd.Series:
    missing = np.isnan(seconds)
    ns = np.where(missing, 0, np.round(seconds * 1e9)).astype("int64")
    values = pd.Series(pd.to_datetime(ns, unit="ns"), index=like.index).mask(missing)
    if pd.api.types.is_datetime64_any_dtype(like):
        tz = getattr(like.dt, "tz", None)
        return values.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else values
    fmt = spec.get("datetime_format") or "%Y-%m-%d %H:%M:%S"
    return values.dt.strftime(fmt).astype(object).where(~missing, None)


class Constraint:
    """Base of the rules. Subclasses define ``_params``, ``is_valid`` and, if they can, the
    reparametrization hooks ``_fit``, ``_transform``, ``_reverse`` and ``_transform_metadata``;
    rules that read the real data for their checks (a mapping, allowed combinations) learn it in
    ``_learn``.

    Attributes
    ----------
    discovered : bool
        Found by :func:`~clinsynth.constraints.discover_rules` on the real table (not declared).
    support : dict or None
        ``{"rows": checked, "informative": rows where the rule could have failed}`` of a
        discovered rule.
    """

    type: ClassVar[str] = ""
    #: Whether the rule knows a reparametrization at all.
    can_reparametrize: ClassVar[bool] = False
    #: The reparametrization keeps its outputs holding values of their own kind (it masks,
    #: forces or snaps them), so one later rule may still rewrite the same column.
    preserving: ClassVar[bool] = False
    #: Patients a value must have to be stored in a rule's state (the synthesizer sets it from
    #: its ``rare_category_threshold``; None keeps every value).
    min_patients: int | None = 5

    def __init__(self) -> None:
        self.reparametrized = False
        self.state: dict[str, Any] = {}
        self.discovered = False
        self.support: dict[str, int] | None = None

    # -------------------------------------------------------------- description
    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    @property
    def outputs(self) -> list[str]:
        """The columns the reparametrization rewrites (and its reverse rebuilds)."""
        return self.columns

    @property
    def inputs(self) -> list[str]:
        """The columns the rule only reads."""
        return [c for c in self.columns if c not in self.outputs]

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as in metadata ``constraints``)."""
        out = {"type": self.type, **self._params()}
        if self.discovered:
            out["discovered"] = True
        if self.support is not None:
            out["support"] = dict(self.support)
        return out

    def describe(self) -> str:
        return f"{type(self).__name__}({', '.join(self.columns)})"

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.type, json.dumps(self._params(), sort_keys=True, default=str)))

    # -------------------------------------------------------------- checks
    def check_metadata(self, table: TableLike) -> list[str]:
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            return [f"rule {self.describe()} names columns {missing} that are not in the table."]
        return []

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------- reparametrization
    def learn(self, data: pd.DataFrame, table: TableLike) -> None:
        """Learn what the checks need from the real rows (before any reparametrization)."""
        self.reparametrized = False
        self.state = self._learn(data, table)

    def fit(self, data: pd.DataFrame, table: TableLike, touched: set[str]) -> None:
        """Learn the state and decide whether to reparametrize (columns untouched, data allow
        it); ``data`` is the real table as the rules before this one left it."""
        self.learn(data, table)
        self.decide(data, table, touched)

    def decide(self, data: pd.DataFrame, table: TableLike, touched: set[str]) -> None:
        """Reparametrize when no column was rewritten by an earlier rule and the data allow it."""
        self.reparametrized = False
        if self.can_reparametrize and not set(self.columns) & touched:
            self.reparametrized = self._fit(data, table)

    def transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return self._transform(data, table) if self.reparametrized else data

    def transform_metadata(self, table: TableLike) -> TableLike:
        return self._transform_metadata(table) if self.reparametrized else table

    def reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        """Undo the reparametrization on decoded rows (which it may change in place)."""
        return self._reverse(data, table) if self.reparametrized else data

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        return {}

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return False

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data

    def _transform_metadata(self, table: TableLike) -> TableLike:
        return table

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data


# --------------------------------------------------------------------------- order rules
class Inequality(Constraint):
    """``low <= high`` (``<`` when strict) on numbers or dates, e.g. diastolic < systolic.

    Reparametrized: the model learns ``high - low`` (never negative: the transformer keeps it in
    the observed range), and ``high`` is rebuilt as ``low + difference``.

    >>> Inequality(low="diastolic_bp", high="systolic_bp", strict=True).columns
    ['diastolic_bp', 'systolic_bp']
    """

    type = "inequality"
    can_reparametrize = True

    def __init__(self, low: str, high: str, strict: bool = False) -> None:
        super().__init__()
        self.low, self.high, self.strict = low, high, strict

    @property
    def columns(self) -> list[str]:
        return [self.low, self.high]

    @property
    def outputs(self) -> list[str]:
        return [self.high]

    def _params(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "strict": self.strict}

    def describe(self) -> str:
        return f"{self.low} {'<' if self.strict else '<='} {self.high}"

    def check_metadata(self, table: TableLike) -> list[str]:
        problems = super().check_metadata(table)
        for col in self.columns:
            if col in table.columns and table.columns[col]["sdtype"] not in (
                "numerical",
                "datetime",
            ):
                problems.append(
                    f"rule {self.describe()}: '{col}' is {table.columns[col]['sdtype']}; "
                    "an inequality needs numbers or dates."
                )
        return problems

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        both = ~np.isnan(low) & ~np.isnan(high)
        ok = high > low if self.strict else high >= low
        return ~both | ok

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        if np.any(~np.isnan(high) & np.isnan(low)):
            return False  # high known where low is missing: the difference cannot carry it
        diff = high - low
        positive = diff[diff > 0]
        self.state = {"min_positive": float(positive.min()) if len(positive) else 1.0}
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        out = data.copy()
        out[self.high] = high - low
        return out

    def _transform_metadata(self, table: TableLike) -> TableLike:
        out = table.copy()
        spec = table.columns[self.high]
        both_int = all(
            table.columns[c]["sdtype"] == "numerical"
            and table.columns[c].get("computer_representation", "Float") != "Float"
            for c in self.columns
        )
        out.columns[self.high] = {
            "sdtype": "numerical",
            "computer_representation": "Int64" if both_int else "Float",
        }
        if spec["sdtype"] == "datetime":
            out.columns[self.high]["computer_representation"] = "Float"
        return out

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        low, is_date = _numeric(data[self.low], table.columns[self.low])
        diff = pd.to_numeric(data[self.high], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        floor = self.state["min_positive"] if self.strict else 0.0
        high = low + np.maximum(diff, floor)
        out = data.copy()
        spec = table.columns[self.high]
        if spec["sdtype"] == "datetime":
            like = data[self.low] if is_date else data[self.high]
            out[self.high] = _from_seconds(high, like, spec)
        else:
            out[self.high] = high
        return out


class DateOrder(Constraint):
    """Dates in order, e.g. ``DateOrder(["admission_date", "discharge_date"])``.

    Reparametrized as a chain of gaps (each date minus the previous one) when missing dates only
    ever end the chain (a discharge date is never known without its admission date).
    """

    type = "date_order"
    can_reparametrize = True

    def __init__(self, columns: list[str], strict: bool = False) -> None:
        super().__init__()
        if len(columns) < 2:
            raise MetadataError("DateOrder needs at least two columns.")
        self._columns, self.strict = list(columns), strict

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def outputs(self) -> list[str]:
        return self._columns[1:]

    def _params(self) -> dict[str, Any]:
        return {"columns": self.columns, "strict": self.strict}

    def describe(self) -> str:
        return f" {'<' if self.strict else '<='} ".join(self._columns)

    def _pairs(self) -> list[Inequality]:
        return [
            Inequality(a, b, self.strict)
            for a, b in zip(self._columns, self._columns[1:], strict=False)
        ]

    def check_metadata(self, table: TableLike) -> list[str]:
        return [p for pair in self._pairs() for p in pair.check_metadata(table)]

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        ok = np.ones(len(data), dtype=bool)
        for pair in self._pairs():
            ok &= pair.is_valid(data, table)
        return ok

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        self.state = {"pairs": []}
        for pair in self._pairs():
            if not pair._fit(data, table):
                return False
            self.state["pairs"].append(pair.state)
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        values = [_numeric(data[c], table.columns[c])[0] for c in self._columns]
        out = data.copy()
        for i in range(1, len(values)):
            out[self._columns[i]] = values[i] - values[i - 1]
        return out

    def _transform_metadata(self, table: TableLike) -> TableLike:
        for pair in self._pairs():
            table = pair._transform_metadata(table)
        return table

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        out = data.copy()
        for pair, state in zip(self._pairs(), self.state["pairs"], strict=True):
            pair.state = state
            out = pair._reverse(out, table)
        return out


class Range(Constraint):
    """``low <= column <= high`` (either bound may be None), e.g. a physiological range.

    Reparametrized: log distance to a one-sided bound, logit position between two bounds.

    >>> Range("spo2", low=50, high=100).to_dict()
    {'type': 'range', 'column': 'spo2', 'low': 50, 'high': 100, 'strict': False}
    """

    type = "range"
    can_reparametrize = True

    def __init__(
        self,
        column: str,
        low: float | None = None,
        high: float | None = None,
        strict: bool = False,
        when_column: str | None = None,
        when_values: list | None = None,
    ) -> None:
        super().__init__()
        if low is None and high is None:
            raise MetadataError(f"Range on '{column}' needs a low or a high bound.")
        if low is not None and high is not None and low >= high:
            raise MetadataError(f"Range on '{column}': low ({low}) must be below high ({high}).")
        if (when_column is None) != (when_values is None) or when_values == []:
            raise MetadataError(
                f"The range on '{column}' needs both 'when_column' and a non-empty "
                "'when_values' list, or neither."
            )
        self.column, self.low, self.high, self.strict = column, low, high, strict
        from clinsynth.constraints._logic import _Condition

        self.when = None if when_column is None else _Condition(when_column, list(when_values))
        if self.when is not None:
            # A range on some rows only: kept by drawing again the rows that break it (a
            # reparametrization would change the column for every row).
            self.can_reparametrize = False  # type: ignore[misc]

    @property
    def columns(self) -> list[str]:
        return [self.column] if self.when is None else [self.column, self.when.column]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def _params(self) -> dict[str, Any]:
        out = {"column": self.column, "low": self.low, "high": self.high, "strict": self.strict}
        if self.when is not None:
            out |= {"when_column": self.when.column, "when_values": self.when.values}
        return out

    def describe(self) -> str:
        if self.when is None:
            return super().describe()
        bounds = []
        if self.low is not None:
            bounds.append(f"{self.column} {'>' if self.strict else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"{self.column} {'<' if self.strict else '<='} {self.high:g}")
        return f"{' and '.join(bounds)} when {self.when.describe()}"

    def check_metadata(self, table: TableLike) -> list[str]:
        problems = super().check_metadata(table)
        if not problems and table.columns[self.column]["sdtype"] != "numerical":
            problems.append(f"rule {self.describe()}: '{self.column}' is not numerical.")
        return problems

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        ok = np.ones(len(x), dtype=bool)
        if self.low is not None:
            ok &= (x > self.low) if self.strict else (x >= self.low)
        if self.high is not None:
            ok &= (x < self.high) if self.strict else (x <= self.high)
        if self.when is not None:
            ok |= ~self.when.holds(data)
        return ok | np.isnan(x)

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        x = x[~np.isnan(x)]
        span = (
            (self.high - self.low)
            if self.low is not None and self.high is not None
            else (max(float(np.ptp(x)) if len(x) else 1.0, 1e-9))
        )
        # The margin keeps values exactly on a bound representable (log(0) is -inf).
        self.state = {"eps": span * 1e-6}
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        eps = self.state["eps"]
        out = data.copy()
        if self.low is not None and self.high is not None:
            p = np.clip((x - self.low + eps) / (self.high - self.low + 2 * eps), 1e-12, 1 - 1e-12)
            out[self.column] = np.log(p) - np.log1p(-p)
        elif self.low is not None:
            out[self.column] = np.log(np.maximum(x - self.low, 0) + eps)
        else:
            out[self.column] = np.log(np.maximum(self.high - x, 0) + eps)
        return out

    def _transform_metadata(self, table: TableLike) -> TableLike:
        out = table.copy()
        out.columns[self.column] = {"sdtype": "numerical", "computer_representation": "Float"}
        return out

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        y = pd.to_numeric(data[self.column], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        eps = self.state["eps"]
        if self.low is not None and self.high is not None:
            x = self.low - eps + (self.high - self.low + 2 * eps) / (1 + np.exp(-y))
            x = np.clip(x, self.low, self.high)
        elif self.low is not None:
            x = np.maximum(self.low + np.exp(y) - eps, self.low)
        else:
            x = np.minimum(self.high - np.exp(y) + eps, self.high)
        out = data.copy()
        spec = table.columns[self.column]
        if spec.get("computer_representation", "Float") != "Float":
            lo = np.ceil(self.low) if self.low is not None else -np.inf
            hi = np.floor(self.high) if self.high is not None else np.inf
            x = np.clip(np.round(x), lo, hi)
        if self.strict:  # nudge values sitting on a bound just inside it
            if self.low is not None:
                x = np.where(x <= self.low, np.nextafter(self.low, np.inf), x)
            if self.high is not None:
                x = np.where(x >= self.high, np.nextafter(self.high, -np.inf), x)
        out[self.column] = x
        return out


class Positive(Range):
    """``column > 0`` (``>= 0`` with ``strict=False``)."""

    type = "positive"

    def __init__(self, column: str, strict: bool = True) -> None:
        super().__init__(column, low=0.0, strict=strict)

    def _params(self) -> dict[str, Any]:
        return {"column": self.column, "strict": self.strict}


class NonNegative(Positive):
    """``column >= 0``."""

    type = "non_negative"

    def __init__(self, column: str) -> None:
        super().__init__(column, strict=False)

    def _params(self) -> dict[str, Any]:
        return {"column": self.column}


# --------------------------------------------------------------------------- custom
class Custom(Constraint):
    """Any rule as a Python predicate ``fn(DataFrame) -> boolean array``; enforced by rejection.

    A predicate is code, so a saved model stores only its ``name``; pass the function again when
    loading: ``clinsynth.load(path, custom_constraints={"name": fn})``.
    """

    type = "custom"

    def __init__(
        self,
        predicate: Callable[[pd.DataFrame], Any] | None,
        columns: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.predicate = predicate
        self._columns = list(columns or [])
        self.name = name or getattr(predicate, "__name__", "custom")

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def _params(self) -> dict[str, Any]:
        return {"name": self.name, "columns": self.columns}

    def describe(self) -> str:
        on = f" on {', '.join(self._columns)}" if self._columns else ""
        return f"custom rule '{self.name}'{on}"

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        if self.predicate is None:
            raise MetadataError(
                f"Custom rule '{self.name}' has no function. Pass it again: "
                f"load(path, custom_constraints={{'{self.name}': function}})."
            )
        return np.asarray(self.predicate(data), dtype=bool).reshape(len(data))
