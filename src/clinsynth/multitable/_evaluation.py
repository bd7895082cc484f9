"""``evaluate_multi_table``: are the keys valid, and does the schema look like the real one?

**Diagnostic** (validity; 1 is best):

- *Primary Keys*: share of synthetic rows whose primary key is present and unique, per table;
- *Referential Integrity*: share of non-empty foreign keys that match a parent row, per
  relationship;
- *Cardinality Bounds*: share of synthetic parents whose number of children lies within the
  real minimum and maximum, per relationship.

**Quality** (fidelity; the score is the mean of the four):

- *Column Shapes* and *Column Pair Trends*: the single-table scores of
  :func:`clinsynth.evaluation.evaluate_quality`, averaged over tables;
- *Cardinality*: per relationship, 1 minus the Kolmogorov-Smirnov distance between the real and
  synthetic distributions of the number of children per parent row;
- *Intertable Trends*: per relationship, for every parent column and every child aggregate
  (number of children, mean of each numerical child column, share of each binary or most frequent
  child category), 1 - |r_real - r_synthetic| / 2 with r the Spearman correlation over parent rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clinsynth._utils import ProgressCallback, report
from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation._common import nanmean
from clinsynth.evaluation._multi_report import MultiTableReport, trend_matrices
from clinsynth.evaluation._plots import cardinality_data, figure_data
from clinsynth.evaluation._reports import DiagnosticReport, QualityReport
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.multitable._dates import to_ns
from clinsynth.multitable._persist import jsonable
from clinsynth.multitable._sequence import sequence_figures

#: Parent rows used for the intertable correlations.
_MAX_PARENTS = 200_000


def evaluate_multi_table(
    real_tables: dict[str, pd.DataFrame],
    synthetic_tables: dict[str, pd.DataFrame],
    metadata: Metadata,
    *,
    per_table: bool = True,
    max_plot_columns: int = 10,
    random_state: int | None = 0,
    progress: ProgressCallback | None = None,
    model: Any = None,
) -> MultiTableReport:
    """Compare a synthetic schema with the real one: keys, cardinality, per-table fidelity and
    parent-child correlations.

    Parameters
    ----------
    real_tables, synthetic_tables : dict of str to DataFrame
        The same tables (those of ``metadata``).
    metadata : Metadata
        Tables, keys and relationships.
    per_table : bool
        Run :func:`clinsynth.evaluation.evaluate_quality` on every table (Column Shapes and
        Column Pair Trends); False keeps only the relational properties (faster).
    max_plot_columns : int
        Columns per table drawn with their own plots in the HTML report (those whose shapes
        differ most).
    random_state : int, optional
        Seed of the subsamples of the per-table reports.
    progress : callable, optional
        ``progress(total, completed, message)``.
    model : HierarchicalSynthesizer, optional
        The fitted schema model: its privacy report (the patient-level guarantee of a model
        fitted with ``epsilon``) goes in ``info["privacy"]`` and the HTML report.

    Returns
    -------
    MultiTableReport

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> p = pd.DataFrame({"pid": np.arange(100), "age": rng.integers(20, 90, 100)})
    >>> v = pd.DataFrame({"vid": np.arange(300), "pid": rng.integers(0, 100, 300),
    ...                   "cost": rng.gamma(2.0, 100.0, 300)})
    >>> real = {"patients": p, "visits": v}
    >>> md = Metadata.detect_from_dataframes(real)
    >>> report = evaluate_multi_table(real, real, md)
    >>> round(report.get_score(), 3), report.diagnostic.get_score()
    (1.0, 1.0)
    """
    if not isinstance(metadata, Metadata):
        raise ParameterError(
            "The 'metadata' parameter of evaluate_multi_table must be a Metadata. Got "
            f"{type(metadata).__name__}."
        )
    problems = []
    for label, tables in (("real_tables", real_tables), ("synthetic_tables", synthetic_tables)):
        if not isinstance(tables, dict):
            raise DataError(f"{label} must be a dict of table name to DataFrame.")
        missing = [t for t in metadata.tables if not isinstance(tables.get(t), pd.DataFrame)]
        if missing:
            problems.append(f"{label} lacks tables {missing}.")
    if problems:
        raise DataError.from_problems("Cannot evaluate the schema", problems)
    rels = [r for r in metadata.relationships if r["parent_table_name"] != r["child_table_name"]]
    steps = len(metadata.tables) * per_table + 2
    started = time.perf_counter()
    report(progress, steps, 0, "Keys and cardinality")
    diagnostic = _diagnostic(synthetic_tables, real_tables, metadata, rels)
    cardinality, cardinality_figures = _cardinality(real_tables, synthetic_tables, rels)
    report(progress, steps, 1, "Intertable trends")
    trends = _intertable_trends(real_tables, synthetic_tables, metadata, rels)
    table_reports: dict[str, QualityReport] = {}
    table_figures: dict[str, dict] = {}
    notes: list[str] = []
    figure_notes: dict[str, list[str]] = {}
    if per_table:
        for i, name in enumerate(metadata.tables):
            report(progress, steps, 2 + i, f"Table '{name}'")
            compared = _compare_table(
                name,
                real_tables[name],
                synthetic_tables[name],
                metadata,
                random_state,
                max_plot_columns,
            )
            if isinstance(compared, str):
                notes.append(compared)
                continue
            table_reports[name], table_figures[name], figure_notes[name] = compared
            sequences = sequence_figures(name, real_tables, synthetic_tables, metadata)
            if sequences is not None:
                table_figures[name]["sequences"] = sequences
    report(progress, steps, steps, "done")
    shapes = {n: _property(r, "Column Shapes") for n, r in table_reports.items()}
    pairs = {n: _property(r, "Column Pair Trends") for n, r in table_reports.items()}
    properties = {
        "Column Shapes": _mean(list(shapes.values())) if per_table else None,
        "Column Pair Trends": _mean(list(pairs.values())) if per_table else None,
        "Cardinality": _mean(cardinality["Score"].tolist()) if len(cardinality) else None,
        "Intertable Trends": _mean(trends["Score"].tolist()) if len(trends) else None,
    }
    if not per_table:
        properties = {
            k: v for k, v in properties.items() if k not in ("Column Shapes", "Column Pair Trends")
        }
    details = {
        "Cardinality": cardinality,
        "Intertable Trends": trends,
        "Tables": pd.DataFrame(
            {
                "Table": list(shapes),
                "Column Shapes": list(shapes.values()),
                "Column Pair Trends": list(pairs.values()),
            }
        ),
    }
    rows = {
        name: {"real": len(real_tables[name]), "synthetic": len(synthetic_tables[name])}
        for name in metadata.tables
    }
    metrics = {"diagnostic_score": diagnostic.get_score(), "rows": rows}
    figures = {
        "cardinality": cardinality_figures,
        "intertable_trends": trend_matrices(trends),
        "tables": table_figures,
    }
    info = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "relationships": len(rels),
        "per_table": per_table,
        "random_state": random_state,
        "seconds": round(time.perf_counter() - started, 3),
        "figure_notes": figure_notes,
        **({"privacy": jsonable(model.get_privacy_report())} if model is not None else {}),
    }
    return MultiTableReport(
        properties,
        details,
        diagnostic=diagnostic,
        table_reports=table_reports,
        metrics=metrics,
        notes=notes,
        figures=figures,
        info=info,
    )


def _compare_table(
    name: str,
    real: pd.DataFrame,
    synth: pd.DataFrame,
    metadata: Metadata,
    random_state: int | None,
    max_plot_columns: int,
) -> tuple[QualityReport, dict, list[str]] | str:
    """One table's quality report and figure data, or why it was not compared."""
    from clinsynth.evaluation import evaluate_quality

    if len(real) == 0 or len(synth) == 0:
        return f"Table '{name}' is empty in one of the schemas; not compared."
    single = Metadata({name: _statistical_only(metadata.tables[name], real)})
    table = single.tables[name]
    if not table.columns:
        return f"Table '{name}' has only keys or personal data; not compared."
    columns = list(table.columns)
    result = evaluate_quality(
        real[columns], synth[columns], single, detection=False, random_state=random_state
    )
    figures, notes = figure_data(
        real[columns],
        synth[columns],
        table,
        shapes=result.get_details("Column Shapes"),
        pairs=result.get_details("Column Pair Trends"),
        max_columns=max_plot_columns,
    )
    return result, figures, notes


