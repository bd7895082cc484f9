"""Plotly figures of the evaluation, for reports, notebooks and the dashboard.

The same figures as the HTML report of :func:`clinsynth.evaluation.evaluate`, drawn from the
plain figure data of an :class:`~clinsynth.evaluation.EvaluationResult` (``result.figures``):

- :func:`column_figure`: real vs synthetic bars (categories) or histogram and box plot (numbers,
  dates) of one column, from ``result.figures["columns"][name]``;
- :func:`heatmap_figure`: a matrix such as a correlation map, from
  ``result.figures["correlation"]``;
- :func:`bars_figure` and :func:`lines_figure`: grouped bars and line series;
- :func:`cardinality_figure`: children per parent row, real vs synthetic, from
  ``report.figures["cardinality"][i]`` of :func:`clinsynth.multitable.evaluate_multi_table`;
- :func:`matrix_figure`: a rectangular heatmap (parent columns by child aggregates);
- :func:`trajectory_figure`: a few real and synthetic patients' values over time, from
  ``result.figures["sequences"]["trajectories"][i]`` (tables of events per patient);
- :func:`loss_data`: the per-epoch training losses of a fitted model, ready for
  :func:`lines_figure`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from clinsynth.evaluation import evaluate
>>> from clinsynth.evaluation.plots import column_figure
>>> rng = np.random.default_rng(0)
>>> real = pd.DataFrame({"age": rng.normal(60, 10, 200), "sex": rng.choice(["F", "M"], 200)})
>>> synthetic = pd.DataFrame({"age": rng.normal(61, 10, 200), "sex": rng.choice(["F", "M"], 200)})
>>> result = evaluate(real, synthetic, detection=False)
>>> fig = column_figure("sex", result.figures["columns"]["sex"])
>>> [trace.name for trace in fig.data]
['Real', 'Synthetic']
"""

from __future__ import annotations

from typing import Any

from clinsynth.evaluation._plots import (
    REAL_COLOR,
    SYNTH_COLOR,
    _loss,
    bars_figure,
    cardinality_figure,
    column_figure,
    heatmap_figure,
    lines_figure,
    matrix_figure,
)

__all__ = [
    "REAL_COLOR",
    "SYNTH_COLOR",
    "bars_figure",
    "cardinality_figure",
    "column_figure",
    "heatmap_figure",
    "lines_figure",
    "loss_data",
    "matrix_figure",
    "trajectory_figure",
]


def loss_data(model: Any) -> tuple[dict | None, str | None]:
    """The training losses of a fitted model per epoch, or why there are none.

    Parameters
    ----------
    model : object
        A synthesizer with ``get_loss_values()``.

    Returns
    -------
    data : dict or None
        ``{"x_label": "epoch", "x": [...], "series": {loss name: [...]}}``, the arguments of
        :func:`lines_figure`; None when the model recorded no loss.
    note : str or None
        Why there is no curve (not trained, one-pass model, ...).

    Examples
    --------
    >>> loss_data(None)
    (None, None)
    """
    return _loss(model)


def trajectory_figure(data: dict) -> Any:
    """A few real (left) and synthetic (right) patients' values of one column over time.

    Parameters
    ----------
    data : dict
        One of ``result.figures["sequences"]["trajectories"]`` (the report of a table whose
        metadata names its ``sequence_key`` and ``sequence_index``).

    Returns
    -------
    plotly.graph_objects.Figure
        The report's own figure. Its left panel shows real patients' values.

    Examples
    --------
    >>> data = {"column": "alt", "index": "day", "patients": 1,
    ...         "real": [{"x": [0, 7], "y": [30, 35]}], "synthetic": [{"x": [0, 9], "y": [31, 33]}]}
    >>> len(trajectory_figure(data).data)
    2
    """
    from clinsynth.evaluation._sequences import trajectory_plot

    return trajectory_plot(data)
