"""Rules of a table's logic that :func:`~clinsynth.constraints.discover_rules` finds in real data.

* :class:`FunctionalDependency` — one column's value fixes another's (``dzgroup`` -> ``dzclass``):
  the dependent column leaves the model and is looked up after sampling.
* :class:`SkipPattern` — a column is filled exactly when a condition holds (``cd496`` present
  exactly when ``r == 1``): the model generates the column, a gate empties it where the
  condition fails and fills the few gaps the model left where it holds.
* :class:`Implication` — ``hospdead = 1`` implies ``death = 1``: forced after sampling.

Grids and point masses are in :mod:`._values`.

Values in these rules are compared as categorical levels are (2, 2.0 and "2" are one level;
None is a missing value). A rule's state never stores a value held by fewer patients than the
synthesizer's ``rare_category_threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint
from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError

NULL = "\x00null"
#: Column kinds a logic rule can name (identifiers and personal data are generated, not learned).
_LEARNED = ("numerical", "datetime", "categorical", "ordinal", "boolean")


def plain(value: Any) -> Any:
    """A level as a plain JSON value: numpy scalars unwrapped, whole floats as ints, NaN as
    None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, str):
        return value
    return str(value)


def key(value: Any) -> str:
    """Compare levels across types, as the categorical transformer does."""
    value = plain(value)
    if value is None:
        return NULL
    if isinstance(value, bool):
        return str(value)
    return str(value)


def keys_of(series: pd.Series) -> np.ndarray:
    """The level key of every row (missing values are ``NULL``); distinct values hashed once."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([key(u) for u in uniques] + [NULL], dtype=object)
    return table[codes]


def cast_like(values: np.ndarray, dtype: str) -> pd.Series | np.ndarray:
    """Plain values (None for missing) back to the real column's dtype where possible."""
    series = pd.Series(values, dtype=object)
    try:
        if dtype.startswith(("int", "uint", "Int", "UInt")):
            numbers = pd.to_numeric(series, errors="coerce")
            return numbers.astype(dtype if not numbers.isna().any() else "Int64")
        if dtype.startswith("float"):
            return pd.to_numeric(series, errors="coerce").astype(dtype)
        if dtype in ("bool", "boolean"):
            return series.astype("boolean" if series.isna().any() else "bool")
    except (TypeError, ValueError):
        pass
    return series


def _check_learned(rule: Constraint, table: TableLike) -> list[str]:
    problems = Constraint.check_metadata(rule, table)
    if problems:
        return problems
    for col in rule.columns:
        sdtype = table.columns[col]["sdtype"]
        if sdtype not in _LEARNED:
            problems.append(
                f"rule {rule.describe()}: '{col}' is {sdtype}; such columns are generated, not "
                "learned, so no rule can hold on them."
            )
    return problems


def _values_text(values: list) -> str:
    shown = ["missing" if v is None else repr(v) for v in values]
    return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


