"""``column == expression`` of other columns: derived columns (BMI, totals, differences)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint, _numeric
from clinsynth.constraints._logic import _Condition
from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError


class Formula(Constraint):
    """``column == expression`` of other columns within ``tolerance``, e.g. BMI from height and
    weight: ``Formula("bmi", "weight / (height / 100) ** 2", tolerance=0.1)``.

    Reparametrized: the column is not learned; it is computed from the expression after sampling
    (rounded like the real column), so it matches by construction. When the real column also
    has values where the expression cannot be computed (an input is missing: ``adlsc`` is
    ``adls`` where ``adls`` is known, an estimate elsewhere), the model learns the column and
    the expression overrides it wherever it can be computed. Expressions use column names,
    numbers and + - * / ** ( ); names with spaces or dots go in backticks.

    With ``when_column`` and ``when_values`` the formula holds only on the rows where that
    column takes one of those values -- a conditional identity: ``dnrday = slos`` for the
    patients with no DNR order, ``slos = d.time`` for those who died in hospital. The model
    then learns the column for every row and the expression overrides it on those rows.
    """

    type = "formula"
    can_reparametrize = True

    def __init__(
        self,
        column: str,
        expression: str,
        tolerance: float | None = None,
        when_column: str | None = None,
        when_values: list | None = None,
    ) -> None:
        super().__init__()
        self.column, self.expression, self.tolerance = column, expression, tolerance
        if (when_column is None) != (when_values is None) or when_values == []:
            raise MetadataError(
                f"The formula for '{column}' needs both 'when_column' and a non-empty "
                "'when_values' list, or neither."
            )
        self.when = None if when_column is None else _Condition(when_column, list(when_values))

    @property
    def columns(self) -> list[str]:
        names = [self.column, *(c for c in _names_in(self.expression) if c != self.column)]
        if self.when is not None and self.when.column not in names:
            names.append(self.when.column)
        return names

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    @property
    def preserving(self) -> bool:  # type: ignore[override]
        return self.when is not None or bool(self.state_.get("partial"))

    def _params(self) -> dict[str, Any]:
        out = {"column": self.column, "expression": self.expression, "tolerance": self.tolerance}
        if self.when is not None:
            out |= {"when_column": self.when.column, "when_values": self.when.values}
        return out

    def describe(self) -> str:
        text = f"{self.column} = {self.expression}"
        return text if self.when is None else f"{text} when {self.when.describe()}"

    def _gate(self, data: pd.DataFrame) -> np.ndarray:
        if self.when is None:
            return np.ones(len(data), dtype=bool)
        return self.when.holds(data)

    def evaluate(self, data: pd.DataFrame) -> np.ndarray:
        used = [c for c in self.inputs if c in data.columns]
        numeric = data[used].apply(
            lambda s: pd.to_numeric(s, errors="coerce") if s.dtype == object else s
        )
        try:
            result = numeric.eval(self.expression, engine="python", local_dict={}, global_dict={})
        except Exception as exc:  # pandas raises many types for a bad expression
            raise MetadataError(
                f"rule {self.describe()}: cannot evaluate {self.expression!r} "
                f"({type(exc).__name__}: {exc}). Use column names, numbers and + - * / ** ( )."
            ) from None
        return np.asarray(result, dtype=np.float64).reshape(len(data))

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        x, _ = _numeric(data[self.column], table.columns[self.column])
        with np.errstate(all="ignore"):
            expected = self.evaluate(data)
        tol = self.tolerance
        if tol is None:  # half a unit of the column's last decimal (of these rows, unfitted)
            tol = self.state_.get("tolerance") or _half_unit(x)
        close = np.abs(x - expected) <= tol + 1e-9 * np.abs(expected)
        return close | np.isnan(x) | np.isnan(expected) | ~self._gate(data)

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        self.evaluate(data.head(5))  # fail early on a bad expression
        x, _ = _numeric(data[self.column], table.columns[self.column])
        decimals = decimals_of(x[~np.isnan(x)])
        with np.errstate(all="ignore"):
            expected = self.evaluate(data)
        return {
            "decimals": decimals,
            "tolerance": _half_unit(x),
            "dtype": str(data[self.column].dtype),
            "partial": bool(np.any(~np.isnan(x) & np.isnan(expected))),
        }

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data if self.preserving else data.drop(columns=[self.column])

    def _transform_metadata(self, table: TableLike) -> TableLike:
        if self.preserving:
            return table
        out = table.copy()
        del out.columns[self.column]
        return out

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        with np.errstate(all="ignore"):
            values = self.evaluate(data)
        if self.state_.get("decimals") is not None:
            values = np.round(values, self.state_["decimals"])
        if self.preserving:
            current, _ = _numeric(data[self.column], table.columns[self.column])
            values = np.where(np.isnan(values) | ~self._gate(data), current, values)
        out = data.copy()
        if self.state_["dtype"].startswith(("int", "Int", "uint")):
            out[self.column] = pd.Series(np.round(values), index=data.index).astype("Int64")
        else:
            out[self.column] = values
        return out


_NAME = re.compile(r"`([^`]+)`|(?<![\w.`])([A-Za-z_]\w*)")


def _names_in(expression: str) -> list[str]:
    """Column names in a formula: backticked names and bare identifiers, in order, once."""
    names = [m.group(1) or m.group(2) for m in _NAME.finditer(expression)]
    return list(dict.fromkeys(names))


def _half_unit(x: np.ndarray) -> float:
    decimals = decimals_of(x[~np.isnan(x)])
    return 0.5 * 10.0 ** (-decimals) if decimals is not None else 1e-6


def decimals_of(values: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimals (0 to ``most``) that write every value exactly, or None."""
    values = values[np.isfinite(values)]
    for d in range(most + 1):
        if np.all(np.abs(values - np.round(values, d)) < 1e-9 * np.maximum(1.0, np.abs(values))):
            return d
    return None
