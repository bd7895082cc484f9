"""``evaluate_quality_dask``: the fidelity score of tables larger than memory, on Dask.

The same Column Shapes and Column Pair Trends as :func:`~clinsynth.evaluation.evaluate_quality`
(SDMetrics' definitions, :mod:`clinsynth.evaluation._fidelity`), computed from statistics that
add up over partitions, so no table is ever held whole: each partition of the real and the
synthetic table is read by one task, which returns a few small arrays, and the driver adds
them up. Two passes:

1. per column: rows, missing values, minimum, maximum, sum, whether every value is a whole
   number (continuous columns) and the level counts (discrete columns);
2. per column: a histogram on a grid shared by the two tables (the KS statistic), Pearson's
   sums centred on the first pass's means (every pair of continuous columns, on the rows where
   both are present, as in memory) and the contingency counts of every other pair (numbers in
   SDMetrics' 10 equal-width bins of each table's own range, missing values in the last bin).

What is exact and what is not: the level counts, the correlations and the contingency tables
are the in-memory figures (the in-memory report draws contingency tables from 50,000 rows of
larger tables; here every row counts). The KS statistic is exact for columns of whole numbers
whose range fits the grid (``bins``: one bin per value); for other columns it is read at the
grid's edges, lower than the exact statistic by at most the largest mass of one bin of either
table (the bound is in the details, column "KS bound"). Detection runs in memory on rows drawn
from each table (``max_rows_detection``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from clinsynth._extras import require
from clinsynth.errors import DataError
from clinsynth.evaluation._common import (
    CONTINUOUS,
    Sampling,
    check_positive_int,
    resolve_table,
    single_threaded,
    statistical_columns,
    to_numeric,
)
from clinsynth.evaluation._dask_sources import chunks, frame, sample_task, sources
from clinsynth.evaluation._fidelity import (
    NUM_DISCRETE_BINS,
    PAIR_COLUMNS,
    check_thresholds,
    cramers_v,
    pair_trends_score,
    pearson_from_sums,
    score_metrics,
    shapes_score,
)
from clinsynth.evaluation._metrics import metrics as registered
from clinsynth.evaluation._reports import QualityReport
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.metadata._validate import clear_missing_values

#: Contingency codes of a number: SDMetrics' 10 bins, codes 0..11 (below, bins, max/missing).
_NUM_CODES = NUM_DISCRETE_BINS + 2
#: The key of a missing level in the level counts.
_MISSING = "\x00missing"


def _first_task(source: Any, table: TableMetadata, cont: list[str], disc: list[str]) -> dict:
    parts = [_first(c, table, cont, disc) for c in chunks(source, cont + disc)]
    return _add_first(parts, cont, disc)


def _second_task(source: Any, plan: _Plan, side: str) -> dict:
    return _add_second([_second(c, plan, side) for c in chunks(source, plan.columns)])


# ---------------------------------------------------------------------------- pass 1
def _first(part: pd.DataFrame, table: TableMetadata, cont: list[str], disc: list[str]) -> dict:
    part = clear_missing_values(part, table)
    out: dict[str, Any] = {"rows": len(part)}
    for c in cont:
        x = to_numeric(part[c], table.columns[c])
        x = x[~np.isnan(x)]
        out[c] = (
            len(x),
            float(x.min()) if len(x) else np.inf,
            float(x.max()) if len(x) else -np.inf,
            float(x.sum()),
            bool(np.all(x == np.floor(x))),
        )
    for c in disc:
        counts = part[c].astype(object).value_counts(dropna=False, sort=False)
        out[c] = {(_MISSING if _isna(k) else k): int(v) for k, v in counts.items()}
    return out


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _add_first(parts: list[dict], cont: list[str], disc: list[str]) -> dict:
    total: dict[str, Any] = {"rows": sum(p["rows"] for p in parts)}
    for c in cont:
        stats = [p[c] for p in parts]
        total[c] = (
            sum(s[0] for s in stats),
            min(s[1] for s in stats),
            max(s[2] for s in stats),
            sum(s[3] for s in stats),
            all(s[4] for s in stats),
        )
    for c in disc:
        counts: dict[Any, int] = {}
        for p in parts:
            for k, v in p[c].items():
                counts[k] = counts.get(k, 0) + v
        total[c] = counts
    return total


# ---------------------------------------------------------------------------- pass 2
class _Plan:
    """What the second pass needs from the first: grids, centres, levels and bin edges."""

    def __init__(
        self,
        table: TableMetadata,
        cont: list[str],
        disc: list[str],
        real: dict,
        syn: dict,
        bins: int,
    ) -> None:
        self.table, self.cont, self.disc = table, cont, disc
        self.grids: dict[str, np.ndarray] = {}
        self.exact: dict[str, bool] = {}
        self.centre = {"real": {}, "syn": {}}  # type: dict[str, dict[str, float]]
        self.edges = {"real": {}, "syn": {}}  # type: dict[str, dict[str, np.ndarray | None]]
        for c in cont:
            n_r, lo_r, hi_r, s_r, int_r = real[c]
            n_s, lo_s, hi_s, s_s, int_s = syn[c]
            lo, hi = min(lo_r, lo_s), max(hi_r, hi_s)
            if not np.isfinite(lo):
                lo = hi = 0.0
            whole = int_r and int_s and hi - lo + 1 <= bins
            self.exact[c] = bool(whole)
            if whole:  # one bin per whole number: the KS statistic is exact
                self.grids[c] = np.arange(lo - 0.5, hi + 1.0, 1.0)
            else:
                self.grids[c] = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
            self.centre["real"][c] = s_r / n_r if n_r else 0.0
            self.centre["syn"][c] = s_s / n_s if n_s else 0.0
            for side, (n, a, b) in (("real", (n_r, lo_r, hi_r)), ("syn", (n_s, lo_s, hi_s))):
                # SDMetrics' discretization on this table's own range (one bin when constant)
                self.edges[side][c] = (
                    np.linspace(a, b, NUM_DISCRETE_BINS + 1) if n and b > a else None
                )
        self.levels = {
            c: {k: i for i, k in enumerate(sorted(set(real[c]) | set(syn[c]), key=repr))}
            for c in disc
        }
        #: Each discrete column's levels as an index (codes by hashing, no loop over rows).
        self.index = {c: pd.Index(list(self.levels[c]), dtype=object) for c in disc}
        self.columns = statistical_columns(table)
        self.size = {
            c: _NUM_CODES if c in self.grids else max(len(self.levels[c]), 1) for c in self.columns
        }


def _codes(part: pd.DataFrame, plan: _Plan, side: str, numeric: dict) -> dict[str, np.ndarray]:
    codes = {}
    for c in plan.columns:
        if c in plan.grids:
            x, edges = numeric[c], plan.edges[side][c]
            if edges is None:
                codes[c] = np.where(np.isnan(x), NUM_DISCRETE_BINS + 1, 1)
            else:
                codes[c] = np.digitize(x, edges)
        else:
            values = part[c].astype(object)
            values = values.where(values.notna(), _MISSING)
            codes[c] = plan.index[c].get_indexer(values).astype(np.int64)
    return codes


def _second(part: pd.DataFrame, plan: _Plan, side: str) -> dict:
    part = clear_missing_values(part, plan.table)
    numeric = {c: to_numeric(part[c], plan.table.columns[c]) for c in plan.cont}
    out: dict[str, Any] = {
        "hist": {
            c: np.histogram(numeric[c][~np.isnan(numeric[c])], bins=plan.grids[c])[0]
            for c in plan.cont
        }
    }
    if plan.cont:
        x = np.column_stack([numeric[c] - plan.centre[side][c] for c in plan.cont])
        present = ~np.isnan(x)
        m = present.astype(np.float64)
        y = np.where(present, x, 0.0)
        out["pearson"] = (m.T @ m, y.T @ m, (y**2).T @ m, y.T @ y)
    codes = _codes(part, plan, side, numeric)
    out["pairs"] = {
        (a, b): np.bincount(
            codes[a] * plan.size[b] + codes[b], minlength=plan.size[a] * plan.size[b]
        )
        for a, b in itertools.combinations(plan.columns, 2)
        if not (a in plan.grids and b in plan.grids)
    }
    return out


def _add_second(parts: list[dict]) -> dict:
    first = parts[0]
    total = {
        "hist": {c: sum(p["hist"][c] for p in parts) for c in first["hist"]},
        "pairs": {k: sum(p["pairs"][k] for p in parts) for k in first["pairs"]},
    }
    if "pearson" in first:
        total["pearson"] = tuple(sum(p["pearson"][i] for p in parts) for i in range(4))
    return total


# ---------------------------------------------------------------------------- the report
def _shapes(plan: _Plan, real1: dict, syn1: dict, real2: dict, syn2: dict) -> pd.DataFrame:
    rows = []
    for c in plan.columns:
        if c in plan.grids:
            h_r, h_s = real2["hist"][c], syn2["hist"][c]
            if h_r.sum() == 0 or h_s.sum() == 0:
                rows.append((c, "KSComplement", np.nan, np.nan))
                continue
            p, q = h_r / h_r.sum(), h_s / h_s.sum()
            d = float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))
            bound = 0.0 if plan.exact[c] else float(max(p.max(), q.max()))
            rows.append((c, "KSComplement", 1.0 - d, bound))
        else:
            p = {k: v for k, v in real1[c].items() if k != _MISSING}
            q = {k: v for k, v in syn1[c].items() if k != _MISSING}
            n_p, n_q = sum(p.values()), sum(q.values())
            if n_p == 0 or n_q == 0:
                rows.append((c, "TVComplement", np.nan, 0.0))
                continue
            tv = 0.5 * sum(abs(p.get(k, 0) / n_p - q.get(k, 0) / n_q) for k in set(p) | set(q))
            rows.append((c, "TVComplement", 1.0 - tv, 0.0))
    return pd.DataFrame(rows, columns=["Column", "Metric", "Score", "KS bound"])


def _pairs(
    plan: _Plan, real1: dict, syn1: dict, real2: dict, syn2: dict, r_thr: float, a_thr: float
) -> pd.DataFrame:
    pos = {c: i for i, c in enumerate(plan.cont)}
    r_real = pearson_from_sums(*real2["pearson"]) if plan.cont else None
    r_syn = pearson_from_sums(*syn2["pearson"]) if plan.cont else None
    varied = {c: real1[c][2] > real1[c][1] and syn1[c][2] > syn1[c][1] for c in plan.cont}
    rows = []
    for a, b in itertools.combinations(plan.columns, 2):
        if a in plan.grids and b in plan.grids:
            rr, rs = float(r_real[pos[a], pos[b]]), float(r_syn[pos[a], pos[b]])
            if not (varied[a] and varied[b]):
                rr = rs = float("nan")
            meets = r_thr <= 0 or (not np.isnan(rr) and abs(rr) > r_thr)
            rows.append(
                (a, b, "CorrelationSimilarity", 1 - abs(rr - rs) / 2, rr, rs, np.nan, meets)
            )
            continue
        c_r, c_s = real2["pairs"][(a, b)], syn2["pairs"][(a, b)]
        tv = 0.5 * np.abs(c_r / max(c_r.sum(), 1) - c_s / max(c_s.sum(), 1)).sum()
        assoc, meets = float("nan"), True
        if a_thr > 0:
            assoc = cramers_v(c_r.reshape(plan.size[a], plan.size[b]))
            meets = not np.isnan(assoc) and assoc > a_thr
        rows.append((a, b, "ContingencySimilarity", 1 - tv, np.nan, np.nan, assoc, meets))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


@single_threaded
def evaluate_quality_dask(
    real_data: Any,
    synthetic_data: Any,
    metadata: Metadata | TableMetadata,
    *,
    bins: int = 4096,
    detection: bool = True,
    max_rows_detection: int = 10_000,
    real_correlation_threshold: float = 0.5,
    real_association_threshold: float = 0.3,
    random_state: int = 0,
) -> QualityReport:
    """The fidelity score of two tables of any size, computed partition by partition on Dask.

    Parameters
    ----------
    real_data, synthetic_data : dask DataFrame, pandas DataFrame or path
        A Dask DataFrame, a pandas DataFrame, or the path of a Parquet file, a folder of
        Parquet parts (what ``clinsynth sample --scheduler`` writes) or a CSV file.
    metadata : Metadata
        Single-table metadata of the two tables.
    bins : int
        Grid of the KS statistic of each continuous column (see the module's notes on exactness).
    detection : bool
        Run the detection classifiers on ``max_rows_detection`` rows drawn from each table.
    real_correlation_threshold, real_association_threshold : float
        As in :func:`~clinsynth.evaluation.evaluate_quality`.
    random_state : int

    Returns
    -------
    QualityReport
        Column Shapes and Column Pair Trends (the score), Detection when asked; the work runs
        on Dask's current scheduler (a ``distributed.Client`` when one is active).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"age": rng.integers(20, 90, 500), "sex": rng.choice(["F", "M"], 500)})
    >>> md = Metadata.detect_from_dataframe(real)
    >>> evaluate_quality_dask(real, real.iloc[::-1], md, detection=False).get_score()
    1.0
    """
    dask = require("dask", "Evaluating tables on Dask")
    table = resolve_table(metadata)
    check_positive_int("evaluate_quality_dask", "bins", bins, allow_none=False)
    check_positive_int("evaluate_quality_dask", "max_rows_detection", max_rows_detection)
    check_thresholds(
        "evaluate_quality_dask",
        real_correlation_threshold=real_correlation_threshold,
        real_association_threshold=real_association_threshold,
    )
    real, syn = frame(real_data, "real_data"), frame(synthetic_data, "synthetic_data")
    columns = statistical_columns(table)
    if not columns:
        raise DataError(
            "The metadata has no numerical, datetime, categorical, ordinal or boolean column, so "
            "there is nothing to compare. Declare the sdtypes of the columns to evaluate."
        )
    problems = [
        f"{name} lacks the metadata column(s) {', '.join(map(repr, missing))}"
        for name, frame in (("real_data", real), ("synthetic_data", syn))
        if (missing := [c for c in columns if c not in frame.columns])
    ]
    if problems:
        raise DataError.from_problems(
            "The data does not match the metadata (give the same columns as the metadata)", problems
        )
    real, syn = real[columns], syn[columns]
    cont = [c for c in columns if table.sdtype(c) in CONTINUOUS]
    disc = [c for c in columns if c not in cont]
    src_r, src_s = sources(real_data, real), sources(synthetic_data, syn)
    first = dask.delayed(_first_task)
    done = dask.compute(
        [first(p, table, cont, disc) for p in src_r], [first(p, table, cont, disc) for p in src_s]
    )
    real1, syn1 = _add_first(done[0], cont, disc), _add_first(done[1], cont, disc)
    if real1["rows"] == 0 or syn1["rows"] == 0:
        raise DataError("real_data and synthetic_data must each have at least one row.")
    plan = _Plan(table, cont, disc, real1, syn1, bins)
    second = dask.delayed(_second_task)
    done = dask.compute(
        [second(p, plan, "real") for p in src_r], [second(p, plan, "syn") for p in src_s]
    )
    real2, syn2 = _add_second(done[0]), _add_second(done[1])
    shapes = _shapes(plan, real1, syn1, real2, syn2)
    pairs = _pairs(
        plan, real1, syn1, real2, syn2, real_correlation_threshold, real_association_threshold
    )
    properties = {
        "Column Shapes": shapes_score(shapes),
        "Column Pair Trends": pair_trends_score(pairs),
    }
    details = {"Column Shapes": shapes, "Column Pair Trends": pairs}
    metrics: dict[str, Any] = {
        **score_metrics(properties, pairs),
        "rows": {"real": int(real1["rows"]), "synthetic": int(syn1["rows"])},
        "ks_max_bound": float(shapes["KS bound"].max()) if len(shapes) else 0.0,
    }
    sampling = Sampling()
    notes = [
        f"Computed on Dask in {len(src_r)} + {len(src_s)} tasks "
        f"({real1['rows']:,} real and {syn1['rows']:,} synthetic rows): every row counts; "
        f"KS on a grid of {bins} bins (exact for whole numbers; otherwise at most the "
        "'KS bound' below the exact statistic)."
    ]
    hooked = [m.name for m in registered("fidelity") if m.compute is not None]
    if hooked:  # a compute hook takes whole tables in memory
        notes.append(
            f"Not computed on Dask (its computation needs whole tables): {', '.join(hooked)}."
        )
    if detection:
        _detect(
            (src_r, real1["rows"]),
            (src_s, syn1["rows"]),
            table,
            columns,
            max_rows_detection,
            random_state,
            details,
            metrics,
            sampling,
        )
    return QualityReport(properties, details, metrics=metrics, sampling=sampling.notes, notes=notes)


def _detect(
    real: tuple[list[Any], int],
    syn: tuple[list[Any], int],
    table: TableMetadata,
    columns: list[str],
    rows: int,
    seed: int,
    details: dict,
    metrics: dict,
    sampling: Sampling,
) -> None:
    """Detection and alpha-precision on rows drawn from each table (in memory)."""
    import dask

    from clinsynth.evaluation._detection import detection_and_precision

    task = dask.delayed(sample_task)
    drawn = []
    for side, (tasks, n) in enumerate((real, syn)):
        # each row kept with probability rows / n, in every task (seeded by side and task)
        fraction = min(1.0, rows / max(n, 1))
        picks = [
            task(src, columns, fraction, seed * 7919 + 2 * i + side) for i, src in enumerate(tasks)
        ]
        parts = dask.compute(*picks)
        drawn.append(pd.concat(parts, ignore_index=True).iloc[:rows])
    sampling.record("Detection", real=len(drawn[0]), synthetic=len(drawn[1]))
    det, curves, summary = detection_and_precision(
        drawn[0], drawn[1], table, columns, seed=seed, precision_rows=min(rows, 5_000)
    )
    details["Detection"] = det
    details["Alpha Precision Beta Recall"] = curves
    aucs = det["AUC"].dropna()
    worst = float(aucs.max()) if len(aucs) else None
    metrics.update(
        {
            "detection_auc": dict(zip(det["Model"], det["AUC"], strict=True)),
            "detection_score": None if worst is None else 1 - 2 * max(worst - 0.5, 0.0),
            "alpha_precision": summary["alpha_precision"],
            "beta_recall": summary["beta_recall"],
        }
    )
