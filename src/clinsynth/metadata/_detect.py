"""Detect sdtypes, keys and relationships from data.

Rules, in order, for each column (checked against the shared clinical datasets):

1. empty -> ``unknown`` (validation then asks the user to drop or declare it);
2. a name that looks like a key (``id``, ``*_id``, ``pid``, ``PERSON_ID``, ``Id``...) with integer
   or code-like values, or values that are UUIDs -> ``id``;
3. bool dtype, or only true/false spellings -> ``boolean``;
4. datetime dtype, or strings of which >= 95% parse with one format -> ``datetime``;
5. PII by name and content: e-mail addresses, SSNs, phone numbers, person names, addresses, MRNs;
   long unique strings with spaces -> ``text``;
6. numbers (or strings of which >= 90% are numbers) with more than 10 distinct values ->
   ``numerical`` (``Int64`` when every value is whole); numeric codes with few levels and every
   other string column -> ``categorical``.

Missing-value markers. Exports from SAS, Stata, R or spreadsheets write missing cells as text:
``.``, ``NA``, ``N/A``, ``NaN``, ``null``, ``?``, an empty or blank cell (:data:`MISSING_MARKERS`);
in a column whose other values are numbers, dates or true/false, also ``-``, ``--``, ``none``,
``missing``, ``unknown`` and ``not done`` (:data:`TYPED_MISSING_MARKERS`). The column is detected
from its other values, and the markers found are recorded in its metadata as
``"missing_values": [".", ...]``; validation, fitting and evaluation read those cells as missing
(the synthetic data has empty cells there), and a warning names them. Numeric sentinels: in a
numerical column whose every other value is >= 0, the values -99, -999 and -9999 are
recorded as missing values too; any other number stays a value (a sentinel cannot be told from a
measurement otherwise: declare it in ``missing_values`` by hand).
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import datetime

import numpy as np
import pandas as pd

from clinsynth.metadata._keys import CAMEL_ID as _CAMEL_ID
from clinsynth.metadata._keys import ID_NAME as _ID_NAME
from clinsynth.metadata._keys import KeyEvidence, choose_primary_key
from clinsynth.metadata._link_checks import ids_to_codes
from clinsynth.metadata._link_choice import LinkCandidate
from clinsynth.metadata._links import detect_links
from clinsynth.metadata._metadata import Metadata
from clinsynth.metadata._self_links import refers_to_own_key
from clinsynth.metadata._table import TableMetadata

logger = logging.getLogger(__name__)

#: Numbers with at most this many distinct values are codes (categorical), as in RHC's 0/1 flags.
MAX_CODE_LEVELS = 10

#: Text that means "missing" in any column (compared after stripping blanks).
MISSING_MARKERS = frozenset(
    {"", ".", "?", "NA", "N/A", "n/a", "N.A.", "NaN", "nan", "null", "NULL", "Null", "#N/A", "<NA>"}
)
#: Text that means "missing" in a column whose other values are numbers, dates or booleans
#: (in a categorical column these may be real levels: "none", "unknown").
TYPED_MISSING_MARKERS = frozenset(
    {"-", "--", "none", "None", "NONE", "missing", "Missing", "MISSING", "unknown", "Unknown"}
    | {"UNKNOWN", "not done", "Not done", "ND"}
)
#: Numbers that are "missing" in a column whose other values are all >= 0.
NUMERIC_SENTINELS = (-99, -999, -9999)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CODE = re.compile(r"^(?=.*\d)[A-Za-z]{0,8}[-_:]?[0-9A-Za-z-]{2,}$")
#: Numbers that are codes whatever their count of levels (SNOMED, ICD, LOINC, zip codes).
_CODE_COL = re.compile(
    r"(^|_)(code|codes|source_value|icd\d*|icd_?code|snomed|loinc|cpt|zip|zipcode|postcode)$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PHONE = re.compile(r"^\+?[\d(][\d\s().-]{6,}\d$")
_NAME_COL = re.compile(
    r"^(patient_?|person_?|staff_?|doctor_?|physician_?|nurse_?|contact_?)?"
    r"(name|full_?name|first_?name|last_?name|given_?name|family_?name|surname|middle_?name)$",
    re.IGNORECASE,
)
_ADDRESS_COL = re.compile(r"(^|_)(address|addr|street|street_address|home_address)$", re.IGNORECASE)
_PHONE_COL = re.compile(r"(^|_)(phone|phone_number|telephone|tel|mobile|cell|fax)$", re.IGNORECASE)
_SSN_COL = re.compile(r"(^|_)(ssn|social_security(_number)?)$", re.IGNORECASE)
_MRN_COL = re.compile(r"(^|_)(mrn|medical_record(_number)?|med_rec(_no)?)$", re.IGNORECASE)
_BOOL_WORDS = {"true", "false"}

#: Formats tried for string dates, most specific first.
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y%m%d",
)


def detect_table(df: pd.DataFrame, table_name: str = "table") -> TableMetadata:
    """Detect the metadata of one DataFrame."""
    columns = {}
    for name in df.columns:
        spec = columns[str(name)] = detect_column(str(name), df[name])
        if spec.get("missing_values"):
            _warn_markers(table_name, str(name), df[name], spec["missing_values"])
    table = TableMetadata(columns)
    table.primary_key = choose_primary_key(df, table, table_name).primary_key
    return table


def detect_column(name: str, series: pd.Series) -> dict:
    """Detect the sdtype (and its properties) of one column.

    Missing-value markers (see the module docstring) are left out of the detection and
    recorded as ``"missing_values"``.

    >>> detect_column("age", pd.Series(["54", ".", "61", "NA"] + [str(i) for i in range(30)]))
    {'sdtype': 'numerical', 'computer_representation': 'Int64', 'missing_values': ['.', 'NA']}
    """
    values = series.dropna()
    if len(values) == 0:
        return {"sdtype": "unknown"}
    if (
        pd.api.types.is_numeric_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_datetime64_any_dtype(series)
    ):
        return _detect_values(name, series, values)
    text = values.astype(str).str.strip()
    marked = text.isin(MISSING_MARKERS) | text.isin(TYPED_MISSING_MARKERS)
    if not marked.any():
        return _detect_values(name, series, values)
    rest = values[~marked.to_numpy()]
    if len(rest) == 0:
        return {"sdtype": "unknown", "missing_values": _sorted_markers(text[marked])}
    spec = _detect_values(name, series, rest)
    typed = spec["sdtype"] in ("numerical", "datetime", "boolean")
    found = text[text.isin(MISSING_MARKERS) | (typed & text.isin(TYPED_MISSING_MARKERS))]
    if not typed and len(found) < len(text[marked]):
        # Words such as "none" or "unknown" stay levels of a categorical column: detect it with
        # them, leaving out only the unambiguous markers.
        spec = _detect_values(name, series, values[~text.isin(MISSING_MARKERS).to_numpy()])
    if len(found):
        spec["missing_values"] = _sorted_markers(found) + spec.get("missing_values", [])
    return spec


def _sorted_markers(found: pd.Series) -> list[str]:
    """The markers seen, most frequent first."""
    return [str(v) for v in found.value_counts(sort=True).index]


def _warn_markers(table: str, column: str, series: pd.Series, markers: list) -> None:
    text = series.dropna().astype(str).str.strip()
    numeric = [m for m in markers if not isinstance(m, str)]
    count = int(text.isin([str(m) for m in markers if isinstance(m, str)]).sum())
    if numeric:
        count += int(pd.to_numeric(series, errors="coerce").isin(numeric).sum())
    shown = ", ".join(repr(m) for m in markers)
    logger.warning(
        "column '%s' (table '%s'): %d cells hold %s, read as missing values (recorded as "
        "'missing_values' in its metadata; remove them there to keep them as values).",
        column,
        table,
        count,
        shown,
    )


def _detect_values(name: str, series: pd.Series, values: pd.Series) -> dict:
    """The sdtype of the non-missing ``values`` of the column ``series``."""
    if _looks_like_id(name, values):
        return {"sdtype": "id"}
    if pd.api.types.is_bool_dtype(series):
        return {"sdtype": "boolean"}
    if pd.api.types.is_datetime64_any_dtype(series):
        return {"sdtype": "datetime"}
    if pd.api.types.is_numeric_dtype(series):
        if _CODE_COL.search(name):
            return {"sdtype": "categorical"}
        return _numeric_column(values)

    text = values.astype(str).str.strip()
    if set(text.str.lower().unique()) <= _BOOL_WORDS:
        return {"sdtype": "boolean"}
    pii = _detect_pii(name, text)
    if pii:
        return {"sdtype": pii, "pii": True}
    fmt = detect_datetime_format(text)
    if fmt:
        return {"sdtype": "datetime", "datetime_format": fmt}
    numbers = pd.to_numeric(text, errors="coerce")
    if not _CODE_COL.search(name) and numbers.nunique() > MAX_CODE_LEVELS:
        if numbers.notna().all():
            return _numeric_column(numbers)
        if numbers.notna().mean() >= 0.9:
            # Mostly numbers, but not all: categorical, which the data satisfies; say why.
            bad = text[numbers.isna()]
            logger.warning(
                "column '%s' is mostly numbers, but %d values are not (first: %r), so it is "
                "detected as categorical. Clean those values, or declare it numerical with "
                "them in 'missing_values' if they mean missing.",
                name,
                len(bad),
                bad.iloc[0],
            )
            return {"sdtype": "categorical"}
    if _is_free_text(text):
        return {"sdtype": "text", "pii": True}
    return {"sdtype": "categorical"}


def _numeric_column(values: pd.Series) -> dict:
    numbers = values.astype("float64")
    sentinel = numbers.isin(NUMERIC_SENTINELS)
    sentinels: list[int] = []
    if sentinel.any() and (~sentinel).sum() > MAX_CODE_LEVELS and (numbers[~sentinel] >= 0).all():
        sentinels = sorted({int(v) for v in numbers[sentinel]}, reverse=True)
        numbers = numbers[~sentinel]
    if numbers.nunique() <= MAX_CODE_LEVELS:
        return {"sdtype": "categorical"}
    whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
    spec: dict = {"sdtype": "numerical", "computer_representation": "Int64" if whole else "Float"}
    if sentinels:
        spec["missing_values"] = sentinels
    return spec


def _looks_like_id(name: str, values: pd.Series) -> bool:
    sample = values.iloc[:2000]
    if pd.api.types.is_float_dtype(sample):
        if not np.all(sample == np.round(sample)):
            return False
    if _ID_NAME.search(name) or _CAMEL_ID.search(name):
        if pd.api.types.is_numeric_dtype(sample):
            return True
        text = sample.astype(str)
        return bool(text.str.match(_UUID).mean() > 0.95 or text.str.match(_CODE).mean() > 0.95)
    if pd.api.types.is_numeric_dtype(sample):
        return False
    text = sample.astype(str)
    # Unnamed UUID columns (Synthea's PATIENT, ENCOUNTER) are keys whatever their name.
    return bool(text.str.match(_UUID).mean() > 0.95)


def _detect_pii(name: str, text: pd.Series) -> str | None:
    sample = text.iloc[:2000]
    if sample.str.match(_EMAIL).mean() > 0.9:
        return "email"
    if sample.str.match(_SSN).mean() > 0.9 or (
        _SSN_COL.search(name) and sample.str.len().mean() > 6
    ):
        return "ssn"
    if _MRN_COL.search(name):
        return "mrn"
    if _PHONE_COL.search(name) and sample.str.match(_PHONE).mean() > 0.8:
        return "phone_number"
    if _NAME_COL.search(name) and not pd.api.types.is_numeric_dtype(sample):
        return "name"
    if _ADDRESS_COL.search(name):
        return "address"
    return None


def _is_free_text(text: pd.Series) -> bool:
    sample = text.iloc[:2000]
    return bool(
        sample.str.len().mean() > 40
        and sample.str.contains(" ").mean() > 0.8
        and sample.nunique() > 0.5 * len(sample)
    )


def detect_datetime_format(text: pd.Series) -> str | None:
    """The strftime format that parses >= 95% of the values, or None."""
    sample = text.iloc[:500]
    if not sample.str.contains(r"\d").all():
        return None
    lengths = sample.str.len()
    if lengths.min() < 6:
        return None
    far = sample.str.contains(_FAR_YEAR)
    for fmt in DATETIME_FORMATS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce", utc="%z" in fmt)
        ok = parsed.notna().to_numpy()
        if ok.mean() < 0.95 and far.any():  # years pandas cannot hold (after 2262...)
            ok = ok | (far.to_numpy() & _parses(sample, fmt))
        if ok.mean() >= 0.95:
            if fmt == "%Y%m%d" and not sample.str.fullmatch(r"(19|20)\d{6}").all():
                continue
            return fmt
    return None


#: A four-digit year outside pandas' nanosecond range (1677-2262).
_FAR_YEAR = (
    r"(?<!\d)(?:1[0-5]\d\d|16[0-6]\d|167[0-6]|22[7-9]\d|226[3-9]|2[3-9]\d\d|[3-9]\d{3})(?!\d)"
)


def _parses(text: pd.Series, fmt: str | None) -> np.ndarray:
    """Which values Python's strptime reads with ``fmt`` (ISO dates when None; any year)."""
    out = np.zeros(len(text), dtype=bool)
    for i, value in enumerate(text):
        try:
            datetime.strptime(value, fmt) if fmt else datetime.fromisoformat(value)
            out[i] = True
        except ValueError:
            pass
    return out


