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

from clinsynth.metadata._metadata import Metadata, TableMetadata

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

_ID_NAME = re.compile(
    r"^(id|pid|ptid|uid|uuid|guid|seqn|randid|rownames|key)$|[_\s.-](id|key|uuid)$", re.IGNORECASE
)
_CAMEL_ID = re.compile(r"[a-z0-9]I[dD]$")  # patientId, visitID (case-sensitive: not "acid")
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
    table.primary_key = _detect_primary_key(df, table)
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


def _detect_primary_key(df: pd.DataFrame, table: TableMetadata) -> str | None:
    candidates = [c for c, s in table.columns.items() if s["sdtype"] in ("id", "mrn", "email")]
    candidates.sort(key=lambda c: (table.columns[c]["sdtype"] != "id", list(df.columns).index(c)))
    for col in candidates:
        s = df[col]
        if s.notna().all() and s.is_unique:
            return col
    return None


#: Key names too generic to link tables by name alone (``visits.id`` is not ``patients.id``).
_GENERIC_KEYS = frozenset({"id", "key", "uuid", "guid", "uid", "pk", "rownames"})
#: Least share of a child column's values found in the parent key, by strength of the name match:
#: the parent key's own specific name (``PERSON_ID``) needs only some overlap, because real
#: extracts ship with broken links that validation must report, not hide.
_MIN_CONTAINMENT = {"exact": 0.0, "stem": 0.5, "role": 0.9}
_STRENGTH = {"exact": 0, "stem": 1, "role": 2}
#: An id-named column that is neither a key nor linked, and repeats at most this many distinct
#: values, is a code (``GENDER_CONCEPT_ID``), not an identifier.
MAX_CODE_IDS = 50


def detect_relationships(data: dict[str, pd.DataFrame], md: Metadata) -> list[dict]:
    """Find parent -> child links: a child column whose values lie in a parent's primary key.

    A child column ``c`` is a candidate foreign key of parent table ``p`` (primary key ``k``)
    when its name says so, and enough of its non-null values are found in ``p.k``:

    - ``exact``: ``c`` is ``k`` and ``k`` is specific (``PERSON_ID``, not ``id``): any overlap,
      so that a link shipped broken is still found and its orphans reported by validation;
    - ``stem``: ``c`` is the parent's singular name, ``<name>_id`` or ``<name>id``
      (``PATIENT`` -> ``patients.Id``), or ``c`` is a generic ``k`` (``id``): at least 50%;
    - ``role``: ``c`` ends with ``_<k>`` for a specific ``k`` (``GENDER_CONCEPT_ID`` ->
      ``concept.CONCEPT_ID``): at least 90%.

    The values must be of the same kind (numbers or text). Each child column gets at most one
    parent (the strongest name match, then the highest overlap); a table is its own parent only
    through a key into its own rows (``manager_id`` -> ``staff_id``, see
    :func:`refers_to_own_key`). Linked columns get the sdtype ``id`` in ``md``; id-named
    columns that end up neither a key nor linked and repeat at most 50 distinct values become
    ``categorical`` codes.

    Parameters
    ----------
    data : dict of str to DataFrame
    md : Metadata
        The detected tables (primary keys set); updated in place as described above.

    Returns
    -------
    list of dict
        SDV-style relationships, in parent then child order.

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": [1, 2, 3], "age": [50, 60, 70]})
    >>> visits = pd.DataFrame({"visit_id": [10, 11, 12], "patient_id": [1, 1, 3]})
    >>> data = {"patients": patients, "visits": visits}
    >>> md = Metadata({n: detect_table(df, n) for n, df in data.items()})
    >>> [(r["parent_table_name"], r["child_foreign_key"]) for r in detect_relationships(data, md)]
    [('patients', 'patient_id')]
    """
    best: dict[tuple[str, str], tuple[int, float, str]] = {}
    for parent, ptable in md.tables.items():
        pk = ptable.primary_key
        if pk is None or parent not in data:
            continue
        pvalues = data[parent][pk].dropna()
        if len(pvalues) == 0:
            continue
        pindex = pd.Index(pvalues.unique())
        pnumeric = pd.api.types.is_numeric_dtype(pvalues)
        for child, ctable in md.tables.items():
            if child == parent or child not in data:
                continue
            for col in ctable.columns:
                if col == ctable.primary_key or col not in data[child].columns:
                    continue
                match = _name_match(col, pk, parent)
                if match is None:
                    continue
                cvalues = data[child][col].dropna()
                if len(cvalues) == 0 or pd.api.types.is_numeric_dtype(cvalues) != pnumeric:
                    continue
                if pd.api.types.is_bool_dtype(cvalues):
                    continue
                share = float(cvalues.isin(pindex).mean())
                if share <= 0.0 or share < _MIN_CONTAINMENT[match]:
                    continue
                key = (_STRENGTH[match], -share, parent)
                if (child, col) not in best or key < best[(child, col)]:
                    best[(child, col)] = key
    for name, table in md.tables.items():  # keys into the table's own rows (a hierarchy)
        pk = table.primary_key
        if pk is None or name not in data or pk not in data[name].columns:
            continue
        for col, spec in table.columns.items():
            if col == pk or (name, col) in best or spec["sdtype"] != "id":
                continue
            if col in data[name].columns and refers_to_own_key(
                col, data[name][col], data[name][pk]
            ):
                best[(name, col)] = (_STRENGTH["role"], -1.0, name)
    relationships = []
    order = {name: i for i, name in enumerate(md.tables)}
    for (child, col), (_, _, parent) in sorted(
        best.items(), key=lambda kv: (order[kv[1][2]], order[kv[0][0]], kv[0][1])
    ):
        relationships.append(
            {
                "parent_table_name": parent,
                "parent_primary_key": md.tables[parent].primary_key,
                "child_table_name": child,
                "child_foreign_key": col,
            }
        )
        md.tables[child].columns[col] = {"sdtype": "id"}
    _ids_to_codes(data, md, {(c, col) for c, col in best})
    return relationships


