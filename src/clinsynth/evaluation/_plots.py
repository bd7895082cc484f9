"""Figure data (plain JSON values) and the plotly figures drawn from it.

The data is computed once, stored in the JSON report, and drawn in the HTML report: histograms are
pre-binned and box plots pre-summarized, so the files stay small whatever the number of rows.
Per-column plots are capped (30 columns by default): the columns whose shapes differ most.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from clinsynth.errors import NotFittedError
from clinsynth.evaluation._common import CONTINUOUS, jsonable, statistical_columns, to_numeric
from clinsynth.evaluation._fidelity import _pairwise_pearson
from clinsynth.metadata import TableMetadata

REAL_COLOR = "#1f4e79"
SYNTH_COLOR = "#e07b39"
MAX_CATEGORIES = 20
BINS = 30


def _box(x: np.ndarray) -> dict:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return {}
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    iqr = q3 - q1
    low = float(x[x >= q1 - 1.5 * iqr].min())
    high = float(x[x <= q3 + 1.5 * iqr].max())
    return {"q1": q1, "median": med, "q3": q3, "lowerfence": low, "upperfence": high}


def _numeric_column(r: np.ndarray, s: np.ndarray, sdtype: str) -> dict:
    scale = 86_400e9 if sdtype == "datetime" else 1.0  # dates are drawn in days since 1970
    r, s = r / scale, s / scale
    both = np.r_[r[~np.isnan(r)], s[~np.isnan(s)]]
    if len(both) == 0:
        return {"kind": "numeric", "edges": [], "real": [], "synthetic": []}
    lo, hi = np.quantile(both, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, BINS + 1)

    def density(x: np.ndarray) -> np.ndarray:
        x = x[~np.isnan(x)]
        counts = np.histogram(np.clip(x, lo, hi), edges)[0]
        return counts / max(len(x), 1)

    return {
        "kind": "numeric",
        "unit": "days since 1970-01-01" if sdtype == "datetime" else "",
        "edges": edges,
        "real": density(r),
        "synthetic": density(s),
        "box_real": _box(r),
        "box_synthetic": _box(s),
        "missing_real": float(np.isnan(r).mean()),
        "missing_synthetic": float(np.isnan(s).mean()),
    }


def _categorical_column(r: pd.Series, s: pd.Series) -> dict:
    pr = r.astype("string").fillna("(missing)").value_counts(normalize=True)
    ps = s.astype("string").fillna("(missing)").value_counts(normalize=True)
    top = list(pr.index[:MAX_CATEGORIES])
    real = [float(pr.get(c, 0.0)) for c in top]
    synth = [float(ps.get(c, 0.0)) for c in top]
    if len(pr) > MAX_CATEGORIES or set(ps.index) - set(top):
        top.append("(other)")
        real.append(1.0 - sum(real))
        synth.append(1.0 - sum(synth))
    return {"kind": "categorical", "categories": top, "real": real, "synthetic": synth}


def _loss(model: Any) -> tuple[dict | None, str | None]:
    getter = getattr(model, "get_loss_values", None)
    if model is None or not callable(getter):
        return None, None
    try:
        losses = getter()
    except NotFittedError:
        return None, "The model has not been trained, so there is no loss curve."
    if losses is None or not isinstance(losses, pd.DataFrame) or losses.empty:
        return None, "The model recorded no training losses."
    lower = {c: str(c).lower() for c in losses.columns}
    epoch = next((c for c, low in lower.items() if low == "epoch"), None)
    value_cols = [
        c
        for c, low in lower.items()
        if c != epoch
        and low not in ("batch", "step", "iteration")
        and pd.api.types.is_numeric_dtype(losses[c])
    ]
    if not value_cols:
        return None, "The model's loss table has no numeric loss column."
    frame = losses[value_cols].astype(float)
    if epoch is not None:
        frame = frame.groupby(losses[epoch]).mean()
    x = list(frame.index)
    return {
        "x_label": "epoch" if epoch is not None else "step",
        "x": x,
        "series": {str(c): frame[c].tolist() for c in value_cols},
    }, None


def figure_data(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    *,
    shapes: pd.DataFrame | None,
    pairs: pd.DataFrame | None,
    max_columns: int = 30,
    model: Any = None,
) -> tuple[dict, list[str]]:
    """Plain data for every figure of the report, and notes (what was capped or missing)."""
    notes = []
    columns = statistical_columns(table)
    if shapes is not None and len(shapes):
        order = shapes.sort_values("Score", kind="stable")["Column"].tolist()
        columns = order + [c for c in columns if c not in order]
    if len(columns) > max_columns:
        notes.append(
            f"Per-column plots show the {max_columns} columns whose distributions differ most "
            f"(lowest Column Shapes score) out of {len(columns)}."
        )
    shown = columns[:max_columns]
    per_column = {}
    numeric = {}
    for col in columns:
        spec = table.columns[col]
        if spec["sdtype"] in CONTINUOUS:
            numeric[col] = (to_numeric(real[col], spec), to_numeric(synthetic[col], spec))
    for col in shown:
        spec = table.columns[col]
        if col in numeric:
            entry = _numeric_column(*numeric[col], spec["sdtype"])
        else:
            entry = _categorical_column(real[col], synthetic[col])
        per_column[col] = {"sdtype": spec["sdtype"], **entry}

    figures: dict[str, Any] = {"columns": per_column}
    if shapes is not None and len(shapes):
        figures["column_shapes"] = {"columns": shapes["Column"], "scores": shapes["Score"]}
    cont = [c for c in columns if c in numeric][:max_columns]
    if len(cont) >= 2:
        cr = _pairwise_pearson(np.column_stack([numeric[c][0] for c in cont]))
        cs = _pairwise_pearson(np.column_stack([numeric[c][1] for c in cont]))
        np.fill_diagonal(cr, 1.0)
        np.fill_diagonal(cs, 1.0)
        figures["correlation"] = {
            "columns": cont,
            "real": cr,
            "synthetic": cs,
            "difference": cs - cr,
        }
    if pairs is not None and len(pairs):
        names = list(dict.fromkeys(list(pairs["Column 1"]) + list(pairs["Column 2"])))[:max_columns]
        pos = {c: i for i, c in enumerate(names)}
        mat = np.full((len(names), len(names)), np.nan)
        np.fill_diagonal(mat, 1.0)
        kept = pairs[pairs["Column 1"].isin(pos) & pairs["Column 2"].isin(pos)]
        i = kept["Column 1"].map(pos).to_numpy()
        j = kept["Column 2"].map(pos).to_numpy()
        mat[i, j] = mat[j, i] = kept["Score"].to_numpy()
        figures["pair_trends"] = {"columns": names, "scores": mat}
    loss, note = _loss(model)
    if loss is not None:
        figures["loss"] = loss
    if note:
        notes.append(note)
    return jsonable(figures), notes


# ---------------------------------------------------------------------------- plotly figures
def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    """Title, size and style; the legend above the plot (below it, it covered the x labels)
    and margins that grow to fit the tick labels."""
    fig.update_layout(
        title={"text": title, "font": {"size": 15}, "y": 0.98, "yanchor": "top"},
        height=height,
        margin={"l": 50, "r": 20, "t": 70, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        barmode="group",
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _slant(fig: go.Figure, labels: list, axis: str = "x") -> None:
    """Slant category labels that would not fit side by side (many, or long ones)."""
    texts = [str(v) for v in labels]
    if len(texts) > 8 or sum(len(t) for t in texts) > 60:
        getattr(fig, f"update_{axis}axes")(tickangle=-45)


def column_figure(name: str, data: dict) -> go.Figure:
    """Histogram (or category bars) and box plot of one column, real vs synthetic."""
    if data["kind"] == "categorical":
        fig = go.Figure()
        for label, key, color in (
            ("Real", "real", REAL_COLOR),
            ("Synthetic", "synthetic", SYNTH_COLOR),
        ):
            fig.add_bar(x=data["categories"], y=data[key], name=label, marker_color=color)
        fig.update_yaxes(title_text="share of rows", tickformat=".0%")
        _slant(fig, list(data["categories"]))
        return _layout(fig, f"{name} ({data['sdtype']})")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.08)
    edges = np.asarray(data["edges"], dtype=float)
    if len(edges):
        centres = (edges[:-1] + edges[1:]) / 2
        for label, key, color in (
            ("Real", "real", REAL_COLOR),
            ("Synthetic", "synthetic", SYNTH_COLOR),
        ):
            fig.add_bar(
                x=centres, y=data[key], name=label, marker_color=color, opacity=0.75, row=1, col=1
            )
        for label, key, color in (
            ("Real", "box_real", REAL_COLOR),
            ("Synthetic", "box_synthetic", SYNTH_COLOR),
        ):
            box = data.get(key) or {}
            if box:
                fig.add_trace(
                    go.Box(
                        x=[label],
                        q1=[box["q1"]],
                        median=[box["median"]],
                        q3=[box["q3"]],
                        lowerfence=[box["lowerfence"]],
                        upperfence=[box["upperfence"]],
                        name=label,
                        marker_color=color,
                        showlegend=False,
                    ),
                    row=1,
                    col=2,
                )
    fig.update_layout(bargap=0.05)
    fig.update_yaxes(title_text="share of rows", tickformat=".0%", row=1, col=1)
    unit = f" — {data['unit']}" if data.get("unit") else ""
    return _layout(fig, f"{name} ({data['sdtype']}){unit}")


def heatmap_figure(title: str, columns: list, z: list, *, zmin: float, zmax: float, scale: str):
    fig = go.Figure(
        go.Heatmap(
            z=z, x=columns, y=columns, zmin=zmin, zmax=zmax, colorscale=scale, hoverongaps=False
        )
    )
    fig.update_yaxes(autorange="reversed")
    _slant(fig, list(columns))
    return _layout(fig, title, height=max(320, 18 * len(columns) + 160))


def bars_figure(title: str, x: list, series: dict[str, list], y_title: str, percent=False):
    fig = go.Figure()
    colors = [REAL_COLOR, SYNTH_COLOR, "#5b9a68", "#8e6bb5"]
    for (label, values), color in zip(series.items(), colors, strict=False):
        fig.add_bar(x=x, y=values, name=label, marker_color=color)
    fig.update_yaxes(title_text=y_title, tickformat=".0%" if percent else None)
    _slant(fig, list(x))
    return _layout(fig, title)


def lines_figure(title: str, x: list, series: dict[str, list], x_title: str, y_title: str):
    fig = go.Figure()
    for label, values in series.items():
        fig.add_scatter(x=x, y=values, mode="lines", name=label)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, title)


# ---------------------------------------------------------------------------- multi-table figures
def cardinality_data(real: np.ndarray, synthetic: np.ndarray, max_bins: int = 30) -> dict:
    """Share of parent rows with 0, 1, 2... children, real vs synthetic (pre-binned).

    One bin per count up to the larger 99th percentile of the two (at most ``max_bins - 1``
    bins); the rarer large counts share one last bin labelled ``">= k"``.

    >>> d = cardinality_data(np.array([0, 1, 1, 2]), np.array([1, 1, 1, 5]), max_bins=3)
    >>> d["bins"], d["real"], d["synthetic"]
    (['0', '1', '>= 2'], [0.25, 0.5, 0.25], [0.0, 0.75, 0.25])
    """
    real = np.asarray(real, dtype=np.int64)
    synthetic = np.asarray(synthetic, dtype=np.int64)
    top = int(max(real.max(initial=0), synthetic.max(initial=0)))
    p99 = max(float(np.quantile(x, 0.99)) if len(x) else 0.0 for x in (real, synthetic))
    max_bins = min(max_bins, int(np.ceil(p99)) + 2)
    if top + 1 <= max_bins:
        edges = np.arange(top + 2)
        labels = [str(k) for k in range(top + 1)]
    else:
        edges = np.r_[np.arange(max_bins), top + 1]
        labels = [str(k) for k in range(max_bins - 1)] + [f">= {max_bins - 1}"]

    def shares(x: np.ndarray) -> list[float]:
        counts = np.histogram(x, edges)[0]
        return (counts / max(len(x), 1)).tolist()

    return {"bins": labels, "real": shares(real), "synthetic": shares(synthetic)}


def cardinality_figure(title: str, data: dict) -> go.Figure:
    """Bars of the share of parent rows by number of children, real vs synthetic."""
    fig = bars_figure(
        title,
        data["bins"],
        {"Real": data["real"], "Synthetic": data["synthetic"]},
        "share of parent rows",
        percent=True,
    )
    fig.update_xaxes(title_text="children per parent row", type="category")
    return fig


def matrix_figure(
    title: str, x: list, y: list, z: list, *, zmin: float, zmax: float, scale: str
) -> go.Figure:
    """A rectangular heatmap (rows ``y``, columns ``x``): parent columns by child aggregates."""
    fig = go.Figure(
        go.Heatmap(z=z, x=x, y=y, zmin=zmin, zmax=zmax, colorscale=scale, hoverongaps=False)
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, title, height=max(320, 22 * len(y) + 160))
