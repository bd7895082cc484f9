"""Report objects with SDV-compatible accessors: ``get_score``, ``get_properties``, ``get_details``.

Every report holds property scores in [0, 1] (1 is best), one details table per property or
supplementary metric, a flat dict of headline ``metrics``, the ``sampling`` notes (which metrics ran
on a subsample and on how many rows) and plain-language ``notes``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from clinsynth.errors import ParameterError
from clinsynth.evaluation._common import clip01, jsonable, nanmean

__all__ = [
    "BaseReport",
    "DiagnosticReport",
    "QualityReport",
    "UtilityReport",
    "PrivacyReport",
]


class BaseReport:
    """Scores, details and notes of one evaluation section.

    Parameters
    ----------
    properties : dict of str to float or None
        Property name to score in [0, 1]; None when the property could not be measured.
    details : dict of str to DataFrame
        Details per property, and per supplementary metric that does not enter the score.
    metrics : dict, optional
        Headline numbers (e.g. ``dcr_share``), JSON-ready.
    sampling : dict, optional
        ``{metric: {"real": rows, "synthetic": rows}}`` for the metrics that ran on a subsample.
    notes : list of str, optional
        Plain-language remarks (what was skipped and why).
    score : float, optional
        The overall score; the mean of the measured properties when not given.
    """

    name = "report"
    title = "Report"
    #: The question the section answers, in plain words (the HTML summary, the dashboard).
    question = ""

    def __init__(
        self,
        properties: dict[str, float | None],
        details: dict[str, pd.DataFrame],
        *,
        metrics: dict[str, Any] | None = None,
        sampling: dict[str, dict[str, int]] | None = None,
        notes: list[str] | None = None,
        score: float | None = None,
    ) -> None:
        self._properties = {k: clip01(v) for k, v in properties.items()}
        self._details = dict(details)
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.sampling: dict[str, dict[str, int]] = dict(sampling or {})
        self.notes: list[str] = list(notes or [])
        if score is None:
            score = nanmean(list(self._properties.values()))
        self._score = clip01(score)

    def get_score(self) -> float:
        """The overall score in [0, 1] (1 is best); NaN when nothing could be measured."""
        return float("nan") if self._score is None else self._score

    def get_properties(self) -> pd.DataFrame:
        """One row per property: columns ``Property`` and ``Score``."""
        return pd.DataFrame(
            {
                "Property": list(self._properties),
                "Score": [float("nan") if v is None else v for v in self._properties.values()],
            }
        )

    @property
    def detail_names(self) -> list[str]:
        """The names accepted by :meth:`get_details`."""
        return list(self._details)

    def get_details(self, property_name: str) -> pd.DataFrame:
        """The details table of a property or supplementary metric (a copy)."""
        if property_name not in self._details:
            raise ParameterError(
                f"The 'property_name' parameter of {type(self).__name__}.get_details must be one "
                f"of {', '.join(map(repr, self._details))}. Got {property_name!r}."
            )
        return self._details[property_name].copy()

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as plain JSON values (no numpy types; NaN becomes None)."""
        return jsonable(
            {
                "report": self.name,
                "score": self._score,
                "properties": [{"property": k, "score": v} for k, v in self._properties.items()],
                "metrics": self.metrics,
                "details": {k: v for k, v in self._details.items()},
                "sampling": self.sampling,
                "notes": self.notes,
            }
        )

    def __repr__(self) -> str:
        props = ", ".join(
            f"{k}={'n/a' if v is None else f'{v:.3f}'}" for k, v in self._properties.items()
        )
        score = "n/a" if self._score is None else f"{self._score:.3f}"
        return f"{type(self).__name__}(score={score}; {props})"


class DiagnosticReport(BaseReport):
    """Data validity and structure: is the synthetic data well formed? (score = mean of both)."""

    name = "diagnostic"
    title = "Diagnostic"
    question = "Is the synthetic table well formed (valid values, ranges, categories)?"


class QualityReport(BaseReport):
    """Fidelity: Column Shapes and Column Pair Trends as SDMetrics defines them (score = mean),
    with statistical tests, moments, distances and detection as supplementary details."""

    name = "quality"
    title = "Fidelity"
    question = "Does it look like the real data, column by column and in pairs of columns?"


class UtilityReport(BaseReport):
    """Machine-learning utility: train on synthetic, test on real (TSTR) against TRTR."""

    name = "utility"
    title = "ML utility"
    question = (
        "Does a model trained on synthetic patients predict real patients as well as "
        "one trained on real patients?"
    )


class PrivacyReport(BaseReport):
    """Privacy risk against a real holdout; 1 means no measurable risk.

    The score is the lowest (worst) property score, since one open door is enough;
    ``statement`` says what the figures mean in one paragraph.
    """

    name = "privacy"
    title = "Privacy"
    question = (
        "Could someone learn about a real patient from the synthetic data? 1 means no "
        "measurable risk."
    )

    def __init__(self, *args: Any, statement: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: One paragraph for a data-protection officer: the conclusion, the figures, their meaning.
        self.statement = statement

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`BaseReport.to_dict`, with the ``statement``."""
        return {**super().to_dict(), "statement": self.statement}

    @property
    def risks(self) -> pd.DataFrame:
        """One row per risk: value, verdict and what to do."""
        return self.get_details("Risks")
