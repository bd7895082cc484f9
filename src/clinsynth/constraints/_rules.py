"""Order rules: Inequality (``low <= high`` on numbers or dates) and DateOrder (a chain of dates);
reparametrized as differences. The base class and what rules share are in ``_base``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint, _from_seconds, _numeric
from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError


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
        self.state_ = {"min_positive": float(positive.min()) if len(positive) else 1.0}
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
        floor = self.state_["min_positive"] if self.strict else 0.0
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
        self.state_ = {"pairs": []}
        for pair in self._pairs():
            if not pair._fit(data, table):
                return False
            self.state_["pairs"].append(pair.state_)
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
        for pair, state in zip(self._pairs(), self.state_["pairs"], strict=True):
            pair.state_ = state
            out = pair._reverse(out, table)
        return out
