"""The table transformer: a DataFrame to a float32 matrix and back, column by column."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clinsynth._utils import make_rng
from clinsynth.errors import DataError, NotFittedError, ParameterError
from clinsynth.io import _schema as S
from clinsynth.metadata import Metadata, TableMetadata, is_pii
from clinsynth.privacy._statistics import DPStatistics
from clinsynth.transform._base import ColumnTransformer, SpanInfo
from clinsynth.transform._categorical import CategoricalTransformer
from clinsynth.transform._datetime import DatetimeTransformer
from clinsynth.transform._generated import FormatTransformer, IdTransformer, PiiTransformer
from clinsynth.transform._numerical import NumericalTransformer

logger = logging.getLogger(__name__)

_Factory = Callable[[str, dict, dict], ColumnTransformer]

#: sdtype -> transformer factory ``(column, column_spec, options)``. The one place that maps a
#: column kind to its transformer; PII sdtypes not listed here fall back to PiiTransformer.
TRANSFORMERS: dict[str, _Factory] = {
    "numerical": lambda col, spec, o: NumericalTransformer(
        col,
        method=o["numerical"],
        max_modes=o["max_modes"],
        enforce_min_max=o["enforce_min_max"],
        mode_selection=o["mode_selection"],
        integer=True if spec.get("computer_representation", "Float") != "Float" else None,
        min_patients=spec.get("min_patients"),
    ),
    "datetime": lambda col, spec, o: DatetimeTransformer(
        col,
        method=o["numerical"],
        max_modes=o["max_modes"],
        enforce_min_max=o["enforce_min_max"],
        mode_selection=o["mode_selection"],
        datetime_format=spec.get("datetime_format"),
        min_patients=spec.get("min_patients"),
    ),
    "categorical": lambda col, spec, o: CategoricalTransformer(
        col,
        method=o["categorical"],
        rare_threshold=spec.get("rare_category_threshold", o["rare_category_threshold"]),
    ),
    "boolean": lambda col, spec, o: CategoricalTransformer(col, method=o["categorical"]),
    "ordinal": lambda col, spec, o: CategoricalTransformer(
        col, method=o["categorical"], order=spec.get("order")
    ),
    "unknown": lambda col, spec, o: CategoricalTransformer(
        col,
        method=o["categorical"],
        rare_threshold=spec.get("rare_category_threshold", o["rare_category_threshold"]),
    ),
    "id": lambda col, spec, o: IdTransformer(col),
}

_KINDS: dict[str, type[ColumnTransformer]] = {
    cls.kind: cls
    for cls in (
        NumericalTransformer,
        DatetimeTransformer,
        CategoricalTransformer,
        IdTransformer,
        PiiTransformer,
        FormatTransformer,
    )
}


class TableTransformer:
    """Reversible encoding of a whole table.

    Parameters
    ----------
    metadata : Metadata or TableMetadata
    table_name : str, optional
        Which table of a multi-table ``Metadata``.
    numerical : {"mode", "quantile", "identity"}
        Encoding of numbers and dates (see :class:`NumericalTransformer`).
    categorical : {"onehot", "label"}
        Encoding of categorical, ordinal and boolean columns.
    max_modes : int
        Most mixture components per numerical column (``mode`` only).
    mode_selection : {"bic", "all"}
        How many of them each column gets: as many as BIC asks for, or ``max_modes``
        (see :class:`NumericalTransformer`).
    enforce_min_max : bool
        Keep decoded numbers inside the observed range.
    locale : str
        Faker locale for the fake personal data.
    rare_category_threshold : int, optional
        Categorical levels held by fewer patients (distinct primary-key values, or rows) are
        merged into an "other" level and not stored; None keeps every level. (A numerical or
        datetime column whose metadata has ``"min_patients": k`` saves no extreme value of
        fewer than k patients: :class:`NumericalTransformer`.)
    privacy : DPStatistics, optional
        Learn every column statistic from public bounds or noisy histograms, recording the
        cost in ``privacy.accountant`` (:mod:`clinsynth.privacy`). Not saved.

    Examples
    --------
    >>> import pandas as pd
    >>> from clinsynth import Metadata
    >>> from clinsynth.transform import TableTransformer
    >>> df = pd.DataFrame({"age": [31.5, 45.0, None, 60.25] * 5, "sex": ["F", "M", "F", None] * 5})
    >>> md = Metadata.detect_from_dataframe(df)
    >>> md.update_column("age", sdtype="numerical")
    >>> tt = TableTransformer(md).fit(df)
    >>> back = tt.inverse_transform(tt.transform(df))
    >>> back.equals(df)
    True
    """

    def __init__(
        self,
        metadata: Metadata | TableMetadata,
        *,
        table_name: str | None = None,
        numerical: str = "mode",
        categorical: str = "onehot",
        max_modes: int = 10,
        mode_selection: str = "bic",
        enforce_min_max: bool = True,
        locale: str = "en_US",
        rare_category_threshold: int | None = None,
        privacy: DPStatistics | None = None,
    ) -> None:
        self.metadata = metadata
        self.table_name = table_name
        self.numerical = numerical
        self.categorical = categorical
        self.max_modes = max_modes
        self.mode_selection = mode_selection
        self.enforce_min_max = enforce_min_max
        self.locale = locale
        self.rare_category_threshold = rare_category_threshold
        self.privacy = privacy
        self.transformers_: dict[str, ColumnTransformer] | None = None

    # ------------------------------------------------------------------ helpers
    def _table(self) -> TableMetadata:
        if isinstance(self.metadata, TableMetadata):
            return self.metadata
        return self.metadata.get_table(self.table_name)

    def _options(self) -> dict[str, Any]:
        return {
            "numerical": self.numerical,
            "categorical": self.categorical,
            "max_modes": self.max_modes,
            "mode_selection": self.mode_selection,
            "enforce_min_max": self.enforce_min_max,
            "rare_category_threshold": self.rare_category_threshold,
        }

    def _make(self, column: str, spec: dict) -> ColumnTransformer:
        if is_pii(spec):
            return PiiTransformer(column, sdtype=spec["sdtype"], locale=self.locale)
        factory = TRANSFORMERS.get(spec["sdtype"])
        if factory is None:
            raise ParameterError(f"No transformer for sdtype {spec['sdtype']!r} of '{column}'.")
        return factory(column, spec, self._options())

    def _check_fitted(self) -> dict[str, ColumnTransformer]:
        if self.transformers_ is None:
            raise NotFittedError("The TableTransformer is not fitted; call fit(data) first.")
        return self.transformers_

    def _check_columns(self, data: pd.DataFrame) -> None:
        expected = list(self._check_fitted())
        got = [str(c) for c in data.columns]
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        if missing or extra:
            raise DataError(
                "The data's columns differ from those the transformer was fitted on: "
                f"missing {missing}, unexpected {extra}. Pass the same columns as at fit time."
            )

    # ------------------------------------------------------------------ contract
    def fit(self, data: pd.DataFrame) -> TableTransformer:
        """Learn each column's statistics. The column list is fixed from here on."""
        table = self._table()
        missing = [c for c in table.columns if c not in data.columns]
        if missing:
            raise DataError(
                f"Columns {missing} are in the metadata but not in the data. Add them to the "
                "data or remove them from the metadata."
            )
        key = table.primary_key
        entities = data[key] if key is not None and key in data.columns else None
        budgets: dict[str, Any] = {}
        if self.privacy is not None:  # generated columns learn nothing, so they get no budget
            generated = {
                c for c, spec in table.columns.items() if is_pii(spec) or spec["sdtype"] == "id"
            }
            budgets = self.privacy.split([c for c in table.columns if c not in generated])
            budgets.update(dict.fromkeys(generated, self.privacy.generated))
        transformers = {}
        for column, spec in table.columns.items():
            transformer = self._make(column, spec).fit(
                data[column], entities=entities, privacy=budgets.get(column)
            )
            if getattr(transformer, "all_rare_", False):
                transformer = self._generated_instead(column, data[column], entities, transformer)
            transformers[column] = transformer
        self.transformers_ = transformers
        return self

    def _generated_instead(
        self, column: str, series: pd.Series, entities: pd.Series | None, categorical: Any
    ) -> ColumnTransformer:
        """A categorical column whose every level is rare would come out as the one made-up
        level "Other": generate it in the formats of its values instead, and say so."""
        generated = FormatTransformer(column, min_patients=categorical.rare_threshold).fit(
            series, entities=entities
        )
        example = f" (e.g. {generated.formats_[0]!r})" if generated.formats_ else ""
        logger.warning(
            "Column '%s': each of its %d distinct values is held by fewer than %d patients, so "
            "it cannot be learned as a category (it would come out as one made-up level); its "
            "values are generated in the formats of the real ones instead%s. Declare it as id, "
            "text or a personal-data type (e.g. phone_number) in the metadata to choose how it "
            "is made.",
            column,
            int(series.nunique()),
            categorical.rare_threshold,
            example[:80],
        )
        return generated

    def transform(
        self,
        data: pd.DataFrame,
        *,
        random_state: int | np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> np.ndarray:
        """Encode ``data`` as a matrix (n rows x ``output_dim``), float32 by default.

        ``random_state`` makes the mixture component of each number a draw from its posterior
        (as CTGAN trains) instead of the most likely component. float32 keeps about 7
        significant digits of each scaled value (relative to its mixture component's spread);
        pass ``dtype=np.float64`` for a bit-exact round trip of long-decimal or second-resolution
        columns.
        """
        self._check_columns(data)
        rng = make_rng(random_state) if random_state is not None else None
        blocks = [t.transform(data[c], rng, dtype) for c, t in self._check_fitted().items()]
        if not blocks:
            return np.zeros((len(data), 0), dtype=dtype)
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=dtype)

    def inverse_transform(
        self, data: np.ndarray, *, random_state: int | np.random.Generator | None = None
    ) -> pd.DataFrame:
        """Decode a matrix back to a DataFrame with the original columns and dtypes.

        ``random_state`` drives the generated columns (ids, fake personal data, their nulls).
        """
        transformers = self._check_fitted()
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != self.output_dim:
            raise DataError(f"Expected an array of shape (n, {self.output_dim}); got {data.shape}.")
        rng = make_rng(random_state)
        columns = {}
        start = 0
        for column, t in transformers.items():
            width = t.output_dim
            columns[column] = t.inverse_transform(data[:, start : start + width], rng)
            start += width
        self._link_own_keys(columns, rng)
        # copy=False: no block consolidation (it would copy every column: seconds at 1M rows).
        return pd.DataFrame(columns, copy=False)

    def _link_own_keys(self, columns: dict[str, Any], rng: np.random.Generator) -> None:
        """Columns that reference the table's own key take synthetic key values."""
        key = self._table().primary_key
        if key is None or key not in columns:
            return
        for column, t in self._check_fitted().items():
            if getattr(t, "references_key_", False) and column in columns:
                columns[column] = t.pick_keys(pd.Series(columns[key]), rng).rename(column)

    def regenerate_ids(self, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Fresh identifiers in ``df`` (rows assembled from several batches), keys into the
        table's own rows drawn from the new primary key."""
        for column, t in self._check_fitted().items():
            if isinstance(t, IdTransformer) and column in df.columns and not t.references_key_:
                df[column] = t.inverse_transform(np.zeros((len(df), 0)), rng).to_numpy()
        own = {c: df[c] for c in df.columns}
        self._link_own_keys(own, rng)
        for column, t in self._check_fitted().items():
            if getattr(t, "references_key_", False) and column in df.columns:
                df[column] = own[column].to_numpy()
        return df

    def shift_ids(self, df: pd.DataFrame, offset: int) -> pd.DataFrame:
        """``df`` (rows of a block that starts ``offset`` rows into a streamed run) with its
        numbered identifiers moved ``offset`` on, so that they stay unique across blocks; keys
        into the table's own rows move with the primary key. Changes ``df`` in place."""
        transformers = self._check_fitted()
        key = self._table().primary_key
        for column, t in transformers.items():
            if not isinstance(t, IdTransformer) or column not in df.columns:
                continue
            source = transformers.get(key) if t.references_key_ else t
            if isinstance(source, IdTransformer):
                df[column] = source.shift(df[column], offset)
        return df

    def fit_transform(self, data: pd.DataFrame) -> np.ndarray:
        return self.fit(data).transform(data)

    # ------------------------------------------------------------------ layout
    @property
    def output_info(self) -> list[SpanInfo]:
        """The spans of the encoded vector, in order, each with its activation."""
        return [s for t in self._check_fitted().values() for s in t.output_info]

    @property
    def output_dim(self) -> int:
        return sum(s.dim for s in self.output_info)

    @property
    def column_names(self) -> list[str]:
        return list(self._check_fitted())

    def column_slices(self) -> dict[str, slice]:
        """Where each column lies in the encoded vector (empty slice for generated columns)."""
        out, start = {}, 0
        for column, t in self._check_fitted().items():
            out[column] = slice(start, start + t.output_dim)
            start += t.output_dim
        return out

    def get_transformer(self, column: str) -> ColumnTransformer:
        transformers = self._check_fitted()
        if column not in transformers:
            raise DataError(f"Column '{column}' is not a column of this table.")
        return transformers[column]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-able fitted state: column statistics only, no rows."""
        return {
            "options": {**self._options(), "locale": self.locale},
            "columns": [t.to_dict() for t in self._check_fitted().values()],
        }

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        metadata: Metadata | TableMetadata,
        table_name: str | None = None,
        where: str = "transformer.json",
    ) -> TableTransformer:
        """Rebuild a fitted transformer from :meth:`to_dict`'s output, every field checked
        against its schema first (a bundle is untrusted input: a tampered field is a
        :class:`~clinsynth.errors.BundleError` naming it)."""
        S.check_json(data, _DOCUMENT, where)
        obj = cls(metadata, table_name=table_name, **data["options"])
        transformers: dict[str, ColumnTransformer] = {}
        for i, d in enumerate(data["columns"]):
            kind, column = d.get("kind"), d.get("column")
            if kind not in _KINDS or not isinstance(column, str) or column in transformers:
                S.raise_problems(
                    [f"columns[{i}] must have a known kind and a column name used once"], where
                )
            transformers[column] = _KINDS[kind].from_dict(d, where)
        obj.transformers_ = transformers
        return obj


_DOCUMENT = S.mapping(
    {
        "options": S.mapping(
            {
                "numerical": S.text(20, choices=("mode", "quantile", "identity")),
                "categorical": S.text(20, choices=("onehot", "label")),
                "max_modes": S.integer(1, NumericalTransformer.MAX_MODES),
                "mode_selection": S.text(10, choices=("bic", "all")),
                "enforce_min_max": S.boolean(),
                "rare_category_threshold": S.integer(1, 10**9, null=True),
                "locale": S.text(20),
            }
        ),
        "columns": S.array(S.mapping(extra=True, max_len=10), max_len=100_000),
    },
    required=("options", "columns"),
)
