"""A small feature encoder for distances and models: standardized numbers, one-hot categories.

Fitted on one table (the real training data for privacy and detection; the training set of each
model for utility). Numerical and datetime columns become ``(x - mean) / std``; a missing value
becomes 0 plus a missing-indicator column. Categorical, ordinal and boolean columns become one-hot
columns for their ``max_categories`` most frequent levels, one for every other level and one for
missing. Indicator and one-hot columns are scaled by ``1 / sqrt(2)`` so that two records that
differ in one category are at Euclidean distance 1, like two numbers one standard deviation apart:
the distance behaves like a Gower distance in which every column weighs about the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.evaluation._common import CONTINUOUS, to_numeric
from clinsynth.metadata import TableMetadata

_ONE_HOT = 1.0 / np.sqrt(2.0)


class FeatureEncoder:
    """Encode the given columns of a table as a float matrix.

    Parameters
    ----------
    table : TableMetadata
    columns : list of str
        Statistical columns to encode (no id or PII columns).
    max_categories : int
        Most frequent levels kept per categorical column.
    """

    def __init__(self, table: TableMetadata, columns: list[str], *, max_categories: int = 20):
        self.table = table
        self.columns = list(columns)
        self.max_categories = max_categories

    def fit(self, data: pd.DataFrame) -> FeatureEncoder:
        self.stats_: dict[str, tuple] = {}
        names: list[str] = []
        self.groups_: dict[str, slice] = {}
        for col in self.columns:
            spec = self.table.columns[col]
            start = len(names)
            if spec["sdtype"] in CONTINUOUS:
                x = to_numeric(data[col], spec)
                present = x[~np.isnan(x)]
                mean = float(present.mean()) if len(present) else 0.0
                std = float(present.std()) if len(present) > 1 else 0.0
                has_nan = bool(np.isnan(x).any())
                self.stats_[col] = ("num", mean, std if std > 0 else 1.0, has_nan)
                names.append(col)
                if has_nan:
                    names.append(f"{col}__missing")
            else:
                levels = data[col].value_counts(dropna=True).index[: self.max_categories]
                self.stats_[col] = ("cat", pd.Index(levels))
                names.extend(f"{col}={v}" for v in levels)
                names.extend([f"{col}__other", f"{col}__missing"])
            self.groups_[col] = slice(start, len(names))
        self.feature_names_ = names
        return self

    def transform(self, data: pd.DataFrame) -> np.ndarray:
        n = len(data)
        out = np.zeros((n, len(self.feature_names_)), dtype=np.float64)
        for col in self.columns:
            spec = self.table.columns[col]
            info = self.stats_[col]
            block = self.groups_[col]
            if info[0] == "num":
                _, mean, std, has_nan = info
                x = to_numeric(data[col], spec)
                missing = np.isnan(x)
                out[:, block.start] = np.where(missing, 0.0, (x - mean) / std)
                if has_nan:
                    out[:, block.start + 1] = missing * _ONE_HOT
            else:
                levels: pd.Index = info[1]
                values = data[col]
                # -1 for a level not kept (and for missing); pandas 3 deprecates building a
                # Categorical from values outside its categories.
                codes = levels.get_indexer(values).astype(np.int64)
                missing = values.isna().to_numpy()
                codes[(codes < 0) & ~missing] = len(levels)
                codes[missing] = len(levels) + 1
                out[np.arange(n), block.start + codes] = _ONE_HOT
        return out

    def fit_transform(self, data: pd.DataFrame) -> np.ndarray:
        return self.fit(data).transform(data)
