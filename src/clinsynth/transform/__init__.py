"""Reversible transformers: one class per column kind, and the table transformer."""

from clinsynth.transform._base import ColumnTransformer, SpanInfo
from clinsynth.transform._categorical import CategoricalTransformer
from clinsynth.transform._datetime import DatetimeTransformer
from clinsynth.transform._generated import FormatTransformer, IdTransformer, PiiTransformer
from clinsynth.transform._numerical import NumericalTransformer, fit_gmm_1d
from clinsynth.transform._table import TRANSFORMERS, TableTransformer

__all__ = [
    "TableTransformer",
    "ColumnTransformer",
    "SpanInfo",
    "NumericalTransformer",
    "DatetimeTransformer",
    "FormatTransformer",
    "CategoricalTransformer",
    "IdTransformer",
    "PiiTransformer",
    "TRANSFORMERS",
    "fit_gmm_1d",
]