def _property(report: QualityReport, name: str) -> float | None:
    props = report.get_properties().set_index("Property")["Score"]
    return float(props[name]) if name in props.index and pd.notna(props[name]) else None


# --------------------------------------------------------------------------- diagnostic
def _diagnostic(
    synth: dict[str, pd.DataFrame],
    real: dict[str, pd.DataFrame],
    md: Metadata,
    rels: list[dict],
) -> DiagnosticReport:
    keys = []
    for name, table in md.tables.items():
        pk = table.primary_key
        if not pk or pk not in synth[name].columns:
            continue
        values = synth[name][pk]
        bad = values.isna() | values.duplicated(keep=False)
        keys.append(
            {
                "Table": name,
                "Column": pk,
                "Rows": len(values),
                "Missing": int(values.isna().sum()),
                "Duplicated": int(values.duplicated(keep=False).sum()),
                "Score": 1.0 - float(bad.mean()) if len(values) else 1.0,
            }
        )
    integrity, bounds = [], []
    for rel in rels:
        parent, child = synth[rel["parent_table_name"]], synth[rel["child_table_name"]]
        pk, fk = rel["parent_primary_key"], rel["child_foreign_key"]
        values = child[fk]
        present = values.notna()
        orphans = present & ~values.isin(parent[pk].dropna())
        integrity.append(
            {
                "Parent": rel["parent_table_name"],
                "Child": rel["child_table_name"],
                "Foreign Key": fk,
                "Keys": int(present.sum()),
                "Orphans": int(orphans.sum()),
                "Score": 1.0 - float(orphans.sum() / present.sum()) if present.any() else 1.0,
            }
        )
        real_counts = _children_per_parent(real, rel)
        synth_counts = _children_per_parent(synth, rel)
        inside = (
            (synth_counts >= real_counts.min()) & (synth_counts <= real_counts.max())
            if len(real_counts)
            else np.ones(len(synth_counts), dtype=bool)
        )
        bounds.append(
            {
                "Parent": rel["parent_table_name"],
                "Child": rel["child_table_name"],
                "Foreign Key": fk,
                "Real Range": f"{int(real_counts.min()) if len(real_counts) else 0}-"
                f"{int(real_counts.max()) if len(real_counts) else 0}",
                "Synthetic Range": f"{int(synth_counts.min()) if len(synth_counts) else 0}"
                f"-{int(synth_counts.max()) if len(synth_counts) else 0}",
                "Score": float(inside.mean()) if len(inside) else 1.0,
            }
        )
    frames = {
        "Primary Keys": pd.DataFrame(keys),
        "Referential Integrity": pd.DataFrame(integrity),
        "Cardinality Bounds": pd.DataFrame(bounds),
    }
    properties = {
        name: _mean(df["Score"].tolist()) if len(df) else None for name, df in frames.items()
    }
    return DiagnosticReport(properties, frames)


