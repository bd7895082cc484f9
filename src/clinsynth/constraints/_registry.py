"""Rule types by name, and rules from their JSON form (metadata ``constraints``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clinsynth.constraints._base import Constraint, Custom
from clinsynth.constraints._combinations import FixedCombinations, OneHot
from clinsynth.constraints._formula import Formula
from clinsynth.constraints._logic import LOGIC_RULES
from clinsynth.constraints._ranges import NonNegative, Positive, Range
from clinsynth.constraints._rules import DateOrder, Inequality
from clinsynth.constraints._values import VALUE_RULES
from clinsynth.errors import MetadataError

RULES: dict[str, type[Constraint]] = {
    cls.type: cls
    for cls in (
        Inequality,
        DateOrder,
        Range,
        Positive,
        NonNegative,
        FixedCombinations,
        OneHot,
        Formula,
        Custom,
        *LOGIC_RULES,
        *VALUE_RULES,
    )
}
#: Keys of a rule's JSON form that describe it rather than parametrize it.
_ABOUT = ("type", "state", "discovered", "support")


def constraint_from_dict(
    data: dict[str, Any], custom: dict[str, Callable[..., Any]] | None = None
) -> Constraint:
    """Build a rule from its JSON form (as written in metadata ``constraints``).

    >>> rule = constraint_from_dict({"type": "implication", "when_column": "hospdead",
    ...     "when_values": [1], "then_column": "death", "then_values": [1], "discovered": True})
    >>> rule.describe(), rule.discovered
    ('hospdead = 1 implies death = 1', True)
    """
    if not isinstance(data, dict) or data.get("type") not in RULES:
        raise MetadataError(
            f"Unknown rule {data!r}. Rule types: {', '.join(RULES)}; e.g. "
            '{"type": "inequality", "low": "diastolic_bp", "high": "systolic_bp"}.'
        )
    params = {k: v for k, v in data.items() if k not in _ABOUT}
    if data["type"] == "custom":
        fn = (custom or {}).get(params.get("name", ""))
        rule: Constraint = Custom(fn, columns=params.get("columns"), name=params.get("name"))
    else:
        try:
            rule = RULES[data["type"]](**params)
        except TypeError as exc:
            raise MetadataError(f"Rule {data!r} has wrong parameters: {exc}.") from None
    rule.discovered = bool(data.get("discovered", False))
    support = data.get("support")
    rule.support = dict(support) if isinstance(support, dict) else None
    return rule


def rules_within(
    constraints: list[dict], columns: dict[str, dict], original: dict[str, dict]
) -> list:
    """The rules (JSON forms) whose columns all keep their original meaning in ``columns``: a
    table's model in a multi-table schema sees only some of the table's columns (keys and
    inherited columns are dropped, dates become gaps), so only those rules travel with it."""
    kept = []
    for item in constraints:
        try:
            rule = constraint_from_dict(item)
        except MetadataError:
            continue
        if all(
            c in columns and c in original and columns[c].get("sdtype") == original[c].get("sdtype")
            for c in rule.columns
        ):
            kept.append(item)
    return kept
