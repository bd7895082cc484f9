"""Clinical rules that every synthetic row must satisfy.

Each rule can check rows (``is_valid``). Most also *reparametrize* the table so the model learns a
quantity for which the rule holds by construction (the model learns ``systolic - diastolic`` >= 0
instead of systolic); the rest are enforced by rejection. A rule is reparametrized only when its
columns are not already reparametrized by an earlier rule and the real data's missing values allow
it; otherwise it falls back to rejection, so every output row satisfies every rule either way.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth.errors import MetadataError
from clinsynth.metadata import TableMetadata

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
                else pd.to_datetime(series, format=fmt, errors="coerce")
                if fmt
                else pd.to_datetime(series, errors="coerce", format="mixed")
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
    """Base of the rules. Subclasses define ``is_valid`` and, if they can, the reparametrization
    hooks ``_fit``, ``_transform``, ``_reverse`` and ``_transform_metadata``."""

    type: ClassVar[str] = ""
    #: Whether the rule knows a reparametrization at all.
    can_reparametrize: ClassVar[bool] = False

    def __init__(self) -> None:
        self.reparametrized = False
        self.state: dict[str, Any] = {}

    # -------------------------------------------------------------- description
    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{type(self).__name__}({', '.join(self.columns)})"

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    # -------------------------------------------------------------- checks
    def check_metadata(self, table: TableMetadata) -> list[str]:
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            return [f"rule {self.describe()} names columns {missing} that are not in the table."]
        return []

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------- reparametrization
    def fit(self, data: pd.DataFrame, table: TableMetadata, touched: set[str]) -> None:
        """Decide whether to reparametrize (columns untouched, data allow it) and learn state."""
        self.reparametrized = False
        if self.can_reparametrize and not set(self.columns) & touched:
            self.reparametrized = self._fit(data, table)

    def transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        return self._transform(data, table) if self.reparametrized else data

    def transform_metadata(self, table: TableMetadata) -> TableMetadata:
        return self._transform_metadata(table) if self.reparametrized else table

    def reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        return self._reverse(data, table) if self.reparametrized else data

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        return False

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        return data

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
        return table

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "low": self.low, "high": self.high, "strict": self.strict}

    def check_metadata(self, table: TableMetadata) -> list[str]:
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

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        both = ~np.isnan(low) & ~np.isnan(high)
        ok = high > low if self.strict else high >= low
        return ~both | ok

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        if np.any(~np.isnan(high) & np.isnan(low)):
            return False  # high known where low is missing: the difference cannot carry it
        diff = high - low
        positive = diff[diff > 0]
        self.state = {"min_positive": float(positive.min()) if len(positive) else 1.0}
        return True

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        low, _ = _numeric(data[self.low], table.columns[self.low])
        high, _ = _numeric(data[self.high], table.columns[self.high])
        out = data.copy()
        out[self.high] = high - low
        return out

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
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

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "columns": self.columns, "strict": self.strict}

    def _pairs(self) -> list[Inequality]:
        return [
            Inequality(a, b, self.strict)
            for a, b in zip(self._columns, self._columns[1:], strict=False)
        ]

    def check_metadata(self, table: TableMetadata) -> list[str]:
        return [p for pair in self._pairs() for p in pair.check_metadata(table)]

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        ok = np.ones(len(data), dtype=bool)
        for pair in self._pairs():
            ok &= pair.is_valid(data, table)
        return ok

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        self.state = {"pairs": []}
        for pair in self._pairs():
            if not pair._fit(data, table):
                return False
            self.state["pairs"].append(pair.state)
        return True

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        values = [_numeric(data[c], table.columns[c])[0] for c in self._columns]
        out = data.copy()
        for i in range(1, len(values)):
            out[self._columns[i]] = values[i] - values[i - 1]
        return out

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
        for pair in self._pairs():
            table = pair._transform_metadata(table)
        return table

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
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
        self, column: str, low: float | None = None, high: float | None = None, strict: bool = False
    ) -> None:
        super().__init__()
        if low is None and high is None:
            raise MetadataError(f"Range on '{column}' needs a low or a high bound.")
        if low is not None and high is not None and low >= high:
            raise MetadataError(f"Range on '{column}': low ({low}) must be below high ({high}).")
        self.column, self.low, self.high, self.strict = column, low, high, strict

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "column": self.column,
            "low": self.low,
            "high": self.high,
            "strict": self.strict,
        }

    def check_metadata(self, table: TableMetadata) -> list[str]:
        problems = super().check_metadata(table)
        if not problems and table.columns[self.column]["sdtype"] != "numerical":
            problems.append(f"rule {self.describe()}: '{self.column}' is not numerical.")
        return problems

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        ok = np.ones(len(x), dtype=bool)
        if self.low is not None:
            ok &= (x > self.low) if self.strict else (x >= self.low)
        if self.high is not None:
            ok &= (x < self.high) if self.strict else (x <= self.high)
        return ok | np.isnan(x)

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
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

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
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

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
        out = table.copy()
        out.columns[self.column] = {"sdtype": "numerical", "computer_representation": "Float"}
        return out

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "column": self.column, "strict": self.strict}


class NonNegative(Positive):
    """``column >= 0``."""

    type = "non_negative"

    def __init__(self, column: str) -> None:
        super().__init__(column, strict=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "column": self.column}


# --------------------------------------------------------------------------- combinations
class _JointCategorical(Constraint):
    """A rule over several columns reparametrized as one categorical column of their joint
    value: the columns leave the table and ``joint_column`` takes their place."""

    can_reparametrize = True
    #: Marks the joint column's name (after the common prefix).
    _tag: ClassVar[str] = ""

    def __init__(self, columns: list[str]) -> None:
        super().__init__()
        if len(columns) < 2:
            raise MetadataError(f"{type(self).__name__} needs at least two columns.")
        self._columns = list(columns)

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def joint_column(self) -> str:
        return f"{_PREFIX}:{self._tag}{'+'.join(self._columns)}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "columns": self.columns}

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        """The joint column's value on every row."""
        raise NotImplementedError

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        out = data.drop(columns=self._columns)
        out[self.joint_column] = self._joint_values(data)
        return out

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
        out = table.copy()
        for col in self._columns:
            del out.columns[col]
        out.columns[self.joint_column] = {"sdtype": "categorical"}
        return out


