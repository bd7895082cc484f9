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
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from clinsynth.metadata._metadata import Metadata, TableMetadata

#: Numbers with at most this many distinct values are codes (categorical), as in RHC's 0/1 flags.
MAX_CODE_LEVELS = 10

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
        columns[str(name)] = detect_column(str(name), df[name])
    table = TableMetadata(columns)
    table.primary_key = _detect_primary_key(df, table)
    return table


def detect_column(name: str, series: pd.Series) -> dict:
    """Detect the sdtype (and its properties) of one column."""
    values = series.dropna()
    if len(values) == 0:
        return {"sdtype": "unknown"}
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
    if not _CODE_COL.search(name) and numbers.notna().mean() >= 0.9 and numbers.nunique() > MAX_CODE_LEVELS:
        # Mostly numbers: declared numerical so that validation names the stray values.
        return _numeric_column(numbers.dropna())
    if _is_free_text(text):
        return {"sdtype": "text", "pii": True}
    return {"sdtype": "categorical"}


def _numeric_column(values: pd.Series) -> dict:
    numbers = values.astype("float64")
    if numbers.nunique() <= MAX_CODE_LEVELS:
        return {"sdtype": "categorical"}
    whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
    return {"sdtype": "numerical", "computer_representation": "Int64" if whole else "Float"}


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
    if sample.str.match(_SSN).mean() > 0.9 or (_SSN_COL.search(name) and sample.str.len().mean() > 6):
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
    for fmt in DATETIME_FORMATS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().mean() >= 0.95:
            if fmt == "%Y%m%d" and not sample.str.fullmatch(r"(19|20)\d{6}").all():
                continue
            return fmt
    return None


def _detect_primary_key(df: pd.DataFrame, table: TableMetadata) -> str | None:
    candidates = [c for c, s in table.columns.items() if s["sdtype"] in ("id", "mrn", "email")]
    candidates.sort(key=lambda c: (table.columns[c]["sdtype"] != "id", list(df.columns).index(c)))
    for col in candidates:
        s = df[col]
        if s.notna().all() and s.is_unique:
            return col
    return None


def detect_relationships(data: dict[str, pd.DataFrame], md: Metadata) -> list[dict]:
    """Find parent -> child links: a child id column whose values lie in a parent's primary key.

    A child column is linked when its name matches the parent key (``PERSON_ID``), the parent
    table name (``PATIENT`` -> ``patients.Id``) or ``<parent>_id``, and at least half of its
    values are found in the parent key (real schemas ship with some orphans; validation reports
    them).
    """
    relationships = []
    for parent, ptable in md.tables.items():
        pk = ptable.primary_key
        if pk is None:
            continue
        pvalues = pd.Index(data[parent][pk].dropna().unique())
        stem = _singular(parent).lower()
        for child, ctable in md.tables.items():
            if child == parent:
                continue
            for col, spec in ctable.columns.items():
                if spec["sdtype"] != "id" or col == ctable.primary_key:
                    continue
                lname = col.lower()
                named = lname == pk.lower() or lname in (stem, f"{stem}_id", f"{stem}id")
                if not named:
                    continue
                cvalues = data[child][col].dropna()
                if len(cvalues) == 0:
                    continue
                if cvalues.isin(pvalues).mean() >= 0.5:
                    relationships.append(
                        {
                            "parent_table_name": parent,
                            "parent_primary_key": pk,
                            "child_table_name": child,
                            "child_foreign_key": col,
                        }
                    )
    return relationships


def _singular(name: str) -> str:
    name = name.rsplit("/", 1)[-1]
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name