def _children_per_parent(tables: dict[str, pd.DataFrame], rel: dict) -> np.ndarray:
    parent = tables[rel["parent_table_name"]][rel["parent_primary_key"]]
    child = tables[rel["child_table_name"]][rel["child_foreign_key"]]
    index = pd.Index(parent.dropna())
    pos = index.get_indexer(child.dropna())
    return np.bincount(pos[pos >= 0], minlength=len(index))


# --------------------------------------------------------------------------- quality
def _cardinality(real: dict, synth: dict, rels: list[dict]) -> tuple[pd.DataFrame, list[dict]]:
    """The children-per-parent statistics per relationship, and their histograms."""
    rows, figures = [], []
    for rel in rels:
        r, s = _children_per_parent(real, rel), _children_per_parent(synth, rel)
        if len(r) == 0 or len(s) == 0:
            continue
        # only the statistic is used; the exact p-value can fail (and warn) on ties
        ks = float(stats.ks_2samp(r, s, method="asymp").statistic)
        rows.append(
            {
                "Parent": rel["parent_table_name"],
                "Child": rel["child_table_name"],
                "Foreign Key": rel["child_foreign_key"],
                "Real Mean": float(r.mean()),
                "Synthetic Mean": float(s.mean()),
                "Real SD": float(r.std()),
                "Synthetic SD": float(s.std()),
                "Real Max": int(r.max()),
                "Synthetic Max": int(s.max()),
                "KS Statistic": ks,
                "Score": 1.0 - ks,
            }
        )
        figures.append(
            {
                "parent": rel["parent_table_name"],
                "child": rel["child_table_name"],
                "foreign_key": rel["child_foreign_key"],
                **cardinality_data(r, s),
            }
        )
    return pd.DataFrame(rows), figures


