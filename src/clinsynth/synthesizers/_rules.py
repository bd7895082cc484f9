"""How a synthesizer applies clinical rules: collect, check the real data, reparametrize before
training, reverse after sampling, and keep only rows that satisfy every rule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints import Constraint, constraint_from_dict
from clinsynth.errors import MetadataError, ParameterError
from clinsynth.metadata import TableMetadata

logger = logging.getLogger(__name__)


def collect_rules(
    table: TableMetadata, given: list | None, custom: dict[str, Callable[..., Any]] | None = None
) -> list[Constraint]:
    """The rules declared in the metadata followed by those passed to the synthesizer."""
    rules = [constraint_from_dict(d, custom) for d in table.constraints]
    for item in given or []:
        if isinstance(item, Constraint):
            rules.append(item)
        elif isinstance(item, dict):
            rules.append(constraint_from_dict(item, custom))
        else:
            raise ParameterError(
                f"Each constraint must be a clinsynth.constraints rule or its dict form. Got "
                f"{type(item).__name__}."
            )
    problems = [p for rule in rules for p in rule.check_metadata(table)]
    if problems:
        raise MetadataError.from_problems("The rules do not fit the table", problems)
    return rules


def violations(rules: list[Constraint], data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
    """Rows of ``data`` that break at least one rule; each broken rule is logged with its count."""
    bad = np.zeros(len(data), dtype=bool)
    for rule in rules:
        broken = ~rule.is_valid(data, table)
        if broken.any():
            logger.warning(
                "The real data break the rule %s on %d of %d rows; those rows are left out of "
                "training.",
                rule.describe(),
                int(broken.sum()),
                len(data),
            )
        bad |= broken
    return bad


def reparametrize(
    rules: list[Constraint], data: pd.DataFrame, table: TableMetadata
) -> tuple[pd.DataFrame, TableMetadata]:
    """Fit every rule on the real data and apply the reparametrizations in order."""
    touched: set[str] = set()
    for rule in rules:
        rule.fit(data, table, touched)
        if rule.reparametrized:
            data = rule.transform(data, table)
            touched |= set(rule.columns)
            table = rule.transform_metadata(table)
    return data, table


def transformed_table(rules: list[Constraint], table: TableMetadata) -> TableMetadata:
    for rule in rules:
        table = rule.transform_metadata(table)
    return table


def reverse(
    rules: list[Constraint], data: pd.DataFrame, table: TableMetadata, tables: list[TableMetadata]
) -> pd.DataFrame:
    """Undo the reparametrizations (last first); ``tables`` are the tables each rule saw."""
    for rule, seen in zip(reversed(rules), reversed(tables), strict=True):
        data = rule.reverse(data, seen)
    return data[list(table.columns)]


def restore_dtypes(data: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Cast rebuilt columns back to the real data's dtypes (integers stay integers)."""
    for column, dtype in dtypes.items():
        if column not in data.columns or str(data[column].dtype) == dtype:
            continue
        series = data[column]
        try:
            if dtype.startswith(("int", "uint", "Int", "UInt")):
                numbers = pd.to_numeric(series, errors="coerce").round()
                target = dtype if not numbers.isna().any() else "Int64"
                data[column] = numbers.astype(target)
            elif dtype.startswith("float"):
                data[column] = pd.to_numeric(series, errors="coerce").astype(dtype)
            elif dtype in ("bool", "boolean"):
                data[column] = series.astype("boolean" if series.isna().any() else "bool")
        except (TypeError, ValueError):
            continue  # leave the values as rebuilt rather than fail the sample
    return data


def tables_seen(rules: list[Constraint], table: TableMetadata) -> list[TableMetadata]:
    """The table each rule was fitted on (the original, transformed by the rules before it)."""
    seen = []
    for rule in rules:
        seen.append(table)
        table = rule.transform_metadata(table)
    return seen


def valid_rows(rules: list[Constraint], data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
    ok = np.ones(len(data), dtype=bool)
    for rule in rules:
        ok &= rule.is_valid(data, table)
    return ok


def to_json(rules: list[Constraint]) -> list[dict[str, Any]]:
    return [
        {"rule": r.to_dict(), "reparametrized": r.reparametrized, "state": r.state} for r in rules
    ]


def from_json(
    items: list[dict[str, Any]], custom: dict[str, Callable[..., Any]] | None = None
) -> list[Constraint]:
    rules = []
    for item in items:
        rule = constraint_from_dict(item["rule"], custom)
        rule.reparametrized = bool(item["reparametrized"])
        rule.state = item["state"]
        rules.append(rule)
    return rules
