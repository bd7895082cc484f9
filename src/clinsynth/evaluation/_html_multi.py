"""The self-contained HTML report of a synthetic schema (several linked tables).

Same page, style and plotly.js as the single-table report (:mod:`clinsynth.evaluation._html`);
the sections are the key diagnostic, the number of children per parent, the parent-child
trends and each table's fidelity, drawn from ``report.figures`` (plain data, also in the JSON).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from clinsynth._version import __version__
from clinsynth.evaluation._common import score_verdict
from clinsynth.evaluation._html import _esc, _fig, _fmt, _notes, _table, page, quality_block
from clinsynth.evaluation._metrics import metric_table
from clinsynth.evaluation._plots import cardinality_figure, matrix_figure

if TYPE_CHECKING:
    from clinsynth.evaluation._multi_report import MultiTableReport

_INTRO = {
    "summary": (
        "This report compares a synthetic (artificial) copy of a database of linked tables "
        "(patients, their visits, the lab results of each visit...) with the real one. Is every "
        "link valid (diagnostic)? Does each parent have a realistic number of children "
        "(cardinality)? Do the children follow their parents as in the real data (parent-child "
        "trends)? Does each table look like the real table (per-table fidelity)? Scores run "
        "from 0 to 1; higher is better."
    ),
    "diagnostic": (
        "Structural checks. Every primary key must be present and unique, and every foreign key "
        "must point to an existing parent row (referential integrity): a lab result whose visit "
        "does not exist breaks a database. The cardinality bounds check that no parent has more "
        "(or fewer) children than any real parent had; values below 1 there are a warning."
    ),
    "cardinality": (
        "How many children each parent row has (visits per patient, results per visit). The bars "
        "give the share of parent rows with 0, 1, 2... children in the real (blue) and synthetic "
        "(orange) data. The score is 1 minus the Kolmogorov-Smirnov distance of the two "
        "distributions (1 = same distribution)."
    ),
    "trends": (
        "Do children follow their parents as in the real data? For every parent column and "
        "every summary of a parent's children (their number, the mean of a numeric column, the "
        "share of a category), the Spearman correlation over parent rows is computed in the real "
        "and in the synthetic data. Score = 1 - |real - synthetic| / 2 (1 = same relationship)."
    ),
    "tables": (
        "Each table on its own, as in the single-table report: Column Shapes compares each "
        "column's distribution, Column Pair Trends how pairs of columns move together. Keys and "
        "personal-data columns are left out (they are regenerated, not learned)."
    ),
}


def _section(key: str, title: str, body: str) -> str:
    intro = _INTRO.get(key)
    explain = f"<div class='explain'>{_esc(intro)}</div>" if intro else ""
    return f"<section id='{key}'><h2>{_esc(title)}</h2>{explain}{body}</section>"


def _banner(report: MultiTableReport) -> str:
    keys = report.diagnostic.get_details("Primary Keys")
    links = report.diagnostic.get_details("Referential Integrity")
    bounds = report.diagnostic.get_details("Cardinality Bounds")
    bad_keys = int(keys["Missing"].sum() + keys["Duplicated"].sum()) if len(keys) else 0
    orphans = int(links["Orphans"].sum()) if len(links) else 0
    out_of_range = bounds[bounds["Score"] < 1.0] if len(bounds) else bounds
    if report.diagnostic_passed():
        text = (
            f"PASS: {len(keys)} primary key(s) present and unique; {len(links)} relationship(s) "
            "with no orphan (100% referential integrity)."
        )
        css = "pass"
    else:
        text = (
            f"FAIL: {bad_keys} missing or duplicated primary key value(s), {orphans} orphan "
            "foreign key(s). The synthetic schema cannot be loaded into a database as it is."
        )
        css = "fail"
    out = f"<div class='banner {css}'>{_esc(text)}</div>"
    if len(out_of_range):
        names = ", ".join(f"{r.Parent} -> {r.Child}" for r in out_of_range.itertuples())
        out += (
            "<div class='banner warn'>"
            + _esc(
                f"Warning: some parents have a number of children outside the real range ({names})."
            )
            + "</div>"
        )
    return out


def _diagnostic_body(report: MultiTableReport) -> str:
    d = report.diagnostic
    return "".join(
        [
            _banner(report),
            _table(d.get_properties()),
            "<h3>Primary keys, per table</h3>",
            _table(d.get_details("Primary Keys")),
            "<h3>Referential integrity, per relationship</h3>",
            _table(d.get_details("Referential Integrity")),
            "<h3>Children per parent within the real range</h3>",
            _table(d.get_details("Cardinality Bounds")),
        ]
    )


def _cardinality_body(report: MultiTableReport) -> str:
    stats = report.get_details("Cardinality")
    parts = [_table(stats)]
    for fig in report.figures.get("cardinality", []):
        title = f"{fig['child']} per {fig['parent']} row ({fig['foreign_key']})"
        parts.append(_fig(cardinality_figure(title, fig)))
    if not report.figures.get("cardinality"):
        parts.append("<p class='muted'>The schema has no relationship between two tables.</p>")
    return "".join(parts)


def _trends_body(report: MultiTableReport) -> str:
    trends = report.get_details("Intertable Trends")
    if trends.empty:
        return "<p class='muted'>No parent column and child summary vary enough to compare.</p>"
    per_rel = (
        trends.groupby(["Parent", "Child"], sort=False)["Score"]
        .agg(["mean", "min", "count"])
        .reset_index()
        .rename(columns={"mean": "Score", "min": "Lowest", "count": "Pairs"})
    )
    worst = trends.sort_values("Score", kind="stable").head(15)
    parts = [
        _table(per_rel),
        "<h3>Parent-child relationships reproduced least well</h3>",
        _table(worst),
    ]
    for m in report.figures.get("intertable_trends", []):
        label = f"{m['parent']} -> {m['child']}"
        parts.append(f"<h3>{_esc(label)}</h3><div class='grid'>")
        for key, title in (("real", "Real"), ("synthetic", "Synthetic")):
            parts.append(
                _fig(
                    matrix_figure(
                        f"{title} correlations",
                        m["child_aggregates"],
                        m["parent_columns"],
                        m[key],
                        zmin=-1,
                        zmax=1,
                        scale="RdBu",
                    )
                )
            )
        parts.append("</div>")
    return "".join(parts)


#: The columns of each table's headline metrics (their words are in the single-table report).
_METRIC_COLUMNS = ["Metric", "Value", "Better", "Threshold"]


def _tables_body(report: MultiTableReport) -> str:
    parts = [_table(report.get_details("Tables")), _notes(report.notes)]
    notes = report.info.get("figure_notes", {})
    for name, rep in report.table_reports.items():
        figs = report.figures.get("tables", {}).get(name, {})
        parts.append(
            f"<section id='table-{_esc(name)}'><h3>Table {_esc(name)}</h3>"
            + _table(metric_table({"quality": rep}, text=True)[_METRIC_COLUMNS])
            + quality_block(rep, figs, notes.get(name, []))
            + _sequences(figs)
            + "</section>"
        )
    if not report.table_reports:
        parts.append("<p class='muted'>Per-table fidelity was not measured (per_table=False).</p>")
    return "".join(parts)


def _sequences(figs: dict) -> str:
    """A sequence child table's section (its events per parent, in time order)."""
    from clinsynth.evaluation._html_sequences import sequence_block

    if not figs.get("sequences"):
        return ""
    return "<h4 class='sequences'>Sequences over time</h4>" + sequence_block(figs["sequences"])