def _intertable_trends(real: dict, synth: dict, md: Metadata, rels: list[dict]) -> pd.DataFrame:
    rows = []
    for rel in rels:
        ptable, ctable = md.tables[rel["parent_table_name"]], md.tables[rel["child_table_name"]]
        rp, sp = _parent_features(real, rel, ptable, fit=None)
        sp, _ = _parent_features(synth, rel, ptable, fit=sp)
        rc, levels = _child_aggregates(real, rel, ctable, levels=None)
        sc, _ = _child_aggregates(synth, rel, ctable, levels=levels)
        for pcol in rp.columns:
            if pcol not in sp.columns:
                continue
            for ccol in rc.columns:
                if ccol not in sc.columns:
                    continue
                r_real = _spearman(rp[pcol].to_numpy(), rc[ccol].to_numpy())
                r_syn = _spearman(sp[pcol].to_numpy(), sc[ccol].to_numpy())
                if r_real is None:
                    continue
                r_syn = 0.0 if r_syn is None else r_syn
                rows.append(
                    {
                        "Parent": rel["parent_table_name"],
                        "Child": rel["child_table_name"],
                        "Parent Column": pcol,
                        "Child Aggregate": ccol,
                        "Real Correlation": r_real,
                        "Synthetic Correlation": r_syn,
                        "Score": 1.0 - abs(r_real - r_syn) / 2,
                    }
                )
    return pd.DataFrame(rows)


def _parent_features(
    tables: dict, rel: dict, table: TableMetadata, fit: Any
) -> tuple[pd.DataFrame, Any]:
    """Numeric view of the parent's statistical columns (binary indicator of the most frequent
    real level for categories), first ``_MAX_PARENTS`` rows."""
    df = tables[rel["parent_table_name"]].iloc[:_MAX_PARENTS]
    out = {}
    top = {} if fit is None else fit
    for column, spec in table.columns.items():
        if column not in df.columns or column == table.primary_key:
            continue
        values = _numeric(df[column], spec, top, column)
        if values is not None:
            out[column] = values
    return pd.DataFrame(out, index=df.index), top


def _numeric(series: pd.Series, spec: dict, top: dict, column: str) -> np.ndarray | None:
    sdtype = spec.get("sdtype")
    if sdtype == "numerical":
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if sdtype == "datetime":
        ns, ok = to_ns(series, spec.get("datetime_format"))
        return np.where(ok, ns.astype(np.float64), np.nan)
    if sdtype in ("categorical", "boolean", "ordinal"):
        text = series.astype("string")
        if column not in top:
            counts = text.value_counts()
            if len(counts) < 2:
                return None
            top[column] = str(counts.index[0])
        return (text == top[column]).astype("float64").to_numpy(na_value=np.nan)
    return None


def _child_aggregates(
    tables: dict, rel: dict, table: TableMetadata, levels: dict | None
) -> tuple[pd.DataFrame, dict]:
    """Per parent row: the number of children, the mean of each numerical child column and the
    share of the most frequent (real) level of each categorical child column."""
    parent = tables[rel["parent_table_name"]][rel["parent_primary_key"]].iloc[:_MAX_PARENTS]
    child = tables[rel["child_table_name"]]
    index = pd.Index(parent)
    pos = index.get_indexer(child[rel["child_foreign_key"]])
    keep = pos >= 0
    n = len(index)
    counts = np.bincount(pos[keep], minlength=n).astype(np.float64)
    out = {"(number of children)": counts}
    levels = {} if levels is None else levels
    for column, spec in table.columns.items():
        if column == rel["child_foreign_key"] or column == table.primary_key:
            continue
        values = _numeric(child[column], spec, levels, column) if column in child.columns else None
        if values is None or spec.get("sdtype") == "datetime":
            continue
        v = values[keep]
        ok = ~np.isnan(v)
        sums = np.bincount(pos[keep][ok], weights=v[ok], minlength=n)
        num = np.bincount(pos[keep][ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            label = (
                f"mean {column}"
                if spec.get("sdtype") == "numerical"
                else (f"share {column}={levels[column]}")
            )
            out[label] = np.where(num > 0, sums / np.maximum(num, 1), np.nan)
    return pd.DataFrame(out), levels


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = ~np.isnan(a) & ~np.isnan(b)
    if ok.sum() < 10:
        return None
    a, b = a[ok], b[ok]
    if np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(stats.spearmanr(a, b).statistic)


def _statistical_only(table: TableMetadata, df: pd.DataFrame) -> TableMetadata:
    """The table's statistical columns that vary in the real data (keys, personal data and
    constant columns left out: a constant column has no shape or trend to compare)."""
    keep = {
        c: dict(s)
        for c, s in table.columns.items()
        if s.get("sdtype") in ("numerical", "datetime", "categorical", "boolean", "ordinal")
        and c in df.columns
        and df[c].nunique(dropna=True) > 1
    }
    return TableMetadata(keep)


def _mean(values: list[float | None]) -> float | None:
    return nanmean([v for v in values if v is not None and not np.isnan(v)])