class FixedCombinations(_JointCategorical):
    """Only combinations of these columns' values seen in the real data, e.g.
    ``FixedCombinations(["sex", "pregnant"])`` (no pregnant male) or ICD chapter and code.

    Reparametrized: the columns become one categorical column of their joint levels.
    """

    type = "fixed_combinations"

    @staticmethod
    def _keys(data: pd.DataFrame, columns: list[str]) -> pd.Series:
        return _fast_keys(data[columns])

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        keys = self._keys(data, self._columns)
        self.state = {
            "allowed": sorted(set(keys)),
            "dtypes": [str(data[c].dtype) for c in self._columns],
        }
        return True

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        if "allowed" not in self.state:  # not fitted: nothing to compare with yet
            return np.ones(len(data), dtype=bool)
        return self._keys(data, self._columns).isin(set(self.state["allowed"])).to_numpy()

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        return self._keys(data, self._columns).to_numpy()

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        keys = data[self.joint_column]
        uniques, inverse = np.unique(keys.astype(str).to_numpy(), return_inverse=True)
        decoded = [json.loads(u) for u in uniques]
        out = data.drop(columns=[self.joint_column])
        for i, col in enumerate(self._columns):
            values = np.empty(len(uniques), dtype=object)
            values[:] = [d[i] for d in decoded]
            column = pd.Series(values[inverse], index=data.index)
            dtype = self.state["dtypes"][i]
            try:
                if dtype.startswith(("int", "uint")) and column.isna().any():
                    dtype = "Int64"
                out[col] = column.astype(dtype) if dtype != "object" else column
            except (TypeError, ValueError):
                out[col] = column
        return out


def _fast_keys(frame: pd.DataFrame) -> pd.Series:
    """JSON keys of many rows: encode each distinct combination once."""
    codes, uniques = pd.MultiIndex.from_frame(frame.astype(object)).factorize()
    encoded = np.array(
        [json.dumps([None if pd.isna(v) else _plain(v) for v in u]) for u in uniques],
        dtype=object,
    )
    return pd.Series(encoded[codes], index=frame.index)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)


class OneHot(_JointCategorical):
    """Exactly one of these 0/1 columns is 1 on every row (e.g. mutually exclusive groups).

    Reparametrized: the columns become one categorical column naming the hot one.
    """

    type = "one_hot"
    _tag = "onehot:"

    def _matrix(self, data: pd.DataFrame) -> np.ndarray:
        columns = []
        for c in self._columns:
            series = data[c]
            if pd.api.types.is_bool_dtype(series):
                series = series.astype("float64")
            columns.append(
                pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            )
        return np.column_stack(columns)

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        m = self._matrix(data)
        return np.isin(m, (0.0, 1.0)).all(axis=1) & (np.nansum(m, axis=1) == 1)

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        self.state = {"dtypes": [str(data[c].dtype) for c in self._columns]}
        return True

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        hot = np.argmax(self._matrix(data), axis=1)
        return np.asarray(self._columns, dtype=object)[hot]

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        hot = data[self.joint_column].to_numpy()
        out = data.drop(columns=[self.joint_column])
        for col, dtype in zip(self._columns, self.state["dtypes"], strict=True):
            flag = hot == col
            out[col] = flag if dtype == "bool" else flag.astype(np.int64)
        return out