def detect_relationships(
    data: dict[str, pd.DataFrame], md: Metadata, declared_keys: dict[str, str] | None = None
) -> list[dict]:
    """Find the keys of every table and the parent -> child links between them.

    Sets each table's primary key (see :mod:`clinsynth.metadata._keys`), the relationships
    (see :mod:`clinsynth.metadata._links`: inclusion of values ranked by name similarity) and
    ``md.detection``, the evidence: per table how its key was chosen, the export artefacts and
    composite keys found; every link candidate with its inclusion and orphans; the ambiguous
    columns, which validation asks the user to resolve.

    Parameters
    ----------
    data : dict of str to DataFrame
    md : Metadata
        The detected tables; updated in place.
    declared_keys : dict of str to str, optional
        Primary keys known already (a database's constraints): kept, with ``how="declared"``.

    Returns
    -------
    list of dict
        SDV-style relationships, in parent then child order (also set on ``md``).

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": [1, 2, 3], "age": [50, 60, 70]})
    >>> visits = pd.DataFrame({"visit_id": [10, 11, 12], "patient_id": [1, 1, 3]})
    >>> data = {"patients": patients, "visits": visits}
    >>> md = Metadata({n: detect_table(df, n) for n, df in data.items()})
    >>> [(r["parent_table_name"], r["child_foreign_key"]) for r in detect_relationships(data, md)]
    [('patients', 'patient_id')]
    """
    evidence = {}
    declared_keys = declared_keys or {}
    for name, table in md.tables.items():
        if name in data:
            evidence[name] = choose_primary_key(data[name], table, name)
            if name in declared_keys:
                evidence[name].primary_key = declared_keys[name]
                evidence[name].how = "declared"
                evidence[name].composite_key = None
                table.columns[declared_keys[name]] = {"sdtype": "id"}
            table.primary_key = evidence[name].primary_key
    relationships, candidates, ambiguous = detect_links(data, md, evidence)
    md.relationships = relationships
    md.detection = detection_summary(evidence, candidates, ambiguous)
    return relationships


def detection_summary(
    evidence: dict[str, KeyEvidence], candidates: list[LinkCandidate], ambiguous: list[dict]
) -> dict:
    """The evidence in the JSON form kept as ``Metadata.detection`` (counts, never values)."""
    order = {"linked": 0, "ambiguous": 1, "broken": 2, "cycle": 3, "not a key": 4, "weaker": 5}
    links = sorted(candidates, key=lambda c: (order.get(c.status, 9), c.child, c.column))
    return {
        "tables": {name: ev.to_dict() for name, ev in evidence.items()},
        "links": [c.to_dict() for c in links],
        "ambiguous": ambiguous,
    }


__all__ = [
    "detect_table",
    "detect_column",
    "detect_datetime_format",
    "detect_relationships",
    "refers_to_own_key",
    "ids_to_codes",
]
