"""Datetime columns: seconds since 1970 through the numerical transformer, and back.

Dates are read at any resolution pandas or Python can hold: values pandas cannot keep in
nanoseconds (before 1677 or after 2262, such as a far-future placeholder date) are parsed one by
one and come back as datetimes at second resolution (``datetime64[s]``), never as missing or as
a category. Text with mixed UTC offsets (``+01:00`` in winter, ``+02:00`` in summer) is read in
UTC and written back in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth._utils import text_dtype
from clinsynth.errors import DataError
from clinsynth.io import _schema as S
from clinsynth.transform._numerical import NumericalTransformer

#: The seconds pandas can hold in nanoseconds (1677-09-21 to 2262-04-11).
NS_SECONDS = (pd.Timestamp.min.value / 1e9 + 1, pd.Timestamp.max.value / 1e9 - 1)
#: Python's datetimes: years 1 to 9999.
_EPOCH = dt.datetime(1970, 1, 1)
_OFFSET = re.compile(r"(?:[+-]\d\d:?\d\d|Z)$")


def has_offset(fmt: str | None, text: pd.Series | None = None) -> bool:
    """Whether dates carry a UTC offset (``%z`` in the format, or in the values)."""
    if fmt:
        return "%z" in fmt or fmt.endswith("Z")
    if text is None or len(text) == 0:
        return False
    return bool(text.iloc[:200].astype(str).str.contains(_OFFSET).any())


def parse_slowly(text: pd.Series, fmt: str | None) -> np.ndarray:
    """Seconds since 1970 of dates pandas cannot hold (one by one); NaN where they do not parse.

    >>> parse_slowly(pd.Series(["2300-01-02"]), "%Y-%m-%d").tolist()
    [10413878400.0]
    """
    out = np.full(len(text), np.nan)
    for i, value in enumerate(text.astype(str)):
        try:
            stamp = dt.datetime.strptime(value, fmt) if fmt else dt.datetime.fromisoformat(value)
        except ValueError:
            continue
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        out[i] = (stamp - _EPOCH).total_seconds()
    return out


def _native_seconds(values: pd.Series) -> np.ndarray:
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    array = values.to_numpy()
    seconds = (array - np.datetime64(0, "s")) / np.timedelta64(1, "s")
    return np.where(pd.isna(array), np.nan, seconds).astype(np.float64)


class DatetimeTransformer(NumericalTransformer):
    """A datetime column (native or strings with a format) as seconds since 1970, and back.

    Parameters
    ----------
    datetime_format : str or None
        strftime format of string dates; None for native datetime columns.
    """

    kind: ClassVar[str] = "datetime"
    _params = ("method", "max_modes", "enforce_min_max", "datetime_format", "mode_selection")
    _state = (*NumericalTransformer._state, "unit", "tz", "is_text", "resolution", "text_dtype")
    #: The datetime column's resolution ("ns"; pandas 3 reads dates as "us"), and the dtype of
    #: a column of dates as text ("str" from pandas 3, else "object"); bundles written before
    #: they were saved decode to "ns" and "object".
    resolution_: str = "ns"
    text_dtype_: str = "object"

    #: Rounding units tried from coarsest: a day, an hour, a minute, a second, a millisecond.
    _UNITS: ClassVar[tuple[float, ...]] = (86400.0, 3600.0, 60.0, 1.0, 1e-3)
    _DP_UNITS = _UNITS
    _param_checks: ClassVar[dict[str, Any]] = {
        **{k: v for k, v in NumericalTransformer._param_checks.items() if k != "integer"},
        "datetime_format": S.text(200, null=True),
    }
    _state_checks: ClassVar[dict[str, Any]] = {
        **NumericalTransformer._state_checks,
        "unit": S.number(1e-9, 86400.0),
        "tz": S.text(100, null=True),
        "is_text": S.boolean(),
        "resolution": S.text(2, choices=("s", "ms", "us", "ns")),
        "text_dtype": S.text(6, choices=("str", "object")),
    }

    def _state_problems(self) -> list[str]:
        problems = super()._state_problems()
        if self.tz_ is not None:
            try:
                pd.Timestamp(0, tz="UTC").tz_convert(self.tz_)
            except Exception:  # noqa: BLE001 - pytz and zoneinfo raise several types
                problems.append(f"tz {self.tz_[:60]!r} is not a time zone")
        return problems

    def __init__(
        self,
        column: str,
        method: str = "mode",
        max_modes: int = 10,
        enforce_min_max: bool = True,
        datetime_format: str | None = None,
        mode_selection: str = "bic",
        min_patients: int | None = None,
    ) -> None:
        super().__init__(
            column,
            method,
            max_modes,
            enforce_min_max,
            integer=False,
            mode_selection=mode_selection,
            min_patients=min_patients,
        )
        self.datetime_format = datetime_format

    def _values(self, series: pd.Series) -> np.ndarray:
        """Seconds since 1970 (UTC for dates with offsets); NaN where missing."""
        if pd.api.types.is_datetime64_any_dtype(series):
            return _native_seconds(series)
        text = series.astype("string")
        utc = has_offset(self.datetime_format, text.dropna())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmt = self.datetime_format or "mixed"
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=utc)
        out = _native_seconds(parsed)
        failed = np.isnan(out) & series.notna().to_numpy()
        if failed.any():  # out of pandas' range (before 1677, after 2262), or not dates
            out[failed] = parse_slowly(text[failed], self.datetime_format)
            failed = np.isnan(out) & series.notna().to_numpy()
        if failed.any():
            pos = int(np.flatnonzero(failed)[0])
            raise DataError(
                f"Column '{self.column}' is declared datetime but {int(failed.sum())} values do "
                f"not parse with format {self.datetime_format!r} (first: "
                f"{str(series.iloc[pos])[:60]!r} in row {pos + 1}). Fix the datetime_format in "
                "the metadata or clean the values."
            )
        return out

    def _fit(self, series: pd.Series) -> None:
        self.is_text_ = not pd.api.types.is_datetime64_any_dtype(series)
        tz = getattr(series.dt, "tz", None) if not self.is_text_ else None
        if self.is_text_ and has_offset(self.datetime_format, series.dropna().astype("string")):
            tz = "UTC"
        self.tz_ = str(tz) if tz is not None else None
        self.resolution_ = "ns" if self.is_text_ else _resolution(series.dtype)
        self.text_dtype_ = "str" if str(series.dtype) == "str" else "object"
        private = self._privacy is not None
        super()._fit(series)
        self.decimals_ = None
        self.is_integer_ = False
        if private:
            unit = self._dp_unit_
            self.unit_ = self._DP_UNITS[unit] if unit < len(self._DP_UNITS) else 1e-9
            return
        values = self._values(series)
        values = values[~np.isnan(values)]
        self.unit_ = 1e-9
        for unit in self._UNITS:
            if len(values) and np.all(np.abs(values / unit - np.round(values / unit)) < 1e-6):
                self.unit_ = unit
                break

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        seconds = self.decode_values(data)
        seconds = np.round(seconds / self.unit_) * self.unit_
        missing = np.isnan(seconds)
        present = seconds[~missing]
        if len(present) and (present.min() < NS_SECONDS[0] or present.max() > NS_SECONDS[1]):
            # Beyond nanoseconds: whole seconds (datetime64[s] holds any year).
            whole = np.where(missing, 0, np.round(seconds)).astype("int64")
            values = pd.Series(whole.astype("datetime64[s]")).mask(missing)
        else:
            ns = np.where(missing, 0, np.round(seconds * 1e9)).astype("int64")
            values = pd.Series(pd.to_datetime(ns, unit="ns")).mask(missing)
            if self.resolution_ != "ns":
                values = values.dt.as_unit(self.resolution_)
        if self.tz_:
            values = values.dt.tz_localize("UTC").dt.tz_convert(self.tz_)
        if self.is_text_:
            fmt = self.datetime_format or "%Y-%m-%d %H:%M:%S"
            text = values.dt.strftime(fmt)
            if self.text_dtype_ == "str":
                return text.astype(text_dtype()).where(~missing)
            return text.astype(object).where(~missing, None)
        return values


def _resolution(dtype: object) -> str:
    """``"ns"``, ``"us"``, ... of a datetime dtype (numpy's, or pandas' with a time zone)."""
    unit = getattr(dtype, "unit", None)
    if unit is None:
        unit = np.datetime_data(dtype)[0]  # type: ignore[arg-type]
    return str(unit) if unit in ("s", "ms", "us", "ns") else "ns"
