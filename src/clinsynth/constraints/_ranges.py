"""Ranges on one column: Range (either bound, optionally on some rows only), Positive and
NonNegative; reparametrized by a log distance or a logit position."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint, _numeric
from clinsynth.constraints._logic import _Condition
from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError


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
        self.state_ = {"eps": span * 1e-6}
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        eps = self.state_["eps"]
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
        eps = self.state_["eps"]
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
