"""Evaluation: diagnostics, fidelity, ML utility and privacy risk; HTML and JSON reports; the
registry of metrics (``register_metric``, ``get_metric``, ``metrics``, ``metric_table``).

Typical use (``real`` trained the model, ``holdout`` did not)::

    from clinsynth.evaluation import evaluate
    result = evaluate(real, synthetic, metadata, holdout=holdout, target="outcome")
    result.save_html("report.html")
    result.save_json("report.json")

The names are imported on first use (PEP 562): the metric registry is read by the synthesizers
without loading the report's plotting and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.evaluation._dask import evaluate_quality_dask
    from clinsynth.evaluation._diagnostic import run_diagnostic
    from clinsynth.evaluation._evaluate import EvaluationResult, evaluate
    from clinsynth.evaluation._metrics import (
        Metric,
        get_metric,
        metric_table,
        metrics,
        register_metric,
        unregister_metric,
    )
    from clinsynth.evaluation._multi_report import MultiTableReport
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

_LAZY = {
    "BaseReport": "_reports",
    "DiagnosticReport": "_reports",
    "EvaluationResult": "_evaluate",
    "Metric": "_metrics",
    "MultiTableReport": "_multi_report",
    "PrivacyReport": "_reports",
    "QualityReport": "_reports",
    "UtilityReport": "_reports",
    "evaluate": "_evaluate",
    "evaluate_privacy": "_privacy",
    "evaluate_quality": "_quality",
    "evaluate_quality_dask": "_dask",
    "evaluate_sequences": "_sequences",
    "evaluate_utility": "_utility",
    "get_metric": "_metrics",
    "metric_table": "_metrics",
    "metrics": "_metrics",
    "register_metric": "_metrics",
    "unregister_metric": "_metrics",
    "run_diagnostic": "_diagnostic",
}
__all__ = [
    "BaseReport",
    "DiagnosticReport",
    "EvaluationResult",
    "Metric",
    "MultiTableReport",
    "PrivacyReport",
    "QualityReport",
    "UtilityReport",
    "evaluate",
    "evaluate_privacy",
    "evaluate_quality",
    "evaluate_quality_dask",
    "evaluate_sequences",
    "evaluate_utility",
    "get_metric",
    "metric_table",
    "metrics",
    "register_metric",
    "run_diagnostic",
    "unregister_metric",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clinsynth.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"clinsynth.evaluation.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
