"""Categorical, ordinal and boolean columns: one-hot or integer codes, missing as its own level."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth._utils import text_dtype
from clinsynth.errors import DataError, ParameterError
from clinsynth.io import _schema as S
from clinsynth.transform._base import (
    ColumnTransformer,
    SpanInfo,
    decode_choice,
    dtype_name,
    one_hot,
    to_python,
)

METHODS = ("onehot", "label")


class CategoricalTransformer(ColumnTransformer):
    """A column of levels to a one-hot block (or one integer code) and back.

    Missing values are a level of their own, so they come back at the same rate and in the same
    relation to the other columns. Levels are ordered by frequency (most frequent first), or by
    ``order`` for ordinal columns, so that integer codes keep the order.

    Levels held by fewer than ``rare_threshold`` patients (distinct primary-key values when the
    table has a key, rows otherwise) are merged into one "other" level before anything is
    learned, and are not stored: an existing level spelled "other" (any case) absorbs them;
    otherwise text columns get the level ``"Other"`` and number-coded columns the code ``-1``
    (or one less than the smallest code when ``-1`` is taken). Values not seen at fit time are
    coded as "other" when the column has one. Ordinal and boolean columns are never merged:
    their levels are declared (the order) or public (True/False).

    Parameters
    ----------
    column : str
    method : {"onehot", "label"}
    order : list, optional
        The ordered levels of an ordinal column. Values outside it are an error.
    rare_threshold : int, optional
        Merge levels rarer than this into "other"; None keeps every level.

    Examples
    --------
    >>> t = CategoricalTransformer("dx", rare_threshold=5)
    >>> _ = t.fit(pd.Series(["copd"] * 6 + ["chf"] * 6 + ["kuru"] * 2))
    >>> t.levels_
    ['chf', 'copd', 'Other']
    """

    kind: ClassVar[str] = "categorical"
    _params = ("method", "order", "rare_threshold")
    _state = ("levels", "frequencies", "has_nulls", "dtype", "other_code", "merged_levels")
    #: Defaults for bundles written before rare-level merging existed.
    other_code_: int = -1
    merged_levels_: int = 0
    #: Most levels a bundle may declare.
    MAX_LEVELS: ClassVar[int] = 1_000_000
    _param_checks: ClassVar[dict[str, Any]] = {
        "method": S.text(20, choices=METHODS),
        "order": S.array(S.scalar(), max_len=MAX_LEVELS, null=True),
        "rare_threshold": S.integer(1, 10**9, null=True),
    }
    _state_checks: ClassVar[dict[str, Any]] = {
        "levels": S.array(S.scalar(), min_len=1, max_len=MAX_LEVELS),
        "frequencies": S.array(S.number(0, 1), min_len=1, max_len=MAX_LEVELS),
        "has_nulls": S.boolean(),
        "dtype": dtype_name(),
        "other_code": S.integer(-1, MAX_LEVELS),
        "merged_levels": S.integer(0, 10**9),
    }

    def _state_problems(self) -> list[str]:
        problems = []
        if len(self.levels_) != len(self.frequencies_):
            problems.append("levels and frequencies must have the same length")
        if self.other_code_ >= len(self.levels_):
            problems.append(f"other_code {self.other_code_} is not a level's index")
        if None in self.levels_[:-1]:
            problems.append("only the last level may be the missing value (null)")
        return problems

    def __init__(
        self,
        column: str,
        method: str = "onehot",
        order: list | None = None,
        rare_threshold: int | None = None,
    ) -> None:
        super().__init__(column)
        if method not in METHODS:
            raise ParameterError(
                f"The 'method' parameter of CategoricalTransformer must be one of {METHODS}. "
                f"Got {method!r}."
            )
        if rare_threshold is not None and (
            not isinstance(rare_threshold, int | np.integer)
            or isinstance(rare_threshold, bool)
            or rare_threshold < 1
        ):
            raise ParameterError(
                "The 'rare_category_threshold' parameter must be None or an int >= 1. "
                f"Got {rare_threshold!r}."
            )
        self.method = method
        self.order = list(order) if order is not None else None
        self.rare_threshold = int(rare_threshold) if rare_threshold is not None else None

    # ------------------------------------------------------------------ fit
    def _fit(self, series: pd.Series) -> None:
        self.dtype_ = str(series.dtype)
        self.other_code_, self.merged_levels_ = -1, 0
        self.all_rare_ = False  # every level too rare: nothing but "other" would come out
        if self.order is None:
            _refuse_free_text(series, self.column)
        if self._privacy is not None:
            self._fit_private(series)
            return
        with warnings.catch_warnings():  # object columns: the levels are used as they are
            warnings.simplefilter("ignore", FutureWarning)
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
            items = [(to_python(v), int(c)) for v, c in counts.items()]
            if self.rare_threshold is not None and self.dtype_ != "bool":
                items = self._merge_rare(items, self._support(series, counts))
            items.sort(key=lambda vc: (-vc[1], str(vc[0])))
            levels = [v for v, _ in items]
            freqs = [c for _, c in items]
        self._finish(levels, freqs, int(series.isna().sum()), len(series))

    def _finish(
        self, levels: list, freqs: list, nulls: float, n_rows: int, other: object = None
    ) -> None:
        self.has_nulls_ = bool(nulls > 0)
        if self.has_nulls_:
            levels.append(None)
            freqs.append(nulls)
        if not levels:  # an empty column still needs one level to decode to
            levels, freqs = [None], [n_rows]
        total = float(sum(freqs)) or 1.0
        self.levels_ = levels
        self.frequencies_ = [f / total for f in freqs]
        if self.merged_levels_ or other is not None:
            label = self._other_label_ if other is None else other
            self.other_code_ = next(
                i
                for i, v in enumerate(levels)
                if v is not None and self._key(v) == self._key(label)
            )
        self._restore()

    # ------------------------------------------------------------------ rare levels
    def _support(self, series: pd.Series, counts: pd.Series) -> dict[str, int]:
        """Patients per level: distinct entity keys when known, rows otherwise."""
        if self._entities is None:
            return {self._key(v): int(c) for v, c in counts.items()}
        pairs = pd.DataFrame({"v": series.to_numpy(), "e": self._entities.to_numpy()}).dropna()
        per = pairs.drop_duplicates().groupby("v", sort=False)["e"].size()
        return {self._key(v): int(c) for v, c in per.items()}

    def _merge_rare(self, items: list[tuple], support: dict[str, int]) -> list[tuple]:
        """Fold the levels held by fewer than ``rare_threshold`` patients into "other"."""
        rare = [(v, c) for v, c in items if support.get(self._key(v), 0) < self.rare_threshold]
        if not rare:
            return items
        kept = [(v, c) for v, c in items if support.get(self._key(v), 0) >= self.rare_threshold]
        self.all_rare_ = not kept and len(rare) > 1
        label = self._other_for([v for v, _ in items])
        merged = sum(c for _, c in rare)
        absorbed = [
            (v, c + merged) if self._key(v) == self._key(label) else (v, c) for v, c in kept
        ]
        if not any(self._key(v) == self._key(label) for v, _ in kept):
            absorbed.append((label, merged))
        self.merged_levels_ = sum(1 for v, _ in rare if self._key(v) != self._key(label))
        self._other_label_ = label
        return absorbed

    def _other_for(self, values: list) -> object:
        """The level rare values become: an existing "other", "Other", or a spare number code."""
        for v in values:
            if isinstance(v, str) and v.strip().lower() in ("other", "others"):
                return v
        numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if values and len(numeric) == len(values):
            code = -1
            if any(self._key(v) == "-1" for v in values):
                code = int(np.floor(min(numeric))) - 1
            return float(code) if self.dtype_.startswith(("float", "Float")) else code
        return "Other"

    # ------------------------------------------------------------------ private fit
    def _fit_private(self, series: pd.Series) -> None:
        """Levels and frequencies from public lists or noisy (thresholded) histograms."""
        cp = self._privacy
        factor, uniques = pd.factorize(series, use_na_sentinel=True)
        counts = np.bincount(factor[factor >= 0], minlength=len(uniques))
        n_missing = int((factor < 0).sum())
        values = [to_python(u) for u in uniques]
        public = self.order if self.order is not None else cp.public
        if public is None and self.dtype_ in ("bool", "boolean"):
            public = [False, True]
        other_label = None
        if public is not None:
            levels = [to_python(v) for v in public]
            where = {self._key(v): i for i, v in enumerate(levels)}
            aligned = np.zeros(len(levels))
            n_other = 0
            for v, c in zip(values, counts, strict=True):
                if self._key(v) in where:
                    aligned[where[self._key(v)]] += c
                else:
                    n_other += int(c)
            noisy, missing, other, sigma = cp.public_levels(aligned, n_missing, n_other)
            items = list(zip(levels, noisy.tolist(), strict=True))
        else:
            named, noisy, missing, other, sigma = cp.discover_levels(counts, n_missing)
            items = [(values[i], c) for i, c in zip(named, noisy.tolist(), strict=True)]
            if self.rare_threshold is not None and self.dtype_ != "bool":
                rare = [(v, c) for v, c in items if c < self.rare_threshold]
                items = [(v, c) for v, c in items if c >= self.rare_threshold]
                other += sum(c for _, c in rare)
                self.merged_levels_ = len(rare)
        # Post-processing only from here: keep "other"/missing when their noisy count is clear.
        if other > 2 * sigma or not items:
            other_label = self._other_for([v for v, _ in items])
            match = [i for i, (v, _) in enumerate(items) if self._key(v) == self._key(other_label)]
            if match:
                v, c = items[match[0]]
                items[match[0]] = (v, c + other)
            else:
                items.append((other_label, other))
        if self.order is None:
            items.sort(key=lambda vc: (-vc[1], str(vc[0])))
        self._finish(
            [v for v, _ in items],
            [c for _, c in items],
            missing if missing > 2 * sigma else 0.0,
            len(series),
            other_label,
        )
        if self.other_code_ < 0:  # rows whose level (or missing) was not kept: the top level
            self.other_code_ = 0
        self.dp_counts_ = np.array([c for _, c in items] + ([missing] if self.has_nulls_ else []))

    @staticmethod
    def _key(value: object) -> str:
        """Compare levels across types: 2, 2.0 and "2" from a CSV are the same level."""
        if isinstance(value, bool | np.bool_):
            return str(bool(value))
        if isinstance(value, int | float | np.integer | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    def _restore(self) -> None:
        self._levels_ = np.empty(len(self.levels_), dtype=object)
        self._levels_[:] = self.levels_
        self._index_ = {self._key(v): i for i, v in enumerate(self.levels_) if v is not None}
        self._null_code_ = len(self.levels_) - 1 if self.levels_[-1] is None else -1

    # ------------------------------------------------------------------ spans
    def _spans(self) -> list[SpanInfo]:
        if self.method == "label":
            return [SpanInfo(1, "label", self.column, "category", n_levels=len(self.levels_))]
        return [SpanInfo(len(self.levels_), "softmax", self.column, "category")]

    # ------------------------------------------------------------------ transform
    def codes(self, series: pd.Series) -> np.ndarray:
        """Level index of every value; an unseen value is an error naming the column.

        Values are hashed once by ``pd.factorize``; only the distinct values go through Python.
        """
        factor, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = np.array([self._index_.get(self._key(u), -2) for u in uniques], dtype=np.int64)
        if self.other_code_ >= 0:  # merged rare levels and unseen values are "other"
            lookup[lookup < 0] = self.other_code_
        null_code = (
            self._null_code_
            if self._null_code_ >= 0
            else (self.other_code_ if self.other_code_ >= 0 else -2)
        )
        codes = np.where(
            factor < 0, null_code, lookup[np.maximum(factor, 0)] if len(lookup) else null_code
        )
        bad = codes < 0
        if bad.any():
            values = series[bad].unique()[:5].tolist()
            raise DataError(
                f"Column '{self.column}' has {int(bad.sum())} values not seen when the model was "
                f"fitted: {values}. Use only the column's known levels "
                f"({[v for v in self.levels_ if v is not None][:10]})."
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
        return one_hot(codes, len(self.levels_))

    # ------------------------------------------------------------------ inverse
    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        codes = np.clip(decode_choice(data), 0, len(self.levels_) - 1)
        return self.values_from_codes(codes)

    def values_from_codes(self, codes: np.ndarray) -> pd.Series:
        if self.dtype_ == "str" and text_dtype() is not object:
            fast = _text_from_codes(self._levels_, codes)
            if fast is not None:
                return fast
        values = pd.Series(self._levels_[codes], dtype=object)
        has_null = bool(self._null_code_ >= 0 and np.any(codes == self._null_code_))
        return _restore_dtype(values, self.dtype_, has_null)


def _refuse_free_text(series: pd.Series, column: str) -> None:
    """Free text (long, mostly distinct sentences) is never learned: a model would memorize it.

    The thresholds are those of metadata detection, which declares such columns ``text``.
    """
    values = series.dropna()
    if len(values) < 20 or not (
        pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
    ):
        return
    text = values.astype(str).iloc[:2000]
    distinct = text.nunique()
    if (
        distinct >= 20
        and distinct > 0.5 * len(text)
        and text.str.len().mean() > 40
        and text.str.contains(" ").mean() > 0.8
    ):
        raise DataError(
            f"Column '{column}' is declared categorical but holds free text ({values.nunique()} "
            f"distinct values, {text.str.len().mean():.0f} characters on average): a model "
            "would memorize it. Declare it sdtype 'text' (it is then replaced by fake "
            "sentences and nothing is learned from it) or drop the column."
        )


def _text_from_codes(levels: np.ndarray, codes: np.ndarray) -> pd.Series | None:
    """Levels picked by ``codes`` as pandas' pyarrow-backed text dtype, taken in Arrow (several
    times faster than casting Python strings); None when the levels are not all text."""
    import pyarrow as pa

    try:
        table = pa.array(levels, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    taken = table.take(pa.array(np.asarray(codes, dtype=np.int64)))
    return taken.to_pandas(types_mapper={pa.large_string(): text_dtype()}.get)


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
        if dtype == "str":  # pandas 3's default text dtype
            return values.astype(text_dtype())
    except (TypeError, ValueError):
        pass
    return values
