"""Ready rules for common clinical columns, offered as suggestions (never applied silently)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint
from clinsynth.constraints._formula import Formula
from clinsynth.constraints._ranges import Range
from clinsynth.constraints._rules import DateOrder, Inequality
from clinsynth.constraints._table import TableLike

#: Physiological ranges by column-name pattern (conventional units: mmHg, bpm, °C, mg/dL, %,
#: kg, cm, mmol/L for electrolytes). A range is suggested only when the real values fit it, so
#: a column in other units is not constrained wrongly.
PHYSIOLOGICAL_RANGES: dict[str, tuple[float, float]] = {
    r"(^|_)(age)$": (0, 120),
    r"(heart_?rate|^hr$|pulse)": (20, 250),
    r"(resp(iratory)?_?rate|^rr$)": (4, 80),
    r"(temp(erature)?)": (25, 45),
    r"(spo2|o2_?sat)": (50, 100),
    r"(systolic|sbp|sys_bp)": (50, 300),
    r"(diastolic|dbp|dia_bp)": (20, 200),
    r"(glucose)": (10, 2000),
    r"(hba1c|a1c)": (3, 20),
    r"(^|_)bmi$": (10, 90),
    r"(sodium|^na$)": (100, 190),
    r"(potassium|^k$)": (1.5, 10),
    r"(creatinine|^crea)": (0.1, 30),
    r"(hemoglobin|haemoglobin|^hgb$|^hb$)": (2, 25),
    r"(cholesterol|ldl|hdl)": (0, 1500),
    r"(triglycerides?)": (0, 10000),
    r"(weight|wtkilo)": (0.3, 400),
    r"(height)": (30, 250),
    r"(egfr)": (0, 200),
}
_SYSTOLIC = re.compile(r"(systolic|sbp|sys_?bp)", re.I)
_DIASTOLIC = re.compile(r"(diastolic|dbp|dia_?bp)", re.I)
_DATE_STAGES = [
    re.compile(p, re.I)
    for p in (r"(birth|dob)", r"(admi(ssion|t)|arrival|start)", r"(discharge|departure|end|stop)")
]
_DEATH = re.compile(r"(death|died|dod)", re.I)


def _fits(data: pd.DataFrame | None, rule: Constraint, table: TableLike) -> bool:
    if data is None:
        return True
    return bool(np.all(rule.is_valid(data, table)))


def suggest_constraints(table: TableLike, data: pd.DataFrame | None = None) -> list[Constraint]:
    """Rules that the column names suggest (and, when ``data`` is given, that the data obey).

    >>> from clinsynth import Metadata
    >>> md = Metadata.from_dict({"columns": {"systolic_bp": {"sdtype": "numerical"},
    ...                                      "diastolic_bp": {"sdtype": "numerical"}}})
    >>> suggest_constraints(md.get_table())[0]
    Inequality(low='diastolic_bp', high='systolic_bp', strict=True)
    """
    cols = table.columns
    numeric = [c for c, s in cols.items() if s["sdtype"] == "numerical"]
    dates = [c for c, s in cols.items() if s["sdtype"] == "datetime"]
    found: list[Constraint] = []

    sys_cols = [c for c in numeric if _SYSTOLIC.search(c)]
    dia_cols = [c for c in numeric if _DIASTOLIC.search(c)]
    for s, d in zip(sys_cols, dia_cols, strict=False):
        found.append(Inequality(low=d, high=s, strict=True))

    lower = {c.lower(): c for c in numeric}
    for part in ("ldl", "hdl"):
        total = next((c for k, c in lower.items() if "total" in k and "chol" in k), None)
        col = next((c for k, c in lower.items() if part in k), None)
        if total and col:
            found.append(Inequality(low=col, high=total, strict=True))
    age = lower.get("age")
    for k, c in lower.items():
        if age and "age" in k and "diag" in k:
            found.append(Inequality(low=c, high=age))

    ordered = []
    for stage in _DATE_STAGES:
        match = next((c for c in dates if stage.search(c) and c not in ordered), None)
        if match:
            ordered.append(match)
    if len(ordered) >= 2:
        found.append(DateOrder(ordered))
    death = next((c for c in dates if _DEATH.search(c)), None)
    if death and ordered:
        found.append(DateOrder([ordered[0], death]))

    height = next((c for k, c in lower.items() if "height" in k), None)
    weight = next((c for k, c in lower.items() if "weight" in k), None)
    bmi = lower.get("bmi")
    if bmi and height and weight:
        found.append(Formula(bmi, f"`{weight}` / (`{height}` / 100) ** 2", tolerance=0.5))

    for c in numeric:
        for pattern, (low, high) in PHYSIOLOGICAL_RANGES.items():
            if re.search(pattern, c, re.I):
                found.append(Range(c, low=low, high=high))
                break
    return [r for r in found if not r.check_metadata(table) and _fits(data, r, table)]
