"""Columns that are generated, never learned: identifiers and personal data (PII).

They take no room in the encoded vector. Identifiers are regenerated with the same shape (integers
after the largest real one, ``PAT-000123``-style codes, UUIDs); personal data is replaced by
realistic fakes from Faker in the chosen locale. Only the shape and the missing rate are stored:
never a real value.
"""

from __future__ import annotations

import functools
import re
import string
from typing import ClassVar

import numpy as np
import pandas as pd

from clinsynth.errors import MetadataError
from clinsynth.transform._base import ColumnTransformer, SpanInfo

_PATTERN = re.compile(r"^(\D*?)(\d+)(\D*)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _learn_shape(series: pd.Series) -> dict:
    """The shape of identifier-like values: integers, prefix+digits, UUIDs or free strings."""
    values = series.dropna()
    if len(values) == 0:
        return {"shape": "int", "start": 1, "dtype": "int64"}
    if pd.api.types.is_numeric_dtype(values):
        return {"shape": "int", "start": int(values.max()) + 1, "dtype": str(series.dtype)}
    text = values.astype(str)
    if text.str.match(_UUID).all():
        return {"shape": "uuid", "upper": bool(text.iloc[0].isupper())}
    parts = text.str.extract(_PATTERN)
    if parts[1].notna().all():
        prefixes, suffixes = parts[0].unique(), parts[2].unique()
        if len(prefixes) == 1 and len(suffixes) == 1:
            digits = parts[1].str.len()
            numbers = pd.to_numeric(parts[1])
            return {
                "shape": "pattern",
                "prefix": str(prefixes[0]),
                "suffix": str(suffixes[0]),
                "width": int(digits.max()) if digits.nunique() == 1 else 0,
                "start": int(numbers.max()) + 1,
            }
    alphabet = "".join(sorted(set("".join(text.iloc[:1000]))))
    if set(alphabet) <= set(string.hexdigits.lower() + "-"):
        alphabet = "0123456789abcdef"
    elif set(alphabet) <= set(string.ascii_uppercase + string.digits):
        alphabet = string.ascii_uppercase + string.digits
    else:
        alphabet = string.ascii_letters + string.digits
    return {"shape": "string", "length": int(text.str.len().median()), "alphabet": alphabet}


def _generate(shape: dict, n: int, rng: np.random.Generator, *, sequential: bool) -> np.ndarray:
    kind = shape["shape"]
    if kind == "int":
        start = int(shape["start"])
        nums = start + (np.arange(n) if sequential else rng.permutation(n * 10)[:n])
        return nums.astype(np.int64)
    if kind == "pattern":
        start = int(shape["start"])
        nums = start + (np.arange(n) if sequential else rng.permutation(max(n * 10, 1000))[:n])
        digits = pd.Series(nums).astype(str)
        if shape["width"]:
            digits = digits.str.zfill(shape["width"])
        return (shape["prefix"] + digits + shape["suffix"]).to_numpy(dtype=object)
    if kind == "uuid":
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
        hexes = [bytes(row).hex() for row in raw]
        out = np.array(
            [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes], dtype=object
        )
        return np.char.upper(out.astype(str)).astype(object) if shape.get("upper") else out
    alphabet = np.array(list(shape["alphabet"]))
    chars = alphabet[rng.integers(0, len(alphabet), size=(n, max(shape["length"], 1)))]
    return np.array(["".join(row) for row in chars], dtype=object)


class IdTransformer(ColumnTransformer):
    """Regenerates a key column: unique values of the same shape, none equal to a real one
    (integer and numbered keys continue after the largest real value). A column that repeats
    values (a foreign key in a single table) repeats generated values at the same rate."""

    kind: ClassVar[str] = "id"
    _state = ("shape", "null_rate", "unique_ratio")

    def _fit(self, series: pd.Series) -> None:
        self.shape = _learn_shape(series)
        self.null_rate = float(series.isna().mean())
        values = series.dropna()
        self.unique_ratio = float(values.nunique() / len(values)) if len(values) else 1.0
        if self._privacy is not None:
            # DP: nothing is measured. Keep the layout (prefix, width), not the numbering after
            # the largest real key; no missing values, every generated key distinct.
            if "start" in self.shape:
                width = self.shape.get("width") or 0
                self.shape["start"] = 10 ** (width - 1) if width > 1 else 1
            self.null_rate, self.unique_ratio = 0.0, 1.0

    def _spans(self) -> list[SpanInfo]:
        return []

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        return np.zeros((len(series), 0), dtype=np.float32)

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        n = len(data)
        if self.unique_ratio >= 0.999:
            values = _generate(self.shape, n, rng, sequential=True)
        else:  # repeated keys: draw from a pool as large as the real share of distinct values
            pool = _generate(self.shape, max(1, round(n * self.unique_ratio)), rng, sequential=True)
            values = pool[rng.integers(0, len(pool), size=n)]
        out = pd.Series(values)
        if self.shape["shape"] == "int":
            out = out.astype("int64")
        return _with_nulls(out, self.null_rate, rng)


def _with_nulls(values: pd.Series, rate: float, rng: np.random.Generator) -> pd.Series:
    if rate <= 0:
        return values
    mask = rng.random(len(values)) < rate
    if values.dtype.kind in "iu":
        values = values.astype("Int64")
    return values.mask(mask)


# --------------------------------------------------------------------------- personal data
@functools.lru_cache(maxsize=8)
def _faker(locale: str):  # noqa: ANN202 - Faker is imported lazily
    from faker import Faker

    try:
        return Faker(locale)
    except AttributeError:
        raise MetadataError(
            f"Unknown Faker locale {locale!r}. Use one such as 'en_US', 'de_DE', 'fr_FR'."
        ) from None


#: How each PII sdtype is faked: the Faker method that makes one value.
_FAKER_METHODS = {
    "name": "name",
    "address": "address",
    "phone_number": "phone_number",
    "text": "sentence",
}


class PiiTransformer(ColumnTransformer):
    """Replaces personal data with fakes; stores only the sdtype and the missing rate.

    Parameters
    ----------
    column : str
    sdtype : str
        ``name``, ``email``, ``phone_number``, ``address``, ``ssn``, ``mrn``, ``text`` or the name
        of any Faker provider method (``first_name``, ``city``, ``credit_card_number``, ...).
    locale : str
        Faker locale, e.g. ``en_US`` or ``de_DE``.
    """

    kind: ClassVar[str] = "pii"
    _params = ("sdtype", "locale")
    _state = ("null_rate", "shape")

    def __init__(self, column: str, sdtype: str = "text", locale: str = "en_US") -> None:
        super().__init__(column)
        self.sdtype = sdtype
        self.locale = locale

    def _fit(self, series: pd.Series) -> None:
        self.null_rate = float(series.isna().mean())
        if self._privacy is not None:  # DP: nothing is measured, the fakes are never missing
            self.null_rate = 0.0
        self.shape = None
        if self.sdtype == "mrn":
            shape = _learn_shape(series)
            # Keep only the layout of record numbers; numbering is random, not after the max.
            if shape["shape"] in ("int", "pattern"):
                width = len(str(shape["start"])) if shape["shape"] == "int" else shape["width"]
                shape = {
                    "shape": "pattern",
                    "prefix": shape.get("prefix", ""),
                    "suffix": shape.get("suffix", ""),
                    "width": width or 8,
                    "start": 10 ** ((width or 8) - 1),
                }
            self.shape = shape
        elif self.sdtype not in ("email", "ssn") and self._method() is None:
            raise MetadataError(
                f"Column '{self.column}' has PII sdtype '{self.sdtype}', which clinsynth cannot "
                "fake. Use one of name, email, phone_number, address, ssn, mrn, text, or a Faker "
                "provider name (e.g. first_name, city)."
            )

    def _method(self) -> str | None:
        method = _FAKER_METHODS.get(self.sdtype, self.sdtype)
        return method if hasattr(_faker(self.locale), method) else None

    def _spans(self) -> list[SpanInfo]:
        return []

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        return np.zeros((len(series), 0), dtype=np.float32)

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        n = len(data)
        values = self._fake(n, rng)
        return _with_nulls(pd.Series(values, dtype=object), self.null_rate, rng)

    def _fake(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.sdtype == "ssn":  # area 001-665/667-899, group 01-99, serial 0001-9999
            area = rng.integers(1, 899, size=n)
            area = np.where(area == 666, 667, area)
            group, serial = rng.integers(1, 100, size=n), rng.integers(1, 10000, size=n)
            return (
                pd.Series(area).astype(str).str.zfill(3)
                + "-"
                + pd.Series(group).astype(str).str.zfill(2)
                + "-"
                + pd.Series(serial).astype(str).str.zfill(4)
            ).to_numpy(dtype=object)
        if self.sdtype == "mrn":
            return _generate(self.shape, n, rng, sequential=False)
        fake = _faker(self.locale)
        fake.seed_instance(int(rng.integers(0, 2**31 - 1)))
        pool_size = int(min(n, 2000))
        if self.sdtype == "email":
            users = np.array([fake.user_name() for _ in range(pool_size)], dtype=object)
            domains = np.array([fake.free_email_domain() for _ in range(min(pool_size, 50))])
            number = pd.Series(rng.integers(1, 10_000, size=n)).astype(str).to_numpy(dtype=object)
            return (
                users[rng.integers(0, pool_size, size=n)]
                + number
                + "@"
                + domains[rng.integers(0, len(domains), size=n)].astype(object)
            )
        method = getattr(fake, self._method() or "sentence")
        pool = np.array([str(method()).replace("\n", ", ") for _ in range(pool_size)], dtype=object)
        return pool[rng.integers(0, pool_size, size=n)]