# --------------------------------------------------------------------------- formulas
class Formula(Constraint):
    """``column == expression`` of other columns within ``tolerance``, e.g. BMI from height and
    weight: ``Formula("bmi", "weight / (height / 100) ** 2", tolerance=0.1)``.

    Reparametrized: the column is not learned; it is computed from the expression after sampling
    (rounded like the real column), so it matches by construction. Expressions use column names,
    numbers and + - * / ** ( ); names with spaces go in backticks.
    """

    type = "formula"
    can_reparametrize = True

    def __init__(self, column: str, expression: str, tolerance: float | None = None) -> None:
        super().__init__()
        self.column, self.expression, self.tolerance = column, expression, tolerance

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "column": self.column,
            "expression": self.expression,
            "tolerance": self.tolerance,
        }

    def evaluate(self, data: pd.DataFrame) -> np.ndarray:
        numeric = data.apply(
            lambda s: pd.to_numeric(s, errors="coerce") if s.dtype == object else s
        )
        try:
            result = numeric.eval(self.expression, engine="python", local_dict={}, global_dict={})
        except Exception as exc:  # pandas raises many types for a bad expression
            raise MetadataError(
                f"rule {self.describe()}: cannot evaluate {self.expression!r} "
                f"({type(exc).__name__}: {exc}). Use column names, numbers and + - * / ** ( )."
            ) from None
        return np.asarray(result, dtype=np.float64)

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        with np.errstate(invalid="ignore"):
            expected = self.evaluate(data)
        tol = self.tolerance if self.tolerance is not None else self.state.get("tolerance", 1e-6)
        close = np.abs(x - expected) <= tol + 1e-9 * np.abs(expected)
        return close | np.isnan(x) | np.isnan(expected)

    def _fit(self, data: pd.DataFrame, table: TableMetadata) -> bool:
        self.evaluate(data.head(5))  # fail early on a bad expression
        x, _ = _numeric(data[self.column], table.columns[self.column])
        present = x[~np.isnan(x)]
        decimals = None
        for d in range(7):
            if np.all(np.abs(present - np.round(present, d)) < 1e-9):
                decimals = d
                break
        self.state = {
            "decimals": decimals,
            "tolerance": 0.5 * 10.0 ** (-decimals) if decimals is not None else 1e-6,
            "dtype": str(data[self.column].dtype),
        }
        return True

    def _transform(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        return data.drop(columns=[self.column])

    def _transform_metadata(self, table: TableMetadata) -> TableMetadata:
        out = table.copy()
        del out.columns[self.column]
        return out

    def _reverse(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = self.evaluate(data)
        if self.state.get("decimals") is not None:
            values = np.round(values, self.state["decimals"])
        out = data.copy()
        if self.state["dtype"].startswith(("int", "Int", "uint")):
            out[self.column] = pd.Series(np.round(values), index=data.index).astype("Int64")
        else:
            out[self.column] = values
        return out


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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "columns": self.columns}

    def is_valid(self, data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
        if self.predicate is None:
            raise MetadataError(
                f"Custom rule '{self.name}' has no function. Pass it again: "
                f"load(path, custom_constraints={{'{self.name}': function}})."
            )
        return np.asarray(self.predicate(data), dtype=bool).reshape(len(data))


RULES: dict[str, type[Constraint]] = {
    cls.type: cls
    for cls in (
        Inequality,
        DateOrder,
        Range,
        Positive,
        NonNegative,
        FixedCombinations,
        OneHot,
        Formula,
        Custom,
    )
}


def constraint_from_dict(
    data: dict[str, Any], custom: dict[str, Callable[..., Any]] | None = None
) -> Constraint:
    """Build a rule from its JSON form (as written in metadata ``constraints``)."""
    if not isinstance(data, dict) or data.get("type") not in RULES:
        raise MetadataError(
            f"Unknown rule {data!r}. Rule types: {', '.join(RULES)}; e.g. "
            '{"type": "inequality", "low": "diastolic_bp", "high": "systolic_bp"}.'
        )
    params = {k: v for k, v in data.items() if k not in ("type", "state")}
    if data["type"] == "custom":
        fn = (custom or {}).get(params.get("name", ""))
        return Custom(fn, columns=params.get("columns"), name=params.get("name"))
    try:
        rule = RULES[data["type"]](**params)
    except TypeError as exc:
        raise MetadataError(f"Rule {data!r} has wrong parameters: {exc}.") from None
    return rule
