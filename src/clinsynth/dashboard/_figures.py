"""Plotly figures drawn from the figure data of an evaluation (``EvaluationResult.figures``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

REAL = ("Real", "#1f4e79")
SYNTHETIC = ("Synthetic", "#e07b39")


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 15}},
        height=height,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"},
        barmode="group",
    )
    return fig


def column_figure(name: str, data: dict) -> go.Figure:
    """Real vs synthetic bars (categories) or histogram and box plot (numbers, dates)."""
    if data.get("kind") == "categorical":
        fig = go.Figure()
        for (label, color), key in ((REAL, "real"), (SYNTHETIC, "synthetic")):
            fig.add_bar(x=data["categories"], y=data[key], name=label, marker_color=color)
        fig.update_yaxes(title_text="share of patients", tickformat=".0%")
        return _layout(fig, f"{name}: share of each category")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.68, 0.32],
        horizontal_spacing=0.1,
        subplot_titles=("distribution", "box plot (median, quartiles)"),
    )
    edges = np.asarray(data.get("edges", []), dtype=float)
    if len(edges):
        centres = (edges[:-1] + edges[1:]) / 2
        for (label, color), key in ((REAL, "real"), (SYNTHETIC, "synthetic")):
            fig.add_bar(
                x=centres,
                y=data[key],
                name=label,
                marker_color=color,
                opacity=0.75,
                row=1,
                col=1,
            )
        for (label, color), key in ((REAL, "box_real"), (SYNTHETIC, "box_synthetic")):
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
    fig.update_yaxes(title_text="share of patients", tickformat=".0%", row=1, col=1)
    unit = f" ({data['unit']})" if data.get("unit") else ""
    return _layout(fig, f"{name}{unit}: real vs synthetic")


def heatmap_figure(title: str, columns: list, z: list, *, difference: bool = False) -> go.Figure:
    """A correlation matrix (-1..1) or the difference of two (synthetic minus real)."""
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=columns,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            hoverongaps=False,
            colorbar={"title": "difference" if difference else "correlation"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(380, 18 * len(columns) + 140))
