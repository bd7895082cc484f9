"""Clinical rules for every synthesizer: ``constraints=[...]`` or ``constraints`` in metadata JSON.

Rules are declared by hand, suggested from column names (:func:`suggest_constraints`) or
discovered in the real data (:func:`discover_rules`, run by ``Metadata.detect_from_dataframe``).

>>> from clinsynth.constraints import Inequality, DateOrder
>>> rules = [Inequality(low="diastolic_bp", high="systolic_bp", strict=True),
...          DateOrder(["admission_date", "discharge_date"])]
"""

from clinsynth.constraints._base import Constraint, Custom
from clinsynth.constraints._combinations import FixedCombinations, OneHot
from clinsynth.constraints._conflicts import rule_problems
from clinsynth.constraints._discover import discover_rules
from clinsynth.constraints._formula import Formula
from clinsynth.constraints._library import PHYSIOLOGICAL_RANGES, suggest_constraints
from clinsynth.constraints._logic import FunctionalDependency, Implication, SkipPattern
from clinsynth.constraints._ranges import NonNegative, Positive, Range
from clinsynth.constraints._registry import RULES, constraint_from_dict, rules_within
from clinsynth.constraints._rules import DateOrder, Inequality
from clinsynth.constraints._values import Grid, PointMass

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
    "FunctionalDependency",
    "SkipPattern",
    "Implication",
    "Grid",
    "PointMass",
    "RULES",
    "constraint_from_dict",
    "discover_rules",
    "rule_problems",
    "rules_within",
    "suggest_constraints",
    "PHYSIOLOGICAL_RANGES",
]
