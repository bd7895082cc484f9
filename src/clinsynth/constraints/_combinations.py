"""Rules over several categorical columns at once, learned as one joint column."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth.constraints._base import _PREFIX, Constraint
from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError


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

    def _params(self) -> dict[str, Any]:
        return {"columns": self.columns}

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        """The joint column's value on every row."""
        raise NotImplementedError

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        out = data.drop(columns=self._columns)
        out[self.joint_column] = self._joint_values(data)
        return out

    def _transform_metadata(self, table: TableLike) -> TableLike:
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

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        keys = self._keys(data, self._columns)
        return {
            "allowed": sorted(set(keys)),
            "dtypes": [str(data[c].dtype) for c in self._columns],
        }

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return True

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        if "allowed" not in self.state_:  # not fitted: nothing to compare with yet
            return np.ones(len(data), dtype=bool)
        return self._keys(data, self._columns).isin(set(self.state_["allowed"])).to_numpy()

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        return self._keys(data, self._columns).to_numpy()

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        keys = data[self.joint_column]
        uniques, inverse = np.unique(keys.astype(str).to_numpy(), return_inverse=True)
        decoded = [json.loads(u) for u in uniques]
        out = data.drop(columns=[self.joint_column])
        for i, col in enumerate(self._columns):
            values = np.empty(len(uniques), dtype=object)
            values[:] = [d[i] for d in decoded]
            column = pd.Series(values[inverse], index=data.index)
            dtype = self.state_["dtypes"][i]
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

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        m = self._matrix(data)
        return np.isin(m, (0.0, 1.0)).all(axis=1) & (np.nansum(m, axis=1) == 1)

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        self.state_ = {"dtypes": [str(data[c].dtype) for c in self._columns]}
        return True

    def _joint_values(self, data: pd.DataFrame) -> np.ndarray:
        hot = np.argmax(self._matrix(data), axis=1)
        return np.asarray(self._columns, dtype=object)[hot]

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        hot = data[self.joint_column].to_numpy()
        out = data.drop(columns=[self.joint_column])
        for col, dtype in zip(self._columns, self.state_["dtypes"], strict=True):
            flag = hot == col
            out[col] = flag if dtype == "bool" else flag.astype(np.int64)
        return out
