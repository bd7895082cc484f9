"""The multi-table report object: scores, details, figure data, and its HTML and JSON files.

``clinsynth.multitable.evaluate_multi_table`` fills it; it lives here, beside the single-table
reports and its HTML (``_html_multi.py``), so that evaluation never imports multitable.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd

from clinsynth._version import __version__
from clinsynth.evaluation._common import jsonable
from clinsynth.evaluation._reports import BaseReport, DiagnosticReport, QualityReport
from clinsynth.io._atomic import atomic_write_text

#: Parent columns and child aggregates drawn in one intertable-trend heatmap.
MAX_TREND_AXIS = 30


class MultiTableReport(BaseReport):
    """Quality of a synthetic schema, with its diagnostic and the per-table reports.

    ``get_score()`` is the quality score; ``diagnostic`` holds the key checks
    (``diagnostic.get_score()`` is 1 for a valid schema); ``table_reports`` holds each table's
    :class:`~clinsynth.evaluation.QualityReport`. ``get_details(name)`` accepts the names of the
    quality and diagnostic properties. ``figures`` holds the plain data of every figure of the
    HTML report; :meth:`save_html` and :meth:`save_json` write the report like
    :class:`~clinsynth.evaluation.EvaluationResult` does for one table.
    """

    name = "multi_table"
    title = "Multi-table fidelity"

    def __init__(
        self,
        properties: dict[str, float | None],
        details: dict[str, pd.DataFrame],
        *,
        diagnostic: DiagnosticReport,
        table_reports: dict[str, QualityReport],
        metrics: dict[str, Any] | None = None,
        notes: list[str] | None = None,
        figures: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            properties, {**details, **diagnostic._details}, metrics=metrics, notes=notes
        )
        self.diagnostic = diagnostic
        self.table_reports = dict(table_reports)
        self.figures: dict[str, Any] = dict(figures or {})
        self.info: dict[str, Any] = dict(info or {})

    def get_properties(self) -> pd.DataFrame:
        """Quality and diagnostic properties: columns ``Section``, ``Property``, ``Score``."""
        quality = super().get_properties().assign(Section="quality")
        diag = self.diagnostic.get_properties().assign(Section="diagnostic")
        return pd.concat([quality, diag], ignore_index=True)[["Section", "Property", "Score"]]

    def diagnostic_passed(self) -> bool:
        """True when every primary key is present and unique and no foreign key is an orphan
        (what the synthesizer guarantees; the cardinality bounds are a warning, not a failure)."""
        keys = self.diagnostic.get_details("Primary Keys")
        links = self.diagnostic.get_details("Referential Integrity")
        bad_keys = len(keys) and (keys["Missing"].sum() + keys["Duplicated"].sum()) > 0
        orphans = len(links) and links["Orphans"].sum() > 0
        return not (bad_keys or orphans)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON values: scores, details, per-table reports, figure data."""
        out = super().to_dict()
        out["clinsynth_version"] = __version__
        out["diagnostic"] = self.diagnostic.to_dict()
        out["diagnostic_passed"] = self.diagnostic_passed()
        out["tables"] = {name: r.to_dict() for name, r in self.table_reports.items()}
        out["figures"] = self.figures
        out["info"] = self.info
        return jsonable(out)

    def save_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    def save_html(self, path: str | os.PathLike) -> None:
        """Write the self-contained HTML report (plotly.js inlined once; atomically): the key
        diagnostic, cardinality per relationship, parent-child trends and each table's fidelity."""
        from clinsynth.evaluation._html_multi import render_multi_table_html

        atomic_write_text(path, render_multi_table_html(self))


def trend_matrices(trends: pd.DataFrame) -> list[dict[str, Any]]:
    """Per relationship, the parent-column by child-aggregate matrices of the real and
    synthetic Spearman correlations and of the score (the heatmaps of the report)."""
    out = []
    if trends is None or trends.empty:
        return out
    for (parent, child), group in trends.groupby(["Parent", "Child"], sort=False):
        # The axes keep the pairs that differ most when there are too many to draw.
        worst = group.sort_values("Score", kind="stable")
        rows = list(dict.fromkeys(worst["Parent Column"]))[:MAX_TREND_AXIS]
        cols = list(dict.fromkeys(worst["Child Aggregate"]))[:MAX_TREND_AXIS]
        shape = (len(rows), len(cols))
        mats = {k: np.full(shape, np.nan) for k in ("real", "synthetic", "score")}
        kept = group[group["Parent Column"].isin(rows) & group["Child Aggregate"].isin(cols)]
        i = kept["Parent Column"].map({c: k for k, c in enumerate(rows)}).to_numpy()
        j = kept["Child Aggregate"].map({c: k for k, c in enumerate(cols)}).to_numpy()
        mats["real"][i, j] = kept["Real Correlation"].to_numpy()
        mats["synthetic"][i, j] = kept["Synthetic Correlation"].to_numpy()
        mats["score"][i, j] = kept["Score"].to_numpy()
        out.append(
            {
                "parent": parent,
                "child": child,
                "parent_columns": rows,
                "child_aggregates": cols,
                **mats,
            }
        )
    return jsonable(out)