# --------------------------------------------------------------------------- functional dependency
class FunctionalDependency(Constraint):
    """``determinant`` fixes ``dependent``: every row with the same determinant value has the
    same dependent value (a diagnosis fixes its class, a code its chapter).

    Reparametrized: ``dependent`` leaves the model and is looked up from the determinant after
    sampling. The lookup stores only determinant values held by at least ``min_patients``
    rows; the model merges rarer ones into an "other" level, whose dependent value is the one
    most common among the rare determinant values' rows (held by enough rows itself), or else
    the dependent's most common value.

    >>> FunctionalDependency("dzgroup", "dzclass").describe()
    'dzgroup determines dzclass'
    """

    type = "functional_dependency"
    can_reparametrize = True

    def __init__(self, determinant: str, dependent: str) -> None:
        super().__init__()
        if determinant == dependent:
            raise MetadataError(f"A functional dependency needs two columns; got '{dependent}'.")
        self.determinant, self.dependent = determinant, dependent

    @property
    def columns(self) -> list[str]:
        return [self.determinant, self.dependent]

    @property
    def outputs(self) -> list[str]:
        return [self.dependent]

    def _params(self) -> dict[str, Any]:
        return {"determinant": self.determinant, "dependent": self.dependent}

    def describe(self) -> str:
        return f"{self.determinant} determines {self.dependent}"

    def check_metadata(self, table: TableLike) -> list[str]:
        return _check_learned(self, table)

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        det = keys_of(data[self.determinant])
        dep = data[self.dependent]
        frame = pd.DataFrame({"d": det, "v": keys_of(dep)})
        firsts = ~frame.duplicated()
        pairs = frame[firsts]
        values = {k: plain(v) for k, v in zip(pairs["v"], dep[firsts.to_numpy()], strict=True)}
        counts = frame["d"].value_counts()
        by_det = pairs.drop_duplicates("d", keep=False).set_index("d")["v"]
        floor = self.min_patients or 1
        kept = counts.index[(counts >= floor).to_numpy()]
        mapping = {d: values[by_det[d]] for d in kept if d in by_det.index}
        dep_counts = frame["v"].value_counts()
        rare_rows = frame[~frame["d"].isin(kept)]["v"].value_counts()
        fallback_key = next(
            (k for k in rare_rows.index if dep_counts[k] >= floor), dep_counts.index[0]
        )
        return {
            "mapping": mapping,
            "fallback": values[fallback_key],
            "dtype": str(dep.dtype),
        }

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        det = keys_of(data[self.determinant])
        dep = keys_of(data[self.dependent])
        if "mapping" not in self.state_:
            # Before fitting: a row is wrong when its group's most common dependent differs.
            frame = pd.DataFrame({"d": det, "v": dep})
            modes = frame.value_counts(sort=True).reset_index().drop_duplicates("d")
            mode = modes.set_index("d")["v"]
            return (frame["d"].map(mode).to_numpy() == dep).astype(bool)
        mapping = {k: key(v) for k, v in self.state_["mapping"].items()}
        expected = pd.Series(det).map(mapping).to_numpy()
        return pd.isna(expected) | (expected == dep)

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return True

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data.drop(columns=[self.dependent])

    def _transform_metadata(self, table: TableLike) -> TableLike:
        out = table.copy()
        del out.columns[self.dependent]
        return out

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        det = keys_of(data[self.determinant])
        uniques, inverse = np.unique(det.astype(str), return_inverse=True)
        mapping, fallback = self.state_["mapping"], self.state_["fallback"]
        looked = np.empty(len(uniques), dtype=object)
        looked[:] = [mapping.get(u, fallback) for u in uniques]
        out = data  # the freshly decoded rows: changed in place
        out[self.dependent] = cast_like(looked[inverse], self.state_["dtype"]).to_numpy()
        return out

    def lookup(self) -> dict[str, Any]:
        """Determinant key -> dependent value, as learned (empty before fitting)."""
        return dict(self.state_.get("mapping", {}))


# --------------------------------------------------------------------------- conditions on a column
class _Condition:
    """``column`` takes one of ``values`` (None: is missing), or any value but ``not_values``,
    or (neither given) is present."""

    def __init__(
        self, column: str, values: list | None = None, not_values: list | None = None
    ) -> None:
        if values is not None and not_values is not None:
            raise MetadataError(f"A condition on '{column}' takes 'values' or 'not_values'.")
        self.column = column
        self.values = None if values is None else [plain(v) for v in values]
        self.not_values = None if not_values is None else [plain(v) for v in not_values]

    def holds(self, data: pd.DataFrame) -> np.ndarray:
        series = data[self.column]
        if self.values is not None:
            return _is_in(series, self.values)
        if self.not_values is not None:
            return ~_is_in(series, self.not_values)
        return series.notna().to_numpy()

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.column} is {_values_text(self.values)}"
        if self.not_values is not None:
            return f"{self.column} is not {_values_text(self.not_values)}"
        return f"{self.column} is present"


def _is_in(series: pd.Series, values: list) -> np.ndarray:
    """Rows whose value is one of ``values`` (None: missing), compared as levels are; numbers
    against a number column directly (no per-value work for a column of many values)."""
    missing = series.isna().to_numpy()
    wanted = [v for v in values if v is not None]
    out = missing.copy() if None in values else np.zeros(len(series), dtype=bool)
    if not wanted:
        return out
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in wanted)
    if numbers and pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return out | np.isin(x, np.asarray(wanted, dtype=np.float64))
    return out | (np.isin(keys_of(series), [key(v) for v in wanted]) & ~missing)


