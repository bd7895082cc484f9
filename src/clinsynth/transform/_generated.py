"""Columns that are generated, never learned: identifiers and personal data (PII).

They take no room in the encoded vector. Identifiers are regenerated with the same shape (integers
after the largest real one, ``PAT-000123``-style codes, UUIDs); personal data is replaced by
realistic fakes from Faker in the chosen locale. Only the shape and the missing rate are stored:
never a real value.
"""

from __future__ import annotations

import re
import string
import threading
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth.errors import MetadataError
from clinsynth.io import _schema as S
from clinsynth.transform._base import ColumnTransformer, SpanInfo, dtype_name

_PATTERN = re.compile(r"^(\D*?)(\d+)(\D*)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


#: Numbered keys continue after the largest real one while they fit in int64 with room to spare.
_MAX_START = 2**62


def _learn_shape(series: pd.Series) -> dict:
    """The shape of identifier-like values: integers, prefix+digits, UUIDs or free strings."""
    values = series.dropna()
    if len(values) == 0:
        return {"shape": "int", "start": 1, "dtype": "int64"}
    if pd.api.types.is_numeric_dtype(values):
        start = int(values.max()) + 1
        if abs(start) < _MAX_START and abs(int(values.min())) < _MAX_START:
            return {"shape": "int", "start": start, "dtype": str(series.dtype)}
    text = values.astype(str)
    if text.str.match(_UUID).all():
        return {"shape": "uuid", "upper": bool(text.iloc[0].isupper())}
    parts = text.str.extract(_PATTERN)
    if parts[1].notna().all() and parts[1].str.len().max() < 18:
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


_SHAPE = S.mapping(
    {
        "shape": S.text(10, choices=("int", "pattern", "uuid", "string")),
        "start": S.integer(-_MAX_START, _MAX_START),
        "dtype": dtype_name(),
        "upper": S.boolean(),
        "prefix": S.text(100),
        "suffix": S.text(100),
        "width": S.integer(0, 30),
        "length": S.integer(0, 1000),
        "alphabet": S.text(1000),
    },
    required=("shape",),
)


def _shape_problems(shape: dict | None) -> list[str]:
    """What a shape read from a bundle lacks for its kind."""
    if shape is None:
        return []
    needs = {
        "int": ("start",),
        "pattern": ("start", "prefix", "suffix", "width"),
        "string": ("length", "alphabet"),
        "uuid": (),
    }[shape["shape"]]
    problems = [f"the {shape['shape']} shape needs '{key}'" for key in needs if key not in shape]
    if shape["shape"] == "string" and not shape.get("alphabet"):
        problems.append("the string shape needs a non-empty alphabet")
    return problems


class IdTransformer(ColumnTransformer):
    """Regenerates a key column: unique values of the same shape, none equal to a real one
    (integer and numbered keys continue after the largest real value). A column that repeats
    values (a foreign key in a single table) repeats generated values at the same rate."""

    kind: ClassVar[str] = "id"
    _state = ("shape", "null_rate", "unique_ratio", "references_key")
    _state_checks: ClassVar[dict[str, Any]] = {
        "shape": _SHAPE,
        "null_rate": S.number(0, 1),
        "unique_ratio": S.number(0, 1),
        "references_key": S.boolean(),
    }
    #: The column holds keys of its own table's rows (``manager_id`` -> ``staff_id``): its
    #: values are drawn from the synthetic primary key (default for older bundles: no).
    references_key_: bool = False

    def _state_problems(self) -> list[str]:
        return _shape_problems(self.shape_)

    def _fit(self, series: pd.Series) -> None:
        from clinsynth.metadata import refers_to_own_key

        self.shape_ = _learn_shape(series)
        self.null_rate_ = float(series.isna().mean())
        values = series.dropna()
        self.unique_ratio_ = float(values.nunique() / len(values)) if len(values) else 1.0
        key = self._entities
        self.references_key_ = bool(
            key is not None
            and str(key.name) != self.column
            and refers_to_own_key(self.column, series, key)
        )
        if self._privacy is not None:
            # DP: nothing is measured. Keep the layout (prefix, width), not the numbering after
            # the largest real key; no missing values, every generated key distinct.
            if "start" in self.shape_:
                width = self.shape_.get("width") or 0
                self.shape_["start"] = 10 ** (width - 1) if width > 1 else 1
            self.null_rate_, self.unique_ratio_ = 0.0, 1.0

    def _spans(self) -> list[SpanInfo]:
        return []

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        return np.zeros((len(series), 0), dtype=np.float32)

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        n = len(data)
        if self.unique_ratio_ >= 0.999:
            values = _generate(self.shape_, n, rng, sequential=True)
        else:  # repeated keys: draw from a pool as large as the real share of distinct values
            pool = _generate(
                self.shape_, max(1, round(n * self.unique_ratio_)), rng, sequential=True
            )
            values = pool[rng.integers(0, len(pool), size=n)]
        out = pd.Series(values)
        if self.shape_["shape"] == "int":
            out = out.astype("int64")
        return _with_nulls(out, self.null_rate_, rng)

    def shift(self, values: pd.Series, offset: int) -> pd.Series:
        """``values`` made by this column (or keys drawn from it) with their numbers moved
        ``offset`` on: the identifiers of a block of rows that starts ``offset`` rows into a
        streamed run (see :mod:`clinsynth.synthesizers._stream`). Random shapes (UUIDs, free
        strings) are returned as they are.

        >>> t = IdTransformer("id").fit(pd.Series(["P-01", "P-02"]))
        >>> out = t.shift(pd.Series(["P-03", None]), 10)
        >>> out[0], bool(out.isna()[1])
        ('P-13', True)
        """
        kind = self.shape_["shape"]
        if kind == "int" and offset:
            return values + int(offset)
        if kind != "pattern" or not offset:
            return values
        prefix, suffix, width = self.shape_["prefix"], self.shape_["suffix"], self.shape_["width"]
        present = values.notna()
        text = values[present].astype(str)
        numbers = pd.to_numeric(text.str.slice(len(prefix), -len(suffix) or None)) + int(offset)
        digits = numbers.astype(str)
        if width:
            digits = digits.str.zfill(width)
        out = values.astype(object).copy()
        out[present] = (prefix + digits + suffix).to_numpy(dtype=object)
        return out

    def pick_keys(self, keys: pd.Series, rng: np.random.Generator) -> pd.Series:
        """Values for a column that references its table's own key: synthetic keys from
        ``keys``, repeated at the real share of distinct values, missing at the real rate."""
        pool = keys.dropna().to_numpy()
        n = len(keys)
        if len(pool) == 0:
            return pd.Series([None] * n, dtype=object)
        size = int(min(len(pool), max(1, round(n * self.unique_ratio_))))
        chosen = pool[rng.choice(len(pool), size=size, replace=False)]
        return _with_nulls(pd.Series(chosen[rng.integers(0, size, size=n)]), self.null_rate_, rng)


def _with_nulls(values: pd.Series, rate: float, rng: np.random.Generator) -> pd.Series:
    if rate <= 0:
        return values
    mask = rng.random(len(values)) < rate
    if values.dtype.kind in "iu":
        values = values.astype("Int64")
    return values.mask(mask)


# --------------------------------------------------------------------------- value formats
_CLASSES = {"9": "0123456789", "A": string.ascii_uppercase, "a": string.ascii_lowercase}
_SHAPE_OF = str.maketrans(
    {**dict.fromkeys(string.digits, "9"), **dict.fromkeys(string.ascii_uppercase, "A")}
    | dict.fromkeys(string.ascii_lowercase, "a")
)


def value_format(value: str) -> str:
    """The format of a value: digits become ``9``, letters ``A``/``a``, the rest is kept.

    >>> value_format("(555) 013-4477"), value_format("AB-12c")
    ('(999) 999-9999', 'AA-99a')
    """
    return value.translate(_SHAPE_OF)


class FormatTransformer(ColumnTransformer):
    """A column whose values are each held by too few patients to be learned as categories
    (phone numbers, free codes): generated in the formats the real values have, never one
    made-up level and never a real value.

    Only the formats held by at least ``min_patients`` patients are stored (``999-9999``, with
    their frequencies) and the missing rate; when no format is that common, values of the
    column's typical length over its kind of characters are generated (as for identifiers).

    Parameters
    ----------
    column : str
    min_patients : int
        Least patients (distinct primary-key values, or rows) holding a format for it to be kept.
    """

    kind: ClassVar[str] = "format"
    _params = ("min_patients",)
    _state = ("formats", "frequencies", "null_rate", "shape", "numeric")
    MAX_FORMATS: ClassVar[int] = 50
    _param_checks: ClassVar[dict[str, Any]] = {"min_patients": S.integer(1, 10**9)}
    _state_checks: ClassVar[dict[str, Any]] = {
        "formats": S.array(S.text(1000), max_len=MAX_FORMATS),
        "frequencies": S.array(S.number(0, 1), max_len=MAX_FORMATS),
        "null_rate": S.number(0, 1),
        "shape": S.nullable(_SHAPE),
        "numeric": S.boolean(),
    }

    def _state_problems(self) -> list[str]:
        problems = _shape_problems(self.shape_)
        if len(self.formats_) != len(self.frequencies_):
            problems.append("formats and frequencies must have the same length")
        elif not self.formats_ and self.shape_ is None:
            problems.append("a format column needs formats or a shape")
        elif self.formats_ and abs(sum(self.frequencies_) - 1.0) > 1e-6:
            problems.append("the format frequencies must sum to 1")
        return problems

    def __init__(self, column: str, min_patients: int = 5) -> None:
        super().__init__(column)
        self.min_patients = int(min_patients)

    def _fit(self, series: pd.Series) -> None:
        self.null_rate_ = float(series.isna().mean())
        self.numeric_ = bool(pd.api.types.is_numeric_dtype(series))
        values = series.dropna()
        text = values.astype(str)
        formats = text.map(value_format)
        if self._entities is not None:
            pairs = pd.DataFrame({"f": formats, "e": self._entities.loc[values.index]})
            support = pairs.drop_duplicates().groupby("f", sort=False)["e"].size()
        else:
            support = formats.value_counts(sort=False)
        support = support[support >= self.min_patients].sort_values(ascending=False, kind="stable")[
            : self.MAX_FORMATS
        ]
        self.formats_ = [str(f) for f in support.index]
        total = float(support.sum()) or 1.0
        self.frequencies_ = [float(c) / total for c in support.to_numpy()]
        self.shape_ = None if self.formats_ else _learn_shape(text.astype(object))
        if self.shape_ is not None and self.shape_["shape"] == "int":
            self.shape_ = {"shape": "string", "length": 8, "alphabet": string.digits}

    def _spans(self) -> list[SpanInfo]:
        return []

    def _transform(self, series: pd.Series, rng: np.random.Generator | None) -> np.ndarray:
        return np.zeros((len(series), 0), dtype=np.float32)

    def _inverse(self, data: np.ndarray, rng: np.random.Generator) -> pd.Series:
        n = len(data)
        if not self.formats_:
            values = _generate(self.shape_, n, rng, sequential=False)
        else:
            values = np.empty(n, dtype=object)
            which = rng.choice(len(self.formats_), size=n, p=np.asarray(self.frequencies_))
            for i, fmt in enumerate(self.formats_):
                rows = np.flatnonzero(which == i)
                if len(rows):
                    values[rows] = _fill(fmt, len(rows), rng)
        out = pd.Series(values, dtype=object)
        if self.numeric_:
            out = pd.to_numeric(out, errors="coerce")
        return _with_nulls(out, self.null_rate_, rng)


def _fill(fmt: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random values of the format ``fmt`` (``9``: a digit, ``A``/``a``: a letter)."""
    columns = []
    for char in fmt:
        pool = _CLASSES.get(char)
        if pool is None:
            columns.append(np.full(n, char))
        else:
            columns.append(np.array(list(pool))[rng.integers(0, len(pool), size=n)])
    if not columns:
        return np.full(n, "", dtype=object)
    chars = np.ascontiguousarray(np.stack(columns, axis=1).astype("<U1"))
    return chars.view(f"<U{len(fmt)}")[:, 0].astype(object)


# --------------------------------------------------------------------------- personal data
#: One Faker per locale and thread: a Faker is seeded before each use, so threads that
#: sample blocks side by side (sample_batches) must not share one.
_FAKERS = threading.local()


def _faker(locale: str):  # noqa: ANN202 - Faker is imported lazily
    cache = getattr(_FAKERS, "by_locale", None)
    if cache is None:
        cache = _FAKERS.by_locale = {}
    if locale not in cache:
        cache[locale] = _new_faker(locale)
    return cache[locale]


def _new_faker(locale: str):  # noqa: ANN202
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
    _param_checks: ClassVar[dict[str, Any]] = {
        "sdtype": S.text(100),
        "locale": S.text(20),
    }
    _state_checks: ClassVar[dict[str, Any]] = {
        "null_rate": S.number(0, 1),
        "shape": S.nullable(_SHAPE),
    }

    def _state_problems(self) -> list[str]:
        return _shape_problems(self.shape_)

    def __init__(self, column: str, sdtype: str = "text", locale: str = "en_US") -> None:
        super().__init__(column)
        self.sdtype = sdtype
        self.locale = locale

    def _fit(self, series: pd.Series) -> None:
        self.null_rate_ = float(series.isna().mean())
        if self._privacy is not None:  # DP: nothing is measured, the fakes are never missing
            self.null_rate_ = 0.0
        self.shape_ = None
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
            self.shape_ = shape
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
        return _with_nulls(pd.Series(values, dtype=object), self.null_rate_, rng)

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
            return _generate(self.shape_, n, rng, sequential=False)
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
