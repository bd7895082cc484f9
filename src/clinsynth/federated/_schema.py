"""Joining a federation: the checks a site runs on its own rows, and the server on what the site
says of them (column names and dtypes, never values), with the same words on both sides.

A site is refused, and nothing of its data is used, when its columns differ from the
federation's metadata (missing, extra, other types), when it has fewer rows than the minimum, or
when its token is not one the server issued.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

import pandas as pd

from clinsynth.errors import FederationError, MetadataError
from clinsynth.metadata import TableMetadata, is_pii

#: sdtypes a federation can learn: every other one is refused when the server starts.
SUPPORTED_SDTYPES = ("numerical", "categorical", "boolean", "ordinal", "id")
#: Fewest rows a site may bring (fewer: its DP noise would drown its statistics).
DEFAULT_MIN_ROWS = 50


def check_federation_metadata(table: TableMetadata) -> None:
    """Refuse, when the server starts, metadata the federated protocol cannot learn."""
    bad = {
        c: spec["sdtype"]
        for c, spec in table.columns.items()
        if spec["sdtype"] not in SUPPORTED_SDTYPES and not is_pii(spec)
    }
    if bad:
        raise MetadataError(
            f"Federated synthesis learns {', '.join(SUPPORTED_SDTYPES)} and personal-data "
            f"columns; the metadata declares {bad}. Convert dates to numbers (e.g. days since an "
            "event) or drop those columns at every site."
        )
    learned = [c for c, s in table.columns.items() if s["sdtype"] != "id" and not is_pii(s)]
    if not learned:
        raise MetadataError(
            "The federation's metadata has no column to learn (only identifiers and personal "
            "data). Declare numerical or categorical columns."
        )


def check_public(table: TableMetadata, public: dict[str, Any]) -> None:
    """Public knowledge must name learned columns: ``[low, high]`` for a number (low < high),
    a non-empty list of levels for a category."""
    problems = []
    for column, value in public.items():
        spec = table.columns.get(column)
        if spec is None or spec["sdtype"] in ("id",) or is_pii(spec):
            problems.append(f"'{column}' is not a learned column of the federation's metadata")
        elif spec["sdtype"] == "numerical":
            ok = (
                isinstance(value, list | tuple)
                and len(value) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                and value[0] < value[1]
            )
            if not ok:
                problems.append(f"'{column}' is numerical: give [low, high] with low < high")
        elif not isinstance(value, list | tuple) or not value:
            problems.append(f"'{column}' is categorical: give the list of its levels")
    if problems:
        raise MetadataError.from_problems("The public bounds do not fit the metadata", problems)


def with_site_column(table: TableMetadata, column: str | None) -> TableMetadata:
    """The federation's table, with a categorical ``column`` for the sites' names (a copy;
    the caller's metadata is not changed)."""
    if column is None:
        return table
    spec = table.columns.get(column)
    if spec is not None and spec["sdtype"] != "categorical":
        raise MetadataError(
            f"The site column '{column}' is {spec['sdtype']} in the metadata; it must be "
            "categorical (or absent: it is added)."
        )
    copy = TableMetadata.from_dict(table.to_dict())
    copy.columns[column] = {"sdtype": "categorical"}
    return copy


def add_site_column(
    data: pd.DataFrame, column: str | None, name: str | None
) -> tuple[pd.DataFrame, list[str]]:
    """The site's rows with its name in the federation's site column (a copy), or the
    problems that prevent it."""
    if column is None:
        return data, []
    if name is None or not str(name).strip():
        return data, [
            f"the federation keeps a site column '{column}': give this site's name (--site-name)"
        ]
    if column in data.columns:
        return data, [
            f"the site's table already has a column '{column}', the federation's site column: "
            "rename or drop it"
        ]
    return data.assign(**{column: str(name)}), []


def schema_summary(data: pd.DataFrame) -> dict[str, str]:
    """What a site tells the server of its table: each column's name and pandas dtype."""
    return {str(c): str(data[c].dtype) for c in data.columns}


def schema_problems(table: TableMetadata, summary: dict[str, str]) -> list[str]:
    """What does not match between the federation's metadata and a site's columns.

    >>> from clinsynth.metadata import TableMetadata
    >>> t = TableMetadata.from_dict({"columns": {"age": {"sdtype": "numerical"}}})
    >>> schema_problems(t, {"age": "object", "sex": "object"})[0][:37]
    "column 'sex' is not in the federation"
    """
    problems = []
    for column in summary:
        if column not in table.columns:
            problems.append(
                f"column '{column}' is not in the federation's metadata: drop it at the site"
            )
    for column, spec in table.columns.items():
        if column not in summary:
            problems.append(
                f"column '{column}' ({spec['sdtype']}) of the federation's metadata is missing: "
                "add it at the site (empty if the site does not record it)"
            )
            continue
        dtype = summary[column]
        if spec["sdtype"] == "numerical" and not _numeric(dtype):
            problems.append(
                f"column '{column}' is numerical in the federation's metadata but holds "
                f"{dtype} values at the site: clean its values or fix the metadata"
            )
    return problems


def _numeric(dtype: str) -> bool:
    return dtype.lower().startswith(("int", "uint", "float", "bool"))


def site_problems(
    table: TableMetadata, data: pd.DataFrame, min_rows: int
) -> tuple[list[str], pd.DataFrame]:
    """Every reason the site's own rows cannot join (checked at the site, on the rows), and the
    rows with the metadata's missing-value markers emptied."""
    from clinsynth.metadata._validate import clear_missing_values, table_problems

    problems = schema_problems(table, schema_summary(data))
    data = clear_missing_values(data, table)
    if not problems:
        found, _ = table_problems(table, data)
        problems.extend(found)
    if len(data) < min_rows:
        problems.append(
            f"the site has {len(data)} rows, fewer than the federation's minimum of {min_rows}: "
            "it cannot join (its noisy statistics would be mostly noise)"
        )
    return problems, data


def refusal(problems: list[str], site: str = "the site") -> FederationError:
    """The one error of a refused site."""
    return FederationError.from_problems(
        f"{site} was refused by the federation, nothing of its data was used", problems
    )


# --------------------------------------------------------------------------- tokens
def new_tokens(count: int) -> list[str]:
    """``count`` fresh random site tokens (256 bits each, URL-safe)."""
    return [secrets.token_urlsafe(32) for _ in range(count)]


def read_tokens(path: str | Path) -> list[str]:
    """The tokens of a token file (one per line; blank lines and ``#`` comments skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FederationError(
            f"Cannot read the token file '{path}': {exc.strerror or exc}. Give an existing "
            "file with one site token per line (clinsynth federate tokens writes one)."
        ) from None
    tokens = [line.strip() for line in text.splitlines()]
    tokens = [t for t in tokens if t and not t.startswith("#")]
    short = [i + 1 for i, t in enumerate(tokens) if len(t) < 16]
    if not tokens or short:
        raise FederationError(
            f"The token file '{path}' must hold one token of at least 16 characters per line; "
            + (f"lines {short[:5]} are shorter." if short else "it holds none.")
        )
    return tokens


def token_index(token: Any, tokens: list[str]) -> int | None:
    """Which issued token ``token`` is (compared in constant time), or None."""
    if not isinstance(token, str):
        return None
    found = None
    for i, issued in enumerate(tokens):
        if hmac.compare_digest(token.encode(), issued.encode()):
            found = i
    return found
