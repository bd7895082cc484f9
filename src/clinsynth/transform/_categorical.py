"""Categorical, ordinal and boolean columns: one-hot or integer codes, missing as its own level."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from clinsynth.errors import DataError, ParameterError
from clinsynth.transform._base import ColumnTransformer, SpanInfo, decode_choice, one_hot, to_python

METHODS = ("onehot", "label")


class CategoricalTransformer(ColumnTransformer):
    """A column of levels to a one-hot block (or one integer code) and back.

    Missing values are a level of their own, so they come back at the same rate and in the same
    relation to the other columns. Levels are ordered by frequency (most frequent first), or by
    ``order`` for ordinal columns, so that integer codes keep the order.

    Parameters
    ----------
    column : str
    method : {"onehot", "label"}
    order : list, optional
        The ordered levels of an ordinal column. Values outside it are an error.
    """

    kind: ClassVar[str] = "categorical"
    _params = ("method", "order")
    _state = ("levels", "frequencies", "has_nulls", "dtype")

    def __init__(self, column: str, method: str = "onehot", order: list | None = None) -> None:
        super().__init__(column)
        if method not in METHODS:
            raise ParameterError(
                f"The 'method' parameter of CategoricalTransformer must be one of {METHODS}. "
                f"Got {method!r}."
            )
        self.method = method
        self.order = list(order) if order is not None else None

    # ------------------------------------------------------------------ fit
    def _fit(self, series: pd.Series) -> None:
        self.dtype = str(series.dtype)
        counts = series.value_counts(dropna=True, sort=False)
        if self.order is not None:
            levels = [to_python(v) for v in self.order]
            observed = {self._key(v) for v in counts.index}
            unknown = observed - {self._key(v) for v in levels}
            if unknown:
                raise DataError(
                    f"Column '{self.column}' is ordinal but has values outside its order "
                    f"{levels}: {sorted(unknown)[:5]}. Add them to 'order' in the metadata."
                )
            by_key = {self._key(v): int(c) for v, c in counts.items()}
            freqs = [by_key.get(self._key(v), 0) for v in levels]
        else:
            items = sorted(
                ((to_python(v), int(c)) for v, c in counts.items()),
                key=lambda vc: (-vc[1], str(vc[0])),
            )
            levels = [v for v, _ in items]
            freqs = [c for _, c in items]
        nulls = int(series.isna().sum())
        self.has_nulls = bool(nulls > 0)
        if self.has_nulls:
            levels.append(None)
            freqs.append(nulls)
        if not levels:  # an empty column still needs one level to decode to
            levels, freqs = [None], [len(series)]
        total = float(sum(freqs)) or 1.0
        self.levels = levels
        self.frequencies = [f / total for f in freqs]
        self._restore()

    @staticmethod
    def _key(value: object) -> str:
        """Compare levels across types: 2, 2.0 and "2" from a CSV are the same level."""
        if isinstance(value, bool | np.bool_):
            return str(bool(value))
        if isinstance(value, int | float | np.integer | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    def _restore(self) -> None:
        self._levels = np.empty(len(self.levels), dtype=object)
        self._levels[:] = self.levels
        self._index = {self._key(v): i for i, v in enumerate(self.levels) if v is not None}
        self._null_code = len(self.levels) - 1 if self.levels[-1] is None else -1

    # ------------------------------------------------------------------ spans
    def _spans(self) -> list[SpanInfo]:
        if self.method == "label":
            return [SpanInfo(1, "label", self.column, "category", n_levels=len(self.levels))]
        return [SpanInfo(len(self.levels), "softmax", self.column, "category")]

    # ------------------------------------------------------------------ transform
    def codes(self, series: pd.Series) -> np.ndarray:
        """Level index of every value; an unseen value is an error naming the column.

        Values are hashed once by ``pd.factorize``; only the distinct values go through Python.
        """
        factor, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = np.array([self._index.get(self._key(u), -2) for u in uniques], dtype=np.int64)
        null_code = self._null_code if self._null_code >= 0 else -2
        codes = np.where(factor < 0, null_code, lookup[np.maximum(factor, 0)] if len(lookup)
                         else null_code)
        bad = codes < 0
        if bad.any():
            values = series[bad].unique()[:5].tolist()
            raise DataError(
                f"Column '{self.column}' has {int(bad.sum())} values not seen when the model was "
                f"fitted: {values}. Use only the column's known levels "
                f"({[v for v in self.levels if v is not None][:10]})."
            )
        return codes.astype(np.int64)

    def _key_or_none(self, value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return "\x00null"
        return self._key(value)

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        codes = self.codes(series)
        if self.method == "label":
            return codes[:, None].astype(np.float32)
        return one_hot(codes, len(self.levels))

    # ------------------------------------------------------------------ inverse
    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        codes = np.clip(decode_choice(data), 0, len(self.levels) - 1)
        return self.values_from_codes(codes)

    def values_from_codes(self, codes: np.ndarray) -> pd.Series:
        values = pd.Series(self._levels[codes], dtype=object)
        has_null = bool(self._null_code >= 0 and np.any(codes == self._null_code))
        return _restore_dtype(values, self.dtype, has_null)


def _restore_dtype(values: pd.Series, dtype: str, has_null: bool) -> pd.Series:
    """Cast decoded levels back to the column's original dtype where the values allow."""
    try:
        if dtype.startswith(("int", "uint")):
            return values.astype("Int64" if has_null else dtype)
        if dtype.startswith(("float", "Float", "Int", "UInt")):
            return values.astype(dtype if not dtype.startswith("float") else dtype)
        if dtype == "bool":
            return values.astype("boolean" if has_null else "bool")
        if dtype == "boolean":
            return values.astype("boolean")
        if dtype == "category":
            return values.astype("category")
        if dtype.startswith("string"):
            return values.astype(dtype)
    except (TypeError, ValueError):
        pass
    return values
