"""The base of the clinical rules that every synthetic row must satisfy, what the rules share
(values as numbers, dates back from seconds) and the custom predicate rule.

Each rule can check rows (``is_valid``). Most also *reparametrize* the table so the model learns a
quantity for which the rule holds by construction (the model learns ``systolic - diastolic`` >= 0
instead of systolic); the rest are enforced by rejection. A rule is reparametrized only when its
columns are not already reparametrized by an earlier rule and the real data's missing values allow
it; otherwise it falls back to rejection, so every output row satisfies every rule either way.

A rule reads its ``inputs`` and rewrites its ``outputs`` (``columns`` is both). Rules that only
mask, force or snap values of a column (``preserving``: the column keeps values of its own kind)
may share the column with one other rule that rewrites it; ``synthesizers._rules`` orders the
rules so that a rule's inputs are final before it is reversed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth.constraints._table import TableLike
from clinsynth.errors import MetadataError

_PREFIX = "__rule"


def _numeric(series: pd.Series, spec: dict) -> tuple[np.ndarray, bool]:
    """Values as float64 (dates as seconds since 1970) and whether they are dates."""
    if spec.get("sdtype") == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmt = spec.get("datetime_format")
            parsed = (
                series
                if pd.api.types.is_datetime64_any_dtype(series)
                # In UTC: text with several UTC offsets (winter and summer time) parses too.
                else pd.to_datetime(series, format=fmt, errors="coerce", utc=True)
                if fmt
                else pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
            )
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = parsed.to_numpy(dtype="datetime64[ns]").astype("int64").astype(np.float64)
        ns[parsed.isna().to_numpy()] = np.nan
        return ns / 1e9, True
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan), False


def _from_seconds(seconds: np.ndarray, like: pd.Series, spec: dict) -> pd.Series:
    missing = np.isnan(seconds)
    ns = np.where(missing, 0, np.round(seconds * 1e9)).astype("int64")
    values = pd.Series(pd.to_datetime(ns, unit="ns"), index=like.index).mask(missing)
    if pd.api.types.is_datetime64_any_dtype(like):
        tz = getattr(like.dt, "tz", None)
        return values.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else values
    fmt = spec.get("datetime_format") or "%Y-%m-%d %H:%M:%S"
    return values.dt.strftime(fmt).astype(object).where(~missing, None)


class Constraint:
    """Base of the rules. Subclasses define ``_params``, ``is_valid`` and, if they can, the
    reparametrization hooks ``_fit``, ``_transform``, ``_reverse`` and ``_transform_metadata``;
    rules that read the real data for their checks (a mapping, allowed combinations) learn it in
    ``_learn``.

    Attributes
    ----------
    discovered : bool
        Found by :func:`~clinsynth.constraints.discover_rules` on the real table (not declared).
    support : dict or None
        ``{"rows": checked, "informative": rows where the rule could have failed}`` of a
        discovered rule.
    """

    type: ClassVar[str] = ""
    #: Whether the rule knows a reparametrization at all.
    can_reparametrize: ClassVar[bool] = False
    #: The reparametrization keeps its outputs holding values of their own kind (it masks,
    #: forces or snaps them), so one later rule may still rewrite the same column.
    preserving: ClassVar[bool] = False
    #: Patients a value must have to be stored in a rule's state (the synthesizer sets it from
    #: its ``rare_category_threshold``; None keeps every value).
    min_patients: int | None = 5

    def __init__(self) -> None:
        self.reparametrized = False
        self.state_: dict[str, Any] = {}
        self.discovered = False
        self.support: dict[str, int] | None = None

    # -------------------------------------------------------------- description
    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    @property
    def outputs(self) -> list[str]:
        """The columns the reparametrization rewrites (and its reverse rebuilds)."""
        return self.columns

    @property
    def inputs(self) -> list[str]:
        """The columns the rule only reads."""
        return [c for c in self.columns if c not in self.outputs]

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as in metadata ``constraints``)."""
        out = {"type": self.type, **self._params()}
        if self.discovered:
            out["discovered"] = True
        if self.support is not None:
            out["support"] = dict(self.support)
        return out

    def describe(self) -> str:
        return f"{type(self).__name__}({', '.join(self.columns)})"

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.type, json.dumps(self._params(), sort_keys=True, default=str)))

    # -------------------------------------------------------------- checks
    def check_metadata(self, table: TableLike) -> list[str]:
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            return [f"rule {self.describe()} names columns {missing} that are not in the table."]
        return []

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------- reparametrization
    def learn(self, data: pd.DataFrame, table: TableLike) -> None:
        """Learn what the checks need from the real rows (before any reparametrization)."""
        self.reparametrized = False
        self.state_ = self._learn(data, table)

    def fit(self, data: pd.DataFrame, table: TableLike, touched: set[str]) -> None:
        """Learn the state and decide whether to reparametrize (columns untouched, data allow
        it); ``data`` is the real table as the rules before this one left it."""
        self.learn(data, table)
        self.decide(data, table, touched)

    def decide(self, data: pd.DataFrame, table: TableLike, touched: set[str]) -> None:
        """Reparametrize when no column was rewritten by an earlier rule and the data allow it."""
        self.reparametrized = False
        if self.can_reparametrize and not set(self.columns) & touched:
            self.reparametrized = self._fit(data, table)

    def transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return self._transform(data, table) if self.reparametrized else data

    def transform_metadata(self, table: TableLike) -> TableLike:
        return self._transform_metadata(table) if self.reparametrized else table

    def reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        """Undo the reparametrization on decoded rows (which it may change in place)."""
        return self._reverse(data, table) if self.reparametrized else data

    def _learn(self, data: pd.DataFrame, table: TableLike) -> dict[str, Any]:
        return {}

    def _fit(self, data: pd.DataFrame, table: TableLike) -> bool:
        return False

    def _transform(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data

    def _transform_metadata(self, table: TableLike) -> TableLike:
        return table

    def _reverse(self, data: pd.DataFrame, table: TableLike) -> pd.DataFrame:
        return data


# --------------------------------------------------------------------------- custom
class Custom(Constraint):
    """Any rule as a Python predicate ``fn(DataFrame) -> boolean array``; enforced by rejection.

    A predicate is code, so a saved model stores only its ``name``; pass the function again when
    loading: ``clinsynth.load(path, custom_constraints={"name": fn})``.
    """

    type = "custom"

    def __init__(
        self,
        predicate: Callable[[pd.DataFrame], Any] | None,
        columns: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.predicate = predicate
        self._columns = list(columns or [])
        self.name = name or getattr(predicate, "__name__", "custom")

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def _params(self) -> dict[str, Any]:
        return {"name": self.name, "columns": self.columns}

    def describe(self) -> str:
        on = f" on {', '.join(self._columns)}" if self._columns else ""
        return f"custom rule '{self.name}'{on}"

    def is_valid(self, data: pd.DataFrame, table: TableLike) -> np.ndarray:
        if self.predicate is None:
            raise MetadataError(
                f"Custom rule '{self.name}' has no function. Pass it again: "
                f"load(path, custom_constraints={{'{self.name}': function}})."
            )
        return np.asarray(self.predicate(data), dtype=bool).reshape(len(data))