# --------------------------------------------------------------------------- skip pattern
class SkipPattern(Constraint):
    """``column`` is filled exactly when ``present_when`` takes one of ``values`` (or, without
    values, is itself present): ``cd496`` is measured exactly when ``r == 1``; a second lab is
    missing exactly when the first is. With ``exact=False`` only one way: ``column`` is empty
    whenever the condition fails (pregnancies are empty for men).

    Reparametrized as a gate: the model generates ``column`` as usual (its values are learned
    on the rows where it is present), then the gate empties it where the condition fails and,
    when exact, fills the few rows the model left empty where the condition holds with values
    the model generated for other rows of the same batch.

    >>> SkipPattern("cd496", present_when="r", values=[1]).describe()
    'cd496 is present exactly when r is 1'
    """

    type = "skip_pattern"
    can_reparametrize = True
    preserving = True

    def __init__(
        self,
        column: str,
        present_when: str,
        values: list | None = None,
        not_values: list | None = None,
        exact: bool = True,
    ) -> None:
        super().__init__()
        if column == present_when:
            raise MetadataError(f"A skip pattern needs two columns; got '{column}' twice.")
        self.column, self.exact = column, bool(exact)
        self.condition = _Condition(present_when, values, not_values)

    @property
    def columns(self) -> list[str]:
        return [self.column, self.condition.column]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "present_when": self.condition.column}
        if self.condition.values is not None:
            out["values"] = list(self.condition.values)
        if self.condition.not_values is not None:
            out["not_values"] = list(self.condition.not_values)
        if not self.exact:
            out["exact"] = False
        return out

    def describe(self) -> str:
        how = "exactly when" if self.exact else "only when"
        return f"{self.column} is present {how} {self.condition.describe()}"

    def check_metadata(self, table: TableLike) -> list[str]:
        return _check_learned(self, table)

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        present = data[self.column].notna().to_numpy()
        cond = self.condition.holds(data)
        return (present == cond) if self.exact else (cond | ~present)

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return True

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        cond = self.condition.holds(data)
        column = data[self.column]
        if self.exact:
            # Donors: values the model made for other rows (rows are independent draws).
            donors = column.where(cond).ffill().bfill()
            column = column.where(column.notna(), donors)
        out = data  # the freshly decoded rows: changed in place
        out[self.column] = column.where(cond)
        return out


# --------------------------------------------------------------------------- implication
class Implication(Constraint):
    """When ``when_column`` takes one of ``when_values``, ``then_column`` takes one of
    ``then_values`` (None: is missing): ``hospdead = 1`` implies ``death = 1``.

    Reparametrized when the consequence is one value: it is forced on the rows where the premise
    holds after sampling (the model already learned it; the force repairs the rare slip).

    >>> Implication("hospdead", [1], "death", [1]).describe()
    'hospdead = 1 implies death = 1'
    """

    type = "implication"
    can_reparametrize = True
    preserving = True

    def __init__(
        self, when_column: str, when_values: list, then_column: str, then_values: list
    ) -> None:
        super().__init__()
        if when_column == then_column:
            raise MetadataError(f"An implication needs two columns; got '{when_column}' twice.")
        if not when_values or not then_values:
            raise MetadataError(
                f"The implication from '{when_column}' to '{then_column}' needs when_values "
                "and then_values (lists of values; null for missing)."
            )
        self.when = _Condition(when_column, list(when_values))
        self.then = _Condition(then_column, list(then_values))

    @property
    def columns(self) -> list[str]:
        return [self.when.column, self.then.column]

    @property
    def outputs(self) -> list[str]:
        return [self.then.column]

    def _params(self) -> dict[str, Any]:
        return {
            "when_column": self.when.column,
            "when_values": list(self.when.values or []),
            "then_column": self.then.column,
            "then_values": list(self.then.values or []),
        }

    def describe(self) -> str:
        def side(cond: _Condition) -> str:
            values = cond.values or []
            if values == [None]:
                return f"{cond.column} is missing"
            if len(values) == 1:
                return f"{cond.column} = {values[0]}"
            return f"{cond.column} in {values}"

        return f"{side(self.when)} implies {side(self.then)}"

    def check_metadata(self, table: TableLike) -> list[str]:
        return _check_learned(self, table)

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        return ~self.when.holds(data) | self.then.holds(data)

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        return {"dtype": str(data[self.then.column].dtype)}

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return len(self.then.values or []) == 1

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        premise = self.when.holds(data)
        if not premise.any():
            return data
        value = (self.then.values or [None])[0]
        out = data  # the freshly decoded rows: changed in place
        column = out[self.then.column].astype(object)
        column[premise] = value
        out[self.then.column] = cast_like(column.to_numpy(), self.state_["dtype"]).to_numpy()
        return out


LOGIC_RULES: tuple[type[Constraint], ...] = (FunctionalDependency, SkipPattern, Implication)
