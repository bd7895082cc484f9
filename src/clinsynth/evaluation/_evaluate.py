"""``evaluate``: every evaluation the inputs allow, bundled in one :class:`EvaluationResult`."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from clinsynth._utils import ProgressCallback, report
from clinsynth._version import __version__
from clinsynth.errors import DataError
from clinsynth.evaluation._common import (
    check_frame,
    jsonable,
    resolve_table,
    score_verdict,
    single_threaded,
    statistical_columns,
)
from clinsynth.evaluation._diagnostic import run_diagnostic
from clinsynth.evaluation._metrics import metric_table
from clinsynth.evaluation._plots import figure_data
from clinsynth.evaluation._privacy import evaluate_privacy
from clinsynth.evaluation._quality import evaluate_quality
from clinsynth.evaluation._reports import (
    BaseReport,
    DiagnosticReport,
    PrivacyReport,
    QualityReport,
    UtilityReport,
)
from clinsynth.evaluation._utility import evaluate_utility
from clinsynth.io._atomic import atomic_write_text
from clinsynth.metadata import Metadata

_ORDER = ("diagnostic", "quality", "utility", "privacy")
#: Each section's title ("Fidelity" for quality), from its report class.
_KINDS = (DiagnosticReport, QualityReport, UtilityReport, PrivacyReport)
_TITLES = {kind.name: kind.title for kind in _KINDS}
_RANK = {"low": 0, "not measured": 0, "medium": 1, "high": 2}


class EvaluationResult:
    """The reports of one evaluation, the figure data and how it was run.

    Attributes
    ----------
    diagnostic, quality, utility, privacy : report or None
        None when the inputs did not allow it (see ``info["skipped"]``).
    figures : dict
        Plain data of every figure (histograms, heatmaps, loss curve...).
    info : dict
        Rows and columns, timings per section (seconds), sampling, notes, model.
    """

    def __init__(
        self,
        reports: dict[str, BaseReport | None],
        figures: dict[str, Any],
        info: dict[str, Any],
    ) -> None:
        self.diagnostic: DiagnosticReport | None = reports.get("diagnostic")  # type: ignore[assignment]
        self.quality: QualityReport | None = reports.get("quality")  # type: ignore[assignment]
        self.utility: UtilityReport | None = reports.get("utility")  # type: ignore[assignment]
        self.privacy: PrivacyReport | None = reports.get("privacy")  # type: ignore[assignment]
        self.figures = figures
        self.info = info

    @property
    def reports(self) -> dict[str, BaseReport]:
        """The reports that were computed, by name."""
        pairs = {name: getattr(self, name) for name in _ORDER}
        return {k: v for k, v in pairs.items() if v is not None}

    @staticmethod
    def questions() -> dict[str, str]:
        """The question each section of :meth:`summary` answers, by its title."""
        return {kind.title: kind.question for kind in _KINDS}

    def privacy_verdict(self) -> str:
        """The worst privacy verdict: 'low', 'medium' or 'high' (or 'not measured')."""
        if self.privacy is None:
            return "not measured"
        verdicts = self.privacy.get_details("Risks")["Verdict"].tolist()
        return max(verdicts, key=lambda v: _RANK.get(v, 0), default="not measured")

    def summary(self) -> pd.DataFrame:
        """One row per section: ``Section``, ``Score`` (NaN if not run) and ``Verdict``."""
        rows = []
        title = _TITLES
        for name in _ORDER:
            rep = getattr(self, name)
            if rep is None:
                rows.append((title[name], float("nan"), "not measured"))
                continue
            score = rep.get_score()
            score = None if pd.isna(score) else score
            if name == "privacy":
                level = self.privacy_verdict()
                rows.append((title[name], rep.get_score(), f"{level} risk"))
            elif name == "diagnostic" and any(
                share > 0.01 for share in rep.metrics.get("identifier_copy_share", {}).values()
            ):
                # a copied identifier is a finding whatever the average says
                rows.append((title[name], rep.get_score(), "poor (identifiers copied)"))
            else:
                rows.append((title[name], rep.get_score(), score_verdict(score)))
        return pd.DataFrame(rows, columns=["Section", "Score", "Verdict"])

    def metric_table(self, *, text: bool = False) -> pd.DataFrame:
        """One row per registered metric of the reports computed: its words, value, which way
        is better and its threshold (see :func:`clinsynth.evaluation.metric_table`)."""
        return metric_table(self.reports, text=text)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON values: the summary, the registered metrics' values, the
        reports, the figures' data and the run info."""
        return jsonable(
            {
                "clinsynth_version": __version__,
                "summary": self.summary(),
                "metrics": self.metric_table(),
                "reports": {name: rep.to_dict() for name, rep in self.reports.items()},
                "figures": self.figures,
                "info": self.info,
            }
        )

    def save_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    def save_html(self, path: str | os.PathLike) -> None:
        """Write the self-contained HTML report (plotly.js inlined once; atomically)."""
        from clinsynth.evaluation._html import render_html

        atomic_write_text(path, render_html(self))

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={r.get_score():.3f}" for k, r in self.reports.items())
        return f"EvaluationResult({parts})"


