"""Clinical rules for every synthesizer: ``constraints=[...]`` or ``constraints`` in metadata JSON.

>>> from clinsynth.constraints import Inequality, DateOrder
>>> rules = [Inequality(low="diastolic_bp", high="systolic_bp", strict=True),
...          DateOrder(["admission_date", "discharge_date"])]
"""

from clinsynth.constraints._library import PHYSIOLOGICAL_RANGES, suggest_constraints
from clinsynth.constraints._rules import (
    RULES,
    Constraint,
    Custom,
    DateOrder,
    FixedCombinations,
    Formula,
    Inequality,
    NonNegative,
    OneHot,
    Positive,
    Range,
    constraint_from_dict,
)

__all__ = [
    "Constraint",
    "Inequality",
    "DateOrder",
    "Range",
    "Positive",
    "NonNegative",
    "FixedCombinations",
    "OneHot",
    "Formula",
    "Custom",
    "RULES",
    "constraint_from_dict",
    "suggest_constraints",
    "PHYSIOLOGICAL_RANGES",
]
