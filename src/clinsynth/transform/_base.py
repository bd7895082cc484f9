"""The column-transformer contract and the span description the networks read."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from clinsynth.errors import NotFittedError
from clinsynth.io import _schema as S

if TYPE_CHECKING:
    from clinsynth.privacy import ColumnPrivacy

Activation = Literal["tanh", "softmax", "linear", "label"]


@dataclass(frozen=True)
class SpanInfo:
    """One contiguous block of the encoded vector.

    Attributes
    ----------
    dim : int
        Width of the block.
    activation : {"tanh", "softmax", "linear", "label"}
        How a network produces it: ``tanh`` for a scaled scalar, ``softmax`` for a one-hot group,
        ``linear`` for an unbounded scalar (normal scores, raw values), ``label`` for an integer
        code in ``[0, n_levels)`` stored as one float (used by the Gaussian copula).
    column : str
        The source column.
    role : {"value", "mode", "category", "null"}
        What the block means: the scalar, its mixture component, a categorical level, or the
        null indicator.
    n_levels : int
        For ``label`` spans: the number of levels.
    """

    dim: int
    activation: Activation
    column: str
    role: str = "value"
    n_levels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ColumnTransformer:
    """Base of the per-column transformers.

    Subclasses implement ``_fit``, ``_transform``, ``_inverse`` and ``_spans`` and list their
    fitted JSON-able attributes in ``_state``. Everything they store must be safe to publish:
    statistics, never rows, identifiers or personal data.

    Fitted attributes end in ``_`` (scikit-learn's habit): the bundle key ``"levels"`` is the
    attribute ``levels_`` (:func:`state_attribute`), so the keys of bundles never change.
    """

    kind: ClassVar[str] = ""
    #: Keys of the fitted attributes saved in the model bundle (JSON-able values only); the
    #: attribute of key ``k`` is ``k_``.
    _state: ClassVar[tuple[str, ...]] = ()
    #: Constructor parameters saved in the model bundle.
    _params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, column: str) -> None:
        self.column = column
        self._entities: pd.Series | None = None
        self._privacy: ColumnPrivacy | None = None

    # ------------------------------------------------------------------ contract
    def fit(
        self,
        series: pd.Series,
        *,
        entities: pd.Series | None = None,
        privacy: ColumnPrivacy | None = None,
    ) -> ColumnTransformer:
        """Learn the column's statistics.

        ``entities`` (the primary key) lets rarity be counted per patient; ``privacy`` makes
        every statistic come from public bounds or a DP mechanism
        (:class:`~clinsynth.privacy.ColumnPrivacy`). Both are used during ``fit`` only.
        """
        self._entities, self._privacy = entities, privacy
        try:
            self._fit(series)
        finally:
            self._entities = self._privacy = None
        self.fitted_ = True
        return self

    def transform(
        self, series: pd.Series, rng: np.random.Generator | None = None, dtype: type = np.float32
    ) -> np.ndarray:
        self._check_fitted()
        out = self._transform(series, rng)
        return np.asarray(out, dtype=dtype).reshape(len(series), -1)

    def inverse_transform(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        """Decode ``data`` (n x output width) back to a column; ``rng`` for generated values."""
        self._check_fitted()
        return self._inverse(np.asarray(data), rng).rename(self.column)

    @property
    def output_info(self) -> list[SpanInfo]:
        self._check_fitted()
        return self._spans()

    @property
    def output_dim(self) -> int:
        return sum(s.dim for s in self.output_info)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "column": self.column,
            "params": {p: getattr(self, p) for p in self._params},
            "state": {s: getattr(self, state_attribute(s)) for s in self._state},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "transformer.json") -> ColumnTransformer:
        """Rebuild a fitted transformer from :meth:`to_dict`'s output, after checking every
        field against the class's schema (a bundle is untrusted input)."""
        spec = S.mapping(
            {
                "kind": S.text(50),
                "column": S.text(10_000),
                "params": S.mapping(cls._param_checks),
                "state": S.mapping(cls._state_checks),
            },
            required=("kind", "column", "state"),
        )
        column = data.get("column") if isinstance(data, dict) else None
        at = f"{where}, column {str(column)[:60]!r}" if isinstance(column, str) else where
        S.check_json(data, spec, at)
        obj = cls(data["column"], **data.get("params", {}))
        for key, value in data["state"].items():
            setattr(obj, state_attribute(key), value)
        problems = [p for p in obj._state_problems() if p]
        if problems:
            S.raise_problems(problems, at)
        obj.fitted_ = True
        obj._restore()
        return obj

    #: Checks of the constructor parameters and the fitted state read from a bundle
    #: (:mod:`clinsynth.io._schema`); every key a subclass saves must be listed.
    _param_checks: ClassVar[dict[str, Any]] = {}
    _state_checks: ClassVar[dict[str, Any]] = {}

    def _state_problems(self) -> list[str]:
        """What is inconsistent in a state read from a bundle (lengths, order, ranges)."""
        return []

    def _restore(self) -> None:
        """Rebuild derived attributes (arrays) after loading the JSON state."""

    # ------------------------------------------------------------------ subclass hooks
    def _fit(self, series: pd.Series) -> None:
        raise NotImplementedError

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        raise NotImplementedError

    def _spans(self) -> list[SpanInfo]:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(
                f"The transformer of column '{self.column}' is not fitted; call fit() first."
            )


def state_attribute(key: str) -> str:
    """The fitted attribute that holds a bundle's state ``key`` (``"min"`` -> ``min_``).

    >>> state_attribute("levels")
    'levels_'
    """
    return f"{key}_"


def decode_choice(block: np.ndarray) -> np.ndarray:
    """Level index of a one-hot/probability block (argmax), or of a label span (rounded).

    Sampled tables arrive column-major (a transposed view), where ``argmax(axis=1)`` strides
    across memory; there a running maximum over the (contiguous) columns is several times faster
    and gives the same index (the first maximum).
    """
    n, width = block.shape
    if width == 1:
        return np.rint(block[:, 0]).astype(np.int64)
    if n < 4096 or block.strides[0] > block.strides[1] or width > 64:
        return np.argmax(block, axis=1)
    best = block[:, 0].copy()
    index = np.zeros(n, dtype=np.int64)
    better = np.empty(n, dtype=bool)
    for j in range(1, width):
        column = block[:, j]
        np.greater(column, best, out=better)
        np.putmask(index, better, j)
        np.maximum(best, column, out=best)
    return index


def one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def to_python(value: Any) -> Any:
    """A JSON-able Python scalar from a numpy/pandas scalar."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


_DTYPE = re.compile(
    r"^(u?int(8|16|32|64)|U?Int(8|16|32|64)|float(16|32|64)|Float(32|64)|bool|boolean|object|"
    r"str|string(\[(python|pyarrow)\])?|category|datetime64\[(s|ms|us|ns)(, [\w/+:-]{1,60})?\])$"
)


def dtype_name(*, null: bool = False) -> S.Check:
    """A schema check for a pandas dtype name saved in a bundle (a known, small dtype)."""

    def check(value: Any, path: str, problems: list[str]) -> None:
        if value is None and null:
            return
        if not isinstance(value, str) or not _DTYPE.match(value):
            problems.append(f"{path or 'the value'} must be a pandas dtype name; got {value!r:.60}")

    return check
