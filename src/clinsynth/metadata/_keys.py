"""Primary keys found from the data: named keys, export artefacts and composite keys.

A table's primary key is a column whose values are present and unique on every row. Among those:

1. a column named like a key (``patient_id``, ``Id``, ``PERSON_ID``, an MRN...) is preferred,
   the one named after the table first (``visits.visit_id`` over ``visits.patient_id``);
2. an *export artefact* comes last: R's ``rownames`` (``row.names``), pandas' ``Unnamed: 0``,
   readr's ``...1``, an ``index`` column, or a column that only counts the rows (its values are
   1..n or 0..n-1, under a name that is not a key's). It is the key only when nothing else
   identifies the rows, and it is flagged (``artefacts`` in the evidence) and never learned;
3. when no single column but an artefact identifies the rows, the smallest set of columns that
   does (``services_weekly``: ``week`` and ``service``) is reported as a composite key.

Key-named columns that are not unique (OMOP's ``DRUG_EXPOSURE_ID`` repeats 4,384 values) are
reported with their counts of repeats and missing values, never chosen.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clinsynth.metadata._table import TableMetadata

#: Column names that export tools add for the row labels or numbers.
ARTEFACT_NAME = re.compile(
    r"^(rownames|row\.names|row_names|unnamed: ?\d+|\.\.\.\d+|index|level_0|)$", re.IGNORECASE
)
#: Names under which a 1..n counter is an artefact even in a tiny table (R's ``X`` after
#: ``read.csv`` of a file written with row names, SAS's ``_N_``, a spreadsheet's ``#``).
COUNTER_NAME = re.compile(
    r"^(x|x1|v1|#|no|no\.|nr|n|row|rowid|row_id|rownum|row_number|obs|_n_|sno|s\.no|sr)$",
    re.IGNORECASE,
)
#: Key names too generic to link tables by name alone (``visits.id`` is not ``patients.id``).
GENERIC_KEYS = frozenset({"id", "key", "uuid", "guid", "uid", "pk", "rownames"})
#: Least number of rows for a column of other name to be called a counter from its values alone.
MIN_COUNTER_ROWS = 20
#: A key-like name: ``id``, ``*_id``, ``pid``, ``PERSON_ID``, ``rownames``...
ID_NAME = re.compile(
    r"^(id|pid|ptid|uid|uuid|guid|seqn|randid|rownames|key)$|[_\s.-](id|key|uuid)$", re.IGNORECASE
)
#: camelCase keys: ``patientId``, ``visitID`` (case-sensitive: not "acid").
CAMEL_ID = re.compile(r"[a-z0-9]I[dD]$")


def key_named(name: str) -> bool:
    """Whether a column's name says it holds keys.

    >>> key_named("patient_id"), key_named("patientId"), key_named("acid")
    (True, True, False)
    """
    return bool(ID_NAME.search(str(name)) or CAMEL_ID.search(str(name)))


#: Names of columns that order rows within a group (good second columns of a composite key).
_TIME_NAME = re.compile(
    r"(date|time|day|week|month|year|visit|seq|number|num|no|order|period|step|stay|episode)",
    re.IGNORECASE,
)
#: Most pairs and triples of columns tried for a composite key (each costs one hash pass).
MAX_PAIR_CHECKS = 60
MAX_TRIPLE_CHECKS = 20
_KEY_SDTYPES = ("id", "mrn", "email")


@dataclass
class KeyEvidence:
    """How a table's key was chosen, for the detect output and the metadata JSON.

    Attributes
    ----------
    primary_key : str or None
        The chosen single-column key.
    how : str
        ``"named"`` (a key-named column), ``"artefact"`` (an export artefact, nothing better),
        ``"none"``.
    artefacts : list of dict
        ``{"column", "kind"}`` for each export artefact found (``kind``: ``"rownames"``,
        ``"pandas index"``, ``"row counter"``...).
    not_unique : list of dict
        ``{"column", "repeats", "missing"}`` for key-named columns that cannot be the key.
    composite_key : list of str or None
        Columns that identify the rows together when no single (non-artefact) column does.
    """

    primary_key: str | None = None
    how: str = "none"
    artefacts: list[dict] = field(default_factory=list)
    not_unique: list[dict] = field(default_factory=list)
    composite_key: list[str] | None = None

    def to_dict(self) -> dict:
        out: dict = {"primary_key": self.primary_key, "how": self.how}
        if self.artefacts:
            out["artefacts"] = list(self.artefacts)
        if self.not_unique:
            out["not_unique"] = list(self.not_unique)
        if self.composite_key:
            out["composite_key"] = list(self.composite_key)
        return out


def artefact_kind(name: str, series: pd.Series) -> str | None:
    """What export artefact column ``name`` is, or None when it is a real column.

    >>> artefact_kind("Unnamed: 0", pd.Series(range(5)))
    'pandas index'
    >>> artefact_kind("X", pd.Series(range(1, 6))), artefact_kind("age", pd.Series([50, 61]))
    ('row counter', None)
    >>> artefact_kind("patient_id", pd.Series(range(1, 100)))  # a named key, even when 1..n
    """
    lname = str(name).strip().lower()
    if ARTEFACT_NAME.match(lname):
        if lname.startswith("unnamed") or lname in ("index", "level_0"):
            return "pandas index"
        if lname.startswith("..."):
            return "readr row number"
        if lname == "":
            return "unnamed column"
        return "rownames" if is_counter(series) else "row labels"
    if key_named(name):
        return None
    counter = is_counter(series)
    if counter and (COUNTER_NAME.match(lname) or len(series) >= MIN_COUNTER_ROWS):
        return "row counter"
    return None


def is_counter(series: pd.Series) -> bool:
    """Whether the values are the row numbers 1..n or 0..n-1 (in any order), nothing else.

    >>> is_counter(pd.Series([3, 1, 2])), is_counter(pd.Series([1, 2, 4]))
    (True, False)
    """
    n = len(series)
    if n == 0 or series.isna().any():
        return False
    if pd.api.types.is_bool_dtype(series):
        return False
    values = pd.to_numeric(series, errors="coerce") if series.dtype == object else series
    if not pd.api.types.is_numeric_dtype(values) or values.isna().any():
        return False
    array = np.asarray(values, dtype=np.float64)
    if not np.all(array == np.round(array)):
        return False
    low = array.min()
    return bool(low in (0.0, 1.0) and array.max() == low + n - 1 and pd.Series(array).is_unique)


def choose_primary_key(df: pd.DataFrame, table: TableMetadata, name: str) -> KeyEvidence:
    """The table's primary key with the evidence behind it (see the module docstring).

    Artefact columns get the sdtype ``id`` in ``table`` (they are row labels, never learned).
    """
    evidence = KeyEvidence()
    named: list[tuple[int, int, str]] = []
    artefacts: list[tuple[int, str]] = []
    for position, column in enumerate(table.columns):
        if column not in df.columns:
            continue
        series = df[column]
        kind = artefact_kind(column, series)
        sdtype = table.columns[column]["sdtype"]
        if kind is None and sdtype not in _KEY_SDTYPES:
            continue
        missing = int(series.isna().sum())
        repeats = int(series.dropna().duplicated().sum())
        if kind is not None:
            evidence.artefacts.append({"column": column, "kind": kind})
            table.columns[column] = {"sdtype": "id"}
            if not missing and not repeats:
                artefacts.append((position, column))
            continue
        if missing or repeats:
            if _name_rank(column, sdtype, name) == 0 and len(series):
                evidence.not_unique.append(
                    {"column": column, "repeats": repeats, "missing": missing}
                )
            continue
        named.append((_name_rank(column, sdtype, name), position, column))
    if named:
        evidence.primary_key, evidence.how = min(named)[2], "named"
        return evidence
    if artefacts:
        evidence.primary_key, evidence.how = artefacts[0][1], "artefact"
    evidence.composite_key = composite_key(
        df, table, exclude={a["column"] for a in evidence.artefacts}
    )
    return evidence


def _name_rank(column: str, sdtype: str, table_name: str) -> int:
    """0: named after the table (``visit_id`` in ``visits``, ``id``); 1: another key name;
    2: a key by its values only (an unnamed UUID column, an MRN, an e-mail)."""
    lname = column.lower()
    stem = singular(table_name).lower()
    if lname in ("id", "key", stem, f"{stem}_id", f"{stem}id", f"{stem}_key"):
        return 0
    return 1 if sdtype == "id" and key_named(column) else 2


def composite_key(
    df: pd.DataFrame, table: TableMetadata, exclude: set[str] | None = None
) -> list[str] | None:
    """The smallest set of 2 or 3 columns whose values identify every row, or None.

    Candidates are complete columns of whole values or text (no free text, no personal data),
    key-named and time-like columns first, then by number of distinct values; a pair is tested
    only when its number of combinations can reach the number of rows.

    >>> weekly = pd.DataFrame({"week": [1, 1, 2, 2], "service": list("abab"), "beds": [3, 4, 3, 5]})
    >>> composite_key(weekly, TableMetadata({c: {"sdtype": "categorical"} for c in weekly}))
    ['week', 'service']
    """
    n = len(df)
    if n < 2:
        return None
    exclude = exclude or set()
    ranked = []
    for column, spec in table.columns.items():
        if column in exclude or column not in df.columns:
            continue
        if spec["sdtype"] not in ("id", "categorical", "ordinal", "boolean", "datetime"):
            if spec["sdtype"] != "numerical" or not _whole(df[column]):
                continue
        series = df[column]
        if series.isna().any():
            continue
        distinct = int(series.nunique())
        if distinct < 2 or distinct == n:
            continue
        ranked.append((not key_named(column), not _TIME_NAME.search(column), distinct, column))
    ranked.sort()
    columns = [c for *_, c in ranked[:10]]
    distinct = {c: int(df[c].nunique()) for c in columns}
    checks = 0
    for pair in itertools.combinations(columns, 2):
        if distinct[pair[0]] * distinct[pair[1]] < n:
            continue
        checks += 1
        if not df.duplicated(subset=list(pair)).any():
            return list(pair)
        if checks >= MAX_PAIR_CHECKS:
            break
    checks = 0
    for triple in itertools.combinations(columns[:6], 3):
        if np.prod([distinct[c] for c in triple], dtype=np.float64) < n:
            continue
        checks += 1
        if not df.duplicated(subset=list(triple)).any():
            return list(triple)
        if checks >= MAX_TRIPLE_CHECKS:
            break
    return None


def _whole(series: pd.Series) -> bool:
    values = series.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    array = np.asarray(values, dtype=np.float64)
    return bool(np.all(array == np.round(array)))


def singular(name: str) -> str:
    """``patients`` -> ``patient``, ``studies`` -> ``study`` (the last path part of ``name``)."""
    name = str(name).rsplit("/", 1)[-1]
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name
