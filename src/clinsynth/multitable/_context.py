"""Parent context: a few parent columns as normal scores, given to the child table's model.

A child row is learned together with its parent row's most informative columns, so that the
child model captures parent -> child dependencies (diabetic patients' glucose results, long stays'
lab counts). Each parent column becomes a normal score through its empirical CDF (numbers, dates,
child counts) or through its level frequencies (categories): the same encoding at fit time, on
the real parents, and at sampling time, on the synthetic parents. Columns are chosen by their
strongest rank correlation with the child's own columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from clinsynth.multitable._dates import to_ns

#: Distinct values below which a numeric column keeps its exact empirical CDF.
_EXACT_LEVELS = 256
#: Categories kept by the encoder (the rest share the neutral score 0).
_MAX_LEVELS = 200
_EPS = 1e-6


@dataclass
class ContextEncoder:
    """A parent's column to normal scores, the context a child table's model is given (``NaN``
    and unseen values give the neutral score 0). Saved in the plan; not the evaluation's
    :class:`~clinsynth.evaluation._encoding.FeatureEncoder`, which encodes rows for
    distances and models.

    Examples
    --------
    >>> enc = ContextEncoder.fit(pd.Series([1.0, 2.0, 3.0, 4.0]), "numerical")
    >>> [round(float(v), 2) for v in enc.transform(pd.Series([1.0, 4.0, None]))]
    [-1.15, 1.15, 0.0]
    """

    kind: str
    xs: list[float] = field(default_factory=list)
    ps: list[float] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    datetime_format: str | None = None

    @classmethod
    def fit(
        cls, values: pd.Series, sdtype: str, datetime_format: str | None = None
    ) -> ContextEncoder:
        if sdtype in ("numerical", "datetime", "count"):
            x = _as_float(values, sdtype, datetime_format)
            x = x[~np.isnan(x)]
            if len(x) == 0:
                return cls("numeric", [0.0, 1.0], [0.5, 0.5], datetime_format=datetime_format)
            uniq, counts = np.unique(x, return_counts=True)
            if len(uniq) <= _EXACT_LEVELS:
                xs, ps = uniq, (np.cumsum(counts) - counts / 2) / len(x)
            else:
                qs = np.linspace(0.0, 1.0, _EXACT_LEVELS + 1)
                xs, ps = np.quantile(x, qs), np.clip(qs, 0.5 / len(x), 1 - 0.5 / len(x))
            return cls("numeric", xs.tolist(), ps.tolist(), datetime_format=datetime_format)
        keys = _keys(values).dropna()
        freq = keys.value_counts(sort=True)
        if len(freq) == 0:
            return cls("category")
        cum = (np.cumsum(freq.to_numpy()) - freq.to_numpy() / 2) / len(keys)
        scores = special.ndtri(np.clip(cum, _EPS, 1 - _EPS))
        return cls(
            "category",
            levels=[str(v) for v in freq.index[:_MAX_LEVELS]],
            scores=[float(s) for s in scores[:_MAX_LEVELS]],
        )

    def transform(self, values: pd.Series, sdtype: str | None = None) -> np.ndarray:
        if self.kind == "numeric":
            x = _as_float(values, sdtype or "numerical", self.datetime_format)
            p = np.interp(x, np.asarray(self.xs), np.asarray(self.ps))
            z = special.ndtri(np.clip(p, _EPS, 1 - _EPS))
            return np.where(np.isnan(x), 0.0, z)
        lookup = dict(zip(self.levels, self.scores, strict=True))
        z = _keys(values).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
        return np.nan_to_num(z, nan=0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextEncoder:
        return cls(**data)


def _keys(values: pd.Series) -> pd.Series:
    """Category keys as text (``1`` and ``1.0`` read from different files agree)."""
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if len(whole) and np.all(whole == np.round(whole)):
            return values.astype("Int64").astype("string")
    return values.astype("string")


def _as_float(values: pd.Series, sdtype: str, datetime_format: str | None) -> np.ndarray:
    if sdtype == "datetime":
        ns, present = to_ns(values, datetime_format)
        out = ns.astype(np.float64)
        out[~present] = np.nan
        return out
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64").to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def encoder_sdtype(spec: dict) -> str | None:
    """How a column can serve as context: ``numerical``/``datetime``/``category`` or None."""
    sdtype = spec.get("sdtype")
    if sdtype in ("numerical", "datetime"):
        return sdtype
    if sdtype in ("categorical", "boolean", "ordinal"):
        return "category"
    return None


def select_features(
    candidates: dict[str, np.ndarray],
    targets: list[np.ndarray],
    max_features: int,
    min_association: float = 0.05,
) -> list[str]:
    """The candidate names most associated with any target (absolute correlation of scores).

    ``candidates`` and ``targets`` are normal scores over the same child rows (``NaN`` where the
    row has no parent). At most ``max_features`` are kept, each above ``min_association``.

    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=500)
    >>> select_features({"a": t + rng.normal(size=500), "b": rng.normal(size=500)}, [t], 1)
    ['a']
    """
    if not candidates or not targets or max_features <= 0:
        return []
    names = list(candidates)
    c = np.column_stack([candidates[n] for n in names])
    t = np.column_stack(targets)
    rows = ~np.isnan(c).any(axis=1) & ~np.isnan(t).any(axis=1)
    if rows.sum() < 10:
        return []
    c, t = _standardize(c[rows]), _standardize(t[rows])
    assoc = np.abs(c.T @ t) / len(c)
    score = assoc.max(axis=1)
    order = np.argsort(-score, kind="stable")
    return [names[i] for i in order[:max_features] if score[i] > min_association]


def _standardize(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def projection(context: np.ndarray) -> np.ndarray:
    """The first principal axis of context scores (rank matching for models without native
    conditioning)."""
    if context.shape[1] == 0:
        return np.zeros(0)
    x = np.nan_to_num(context)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x[:200_000], full_matrices=False)
    axis = vt[0]
    return axis * np.sign(axis.sum() or 1.0)
