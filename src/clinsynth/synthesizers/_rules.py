"""How a synthesizer applies clinical rules: collect, check the real data, reparametrize before
training, reverse after sampling, and keep only rows that satisfy every rule.

Order matters: a rule's reverse must see its inputs final, so rules that only read a column come
before the rules that rewrite it (they are reversed after them), and rules that only mask or
force a column (``preserving``) come before the one rule that may rewrite it.
"""

from __future__ import annotations

import copy
import heapq
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints import Constraint, Custom, constraint_from_dict
from clinsynth.constraints._logic import plain
from clinsynth.errors import DataError, MetadataError, ParameterError
from clinsynth.metadata import TableMetadata

logger = logging.getLogger(__name__)


def collect_rules(
    table: TableMetadata, given: list | None, custom: dict[str, Callable[..., Any]] | None = None
) -> list[Constraint]:
    """The rules declared in the metadata followed by those passed to the synthesizer, as fresh
    copies (a rule object passed to two models is fitted twice, not shared), in the order they
    are applied (:func:`order_rules`)."""
    rules = [constraint_from_dict(d, custom) for d in table.constraints]
    for item in given or []:
        if isinstance(item, Constraint):
            rules.append(_fresh(item))
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
    return order_rules(rules)


def _fresh(rule: Constraint) -> Constraint:
    if isinstance(rule, Custom):
        out = copy.copy(rule)
    else:
        out = constraint_from_dict(rule.to_dict())
    out.state_, out.reparametrized = {}, False
    return out


def order_rules(rules: list[Constraint]) -> list[Constraint]:
    """Readers of a column before its writers; preserving writers before the others; else as
    given. Rules caught in a cycle keep their given order (the later ones then fall back to
    rejection)."""
    n = len(rules)
    after: list[set[int]] = [set() for _ in range(n)]
    needs = [0] * n
    for i, a in enumerate(rules):
        for j, b in enumerate(rules):
            if i == j:
                continue
            reads = set(a.inputs) & set(b.outputs)
            shares = set(a.outputs) & set(b.outputs)
            if reads or (shares and a.preserving and not b.preserving):
                if j not in after[i]:
                    after[i].add(j)
                    needs[j] += 1
    ready = [i for i in range(n) if needs[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in after[i]:
            needs[j] -= 1
            if needs[j] == 0:
                heapq.heappush(ready, j)
    order += [i for i in range(n) if i not in set(order)]
    return [rules[i] for i in order]


def check_real_data(
    rules: list[Constraint], data: pd.DataFrame, table: TableMetadata
) -> list[Constraint]:
    """The rules to apply to ``data``.

    A declared rule that the real data break is an error listing the rows (how many, the first
    ones with their values), since a synthesizer cannot keep a rule its training data does not.
    A discovered rule always holds on the data it was discovered on; one that ``data`` breaks
    (other data than at discovery) is dropped with a warning.
    """
    kept, problems = [], []
    for rule in rules:
        broken = ~np.asarray(rule.is_valid(data, table), dtype=bool)
        if not broken.any():
            kept.append(rule)
        elif rule.discovered:
            logger.warning(
                "The rule '%s' was discovered on other data and does not hold on %d of %d rows "
                "of this data; it is not applied.",
                rule.describe(),
                int(broken.sum()),
                len(data),
            )
        else:
            problems.append(_broken(rule, data, broken))
    if problems:
        raise DataError.from_problems("The real data break the rules", problems)
    return kept


def _broken(rule: Constraint, data: pd.DataFrame, broken: np.ndarray) -> str:
    rows = np.flatnonzero(broken)
    columns = [c for c in rule.columns if c in data.columns]
    shown = []
    for pos in rows[:3]:
        values = ", ".join(f"{c}={_show(data[c].iloc[pos])}" for c in columns)
        shown.append(f"row {pos + 1}: {values}")
    return (
        f"rule '{rule.describe()}' is broken by {len(rows)} of {len(data)} rows "
        f"({'; '.join(shown)}{'; ...' if len(rows) > 3 else ''}). Fix those rows, or remove the "
        "rule from the metadata's constraints."
    )


def _show(value: Any) -> str:
    value = plain(value)
    return "missing" if value is None else repr(value)


def violations(rules: list[Constraint], data: pd.DataFrame, table: TableMetadata) -> np.ndarray:
    """Rows of ``data`` that break at least one rule."""
    bad = np.zeros(len(data), dtype=bool)
    for rule in rules:
        bad |= ~np.asarray(rule.is_valid(data, table), dtype=bool)
    return bad


def reparametrize(
    rules: list[Constraint],
    data: pd.DataFrame,
    table: TableMetadata,
    *,
    rare_threshold: int | None = 5,
    keep: Iterable[str] = (),
) -> tuple[pd.DataFrame, TableMetadata]:
    """Learn every rule on the real rows, then apply the reparametrizations in order.

    ``rare_threshold`` is the synthesizer's rare-category threshold (no rule stores a value held
    by fewer rows); ``keep`` names columns the model must learn itself (a class label), which
    no rule may take out of the model.
    """
    for rule in rules:
        rule.min_patients = rare_threshold
        rule.learn(data, table)
    touched: set[str] = set()
    kept = set(keep)
    for rule in rules:
        if not rule.preserving and set(rule.outputs) & kept:
            continue  # enforced by rejection only
        rule.decide(data, table, touched)
        if rule.reparametrized:
            data = rule.transform(data, table)
            table = rule.transform_metadata(table)
            if not rule.preserving:
                touched |= set(rule.outputs)
    return data, table


def model_changed_columns(rules: list[Constraint]) -> set[str]:
    """Columns whose values the model does not generate as they are (derived, rewritten): a
    condition on them cannot be handed to a model's own conditioning."""
    return {c for r in rules if r.reparametrized and not r.preserving for c in r.outputs}


def derived_levels(rules: list[Constraint], column: str) -> list | None:
    """The values a column derived by a functional dependency can take (None: not derived)."""
    for rule in rules:
        if rule.reparametrized and rule.type == "functional_dependency" and column in rule.outputs:
            values = [*rule.state_["mapping"].values(), rule.state_["fallback"]]
            return list(dict.fromkeys(values))
    return None


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
    """The fitted rules for a bundle: each rule's JSON form, whether it was reparametrized and
    its state (learned values, none held by fewer rows than the rare-category threshold)."""
    return [
        {"rule": r.to_dict(), "reparametrized": r.reparametrized, "state": r.state_} for r in rules
    ]


def from_json(
    items: list[dict[str, Any]], custom: dict[str, Callable[..., Any]] | None = None
) -> list[Constraint]:
    rules = []
    for item in items:
        rule = constraint_from_dict(item["rule"], custom)
        rule.reparametrized = bool(item["reparametrized"])
        rule.state_ = item["state"]
        rules.append(rule)
    return rules