#: Column names that say a key points into its own table (a hierarchy, a chain of rows).
SELF_REFERENCE_NAME = re.compile(
    r"manager|supervisor|boss|reports_?to|parent|mother|father|spouse|partner|sibling|"
    r"prev|prior|next|predecessor|successor|referr|mentor|sponsor|head_?of|lead|"
    r"original|duplicate|merged|linked|related",
    re.IGNORECASE,
)
#: Least share of a column's values found in its own table's key for a self-reference.
MIN_SELF_CONTAINMENT = 0.9


def refers_to_own_key(name: str, values: pd.Series, key: pd.Series) -> bool:
    """Whether column ``name`` holds keys of its own table's rows (``manager_id`` ->
    ``staff_id``): at least 90% of its values are in ``key``, and either its name says so
    (``manager``, ``parent``, ``previous``..., or it ends with ``_<key name>``) or the keys are
    text (UUIDs, codes), which do not match by chance as small integers do.

    >>> staff = pd.Series([1, 2, 3, 4, 5])
    >>> refers_to_own_key("manager_id", pd.Series([1, 1, 2, None, 2]), staff)
    True
    >>> refers_to_own_key("hospital_id", pd.Series([1, 1, 2, 2, 1]), staff)
    False
    """
    present = values.dropna()
    keys = key.dropna()
    if len(present) == 0 or len(keys) == 0 or pd.api.types.is_bool_dtype(present):
        return False
    numeric = pd.api.types.is_numeric_dtype(keys)
    if pd.api.types.is_numeric_dtype(present) != numeric:
        return False
    if float(present.isin(pd.Index(keys.unique())).mean()) < MIN_SELF_CONTAINMENT:
        return False
    lname, lkey = name.lower(), str(key.name).lower()
    named = bool(SELF_REFERENCE_NAME.search(lname)) or (
        lkey not in _GENERIC_KEYS and lname.endswith("_" + lkey)
    )
    return named or not numeric


def _name_match(col: str, pk: str, parent: str) -> str | None:
    lname, lpk = col.lower(), pk.lower()
    generic = lpk in _GENERIC_KEYS
    if lname == lpk:
        return "stem" if generic else "exact"
    stem = _singular(parent).lower()
    if lname in (stem, f"{stem}_id", f"{stem}id"):
        return "stem"
    if not generic and lname.endswith("_" + lpk):
        return "role"
    return None


def _ids_to_codes(data: dict[str, pd.DataFrame], md: Metadata, linked: set) -> None:
    """Id-named columns that repeat a few values and link nowhere are codes, not identifiers."""
    for name, table in md.tables.items():
        if name not in data:
            continue
        for col, spec in table.columns.items():
            if spec["sdtype"] != "id" or col == table.primary_key or (name, col) in linked:
                continue
            values = data[name][col].dropna()
            distinct = values.nunique()
            if 0 < distinct <= MAX_CODE_IDS and distinct < 0.5 * len(values):
                table.columns[col] = {"sdtype": "categorical"}


def _singular(name: str) -> str:
    name = name.rsplit("/", 1)[-1]
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name
