"""Evaluation: diagnostics, fidelity, ML utility and privacy risk; HTML and JSON reports.

Typical use (``real`` trained the model, ``holdout`` did not)::

    from clinsynth.evaluation import evaluate
    result = evaluate(real, synthetic, metadata, holdout=holdout, target="outcome")
    result.save_html("report.html")
    result.save_json("report.json")
"""

from clinsynth.evaluation._diagnostic import run_diagnostic
from clinsynth.evaluation._evaluate import EvaluationResult, evaluate
from clinsynth.evaluation._privacy import evaluate_privacy
from clinsynth.evaluation._quality import evaluate_quality
from clinsynth.evaluation._reports import (
    BaseReport,
    DiagnosticReport,
    PrivacyReport,
    QualityReport,
    UtilityReport,
)
from clinsynth.evaluation._sequences import evaluate_sequences
from clinsynth.evaluation._utility import evaluate_utility

__all__ = [
    "BaseReport",
    "DiagnosticReport",
    "EvaluationResult",
    "PrivacyReport",
    "QualityReport",
    "UtilityReport",
    "evaluate",
    "evaluate_privacy",
    "evaluate_quality",
    "evaluate_sequences",
    "evaluate_utility",
    "run_diagnostic",
]