def _guarantee(privacy: dict | None) -> str:
    """The schema model's own protection (``evaluate_multi_table(..., model=...)``): the
    patient-level guarantee and each table's share, or a plain statement that it has none."""
    if not privacy:
        return ""
    if not privacy.get("differential_privacy"):
        return (
            "<h3>Formal guarantee</h3><p>This schema model was not trained with differential "
            "privacy for its patients: there is no formal guarantee.</p>"
        )
    keys = ("guarantee", "privacy_unit", "epsilon", "epsilon_spent", "delta", "budget_split")
    rows = [(k, str(privacy[k])) for k in keys if k in privacy]
    rows += [(f"not covered ({i + 1})", v) for i, v in enumerate(privacy.get("not_covered", []))]
    shares = pd.DataFrame(
        [
            {
                "Table": name,
                "Weight": s.get("weight"),
                "Epsilon": s.get("epsilon"),
                "Epsilon spent": s.get("epsilon_spent"),
                "Delta": s.get("delta"),
                "Rows per patient (cap)": s.get("rows_per_patient"),
            }
            for name, s in (privacy.get("shares") or {}).items()
        ]
    )
    return (
        "<h3>Formal guarantee (differential privacy, per patient)</h3>"
        + _table(pd.DataFrame(rows, columns=["Item", "Value"]))
        + (_table(shares) if len(shares) else "")
    )


def render_multi_table_html(report: MultiTableReport) -> str:
    """The whole multi-table report as one HTML string."""
    info = report.info
    rows = pd.DataFrame(
        [
            {"Table": name, "Real rows": r["real"], "Synthetic rows": r["synthetic"]}
            for name, r in report.metrics.get("rows", {}).items()
        ]
    )
    props = report.get_properties()
    props["Verdict"] = [score_verdict(None if pd.isna(v) else v) for v in props["Score"]]
    header = (
        f"<p class='muted'>Created {_esc(info.get('created', ''))} with clinsynth "
        f"{_esc(__version__)}. Tables: {len(rows)}; relationships: "
        f"{_esc(info.get('relationships', '—'))}. Quality score: "
        f"<b>{_fmt(report.get_score())}</b>; diagnostic score: "
        f"<b>{_fmt(report.diagnostic.get_score())}</b>.</p>"
    )
    body = [
        header,
        _section(
            "summary",
            "Summary",
            _banner(report)
            + _table(props, verdict_col="Verdict")
            + _table(rows)
            + _guarantee(info.get("privacy")),
        ),
        _section("diagnostic", "1. Keys and links (diagnostic)", _diagnostic_body(report)),
        _section("cardinality", "2. Children per parent (cardinality)", _cardinality_body(report)),
        _section("trends", "3. Parent-child trends", _trends_body(report)),
        _section("tables", "4. Each table", _tables_body(report)),
    ]
    return page("Synthetic database evaluation report", "".join(body))