def _model_info(model: Any) -> dict | None:
    if model is None:
        return None
    info: dict[str, Any] = {"class": type(model).__name__}
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        try:
            info["params"] = jsonable(get_params())
        except TypeError:  # a get_params that needs arguments is not the sklearn one
            pass
    privacy = getattr(model, "get_privacy_report", None)
    if callable(privacy):  # the budget travels with the model into the report
        try:
            info["privacy"] = jsonable(privacy())
        except Exception as exc:  # an unfitted model has no report; say so instead of failing
            info["privacy"] = {"error": f"{type(exc).__name__}: {exc}"}
    board = getattr(model, "leaderboard_", None)
    if isinstance(board, pd.DataFrame):  # the AutoSynthesizer's comparison of candidates
        info["leaderboard"] = jsonable(board.to_dict(orient="records"))
    return info


@single_threaded
def _is_sequence_table(table: Any, real: pd.DataFrame, synthetic: pd.DataFrame) -> bool:
    """The table names its sequence key and index, both in the real and synthetic data."""
    words = (table.sequence_key, table.sequence_index)
    return None not in words and all(c in real.columns and c in synthetic.columns for c in words)


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata | None = None,
    *,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    model: Any = None,
    sensitive_columns: list[str] | None = None,
    detection: bool = True,
    max_plot_columns: int = 30,
    random_state: int | None = 0,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Run every evaluation that the given inputs allow.

    Always: the diagnostic and fidelity (with detection unless ``detection=False``). With a
    ``holdout`` (real records the model never saw): privacy risk, and with a ``target`` also ML
    utility. With a ``model`` that has ``get_loss_values()``: its training loss curve.

    Parameters
    ----------
    real : DataFrame
        The real data the synthesizer was trained on.
    synthetic : DataFrame
    metadata : Metadata, optional
        Detected from ``real`` when not given.
    holdout : DataFrame, optional
    target : str, optional
        Column to predict for ML utility.
    model : object, optional
        The fitted synthesizer (for its loss curve and parameters).
    sensitive_columns : list of str, optional
        Columns to measure attribute-inference risk on.
    detection : bool
        Run the detection classifiers (the slowest fidelity part).
    max_plot_columns : int
        Columns shown with their own plots (those that differ most).
    random_state : int, optional
        Seed of every subsample and model, for reproducible reports.
    progress : callable, optional
        ``progress(total, completed, message)`` per section.

    Returns
    -------
    EvaluationResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def draw(n):
    ...     return pd.DataFrame({"age": rng.normal(60, 10, n), "sex": rng.choice(["F", "M"], n)})
    >>> result = evaluate(draw(200), draw(200), holdout=draw(200), detection=False)
    >>> list(result.summary()["Section"])
    ['Diagnostic', 'Fidelity', 'ML utility', 'Privacy']
    """
    real = check_frame(real, "real")
    synthetic = check_frame(synthetic, "synthetic")
    if metadata is None:
        metadata = Metadata.detect_from_dataframe(real)
    table = resolve_table(metadata)
    # Cells holding a column's "missing_values" markers (".", "NA", ...) are missing values.
    from clinsynth.metadata._validate import clear_missing_values

    real, synthetic = clear_missing_values(real, table), clear_missing_values(synthetic, table)
    if holdout is not None:
        holdout = clear_missing_values(holdout, table)
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    reports: dict[str, BaseReport | None] = {}
    total = 5

    def timed(name: str, step: int, func, *args, **kwargs):
        report(progress, total, step, name)
        start = time.perf_counter()
        out = func(*args, **kwargs)
        timings[name] = round(time.perf_counter() - start, 3)
        return out

    reports["diagnostic"] = timed("diagnostic", 0, run_diagnostic, real, synthetic, table)
    if statistical_columns(table):
        reports["quality"] = timed(
            "quality",
            1,
            evaluate_quality,
            real,
            synthetic,
            table,
            holdout=holdout,
            detection=detection,
            logic=True,
            importance=True,
            random_state=random_state,
        )
    else:
        skipped["quality"] = "The metadata has no statistical column to compare."
    if holdout is None:
        skipped["privacy"] = (
            "No holdout was given. Keep some real records out of training and pass them as "
            "holdout to measure privacy risk."
        )
        skipped["utility"] = "No holdout was given (ML utility is tested on real holdout records)."
    else:
        holdout = check_frame(holdout, "holdout")
        if target is None:
            skipped["utility"] = "No target column was given (the column a model should predict)."
        else:
            try:
                reports["utility"] = timed(
                    "utility",
                    2,
                    evaluate_utility,
                    real,
                    synthetic,
                    table,
                    target=target,
                    holdout=holdout,
                    random_state=random_state,
                )
            except DataError as exc:
                # e.g. a synthetic table whose target is empty: the report says why, in place
                skipped["utility"] = f"ML utility could not be measured: {exc}"
        if statistical_columns(table):
            reports["privacy"] = timed(
                "privacy",
                3,
                evaluate_privacy,
                real,
                synthetic,
                table,
                holdout=holdout,
                sensitive_columns=sensitive_columns,
                random_state=random_state,
            )
    quality = reports.get("quality")
    figures, notes = timed(
        "figures",
        4,
        figure_data,
        real,
        synthetic,
        table,
        shapes=quality.get_details("Column Shapes") if quality else None,
        pairs=quality.get_details("Column Pair Trends") if quality else None,
        max_columns=max_plot_columns,
        model=model,
    )
    if _is_sequence_table(table, real, synthetic):
        from clinsynth.evaluation._sequences import sequence_report

        figures["sequences"] = timed(
            "sequences", 4, sequence_report, real, synthetic, table, seed=random_state or 0
        )
    privacy = reports.get("privacy")
    if privacy is not None:
        figures["dcr_histogram"] = jsonable(privacy.get_details("DCR Histogram"))
    if quality is not None and "Alpha Precision Beta Recall" in quality.detail_names:
        figures["alpha_precision"] = jsonable(quality.get_details("Alpha Precision Beta Recall"))
    sampling = {name: rep.sampling for name, rep in reports.items() if rep and rep.sampling}
    info = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": {
            "real": len(real),
            "synthetic": len(synthetic),
            "holdout": None if holdout is None else len(holdout),
        },
        "columns": len(table.columns),
        "statistical_columns": len(statistical_columns(table)),
        "target": target,
        "sensitive_columns": list(sensitive_columns or []),
        "random_state": random_state,
        "timings_s": timings,
        "sampling": sampling,
        "skipped": skipped,
        "notes": notes,
        "model": _model_info(model),
    }
    report(progress, total, total, "Evaluation done")
    return EvaluationResult(reports, figures, info)
