"""A VAE's latent space: the rows' latent coordinates (:func:`latent_codes`, which the variational
models' ``encode`` calls) and pictures of them projected to two dimensions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinsynth._extras import require
from clinsynth.errors import MissingDependencyError, ParameterError, parameter_error

__all__ = ["MissingDependencyError", "latent_codes", "visualize_latent_space"]

#: Rows encoded per forward pass.
_ENCODE_BATCH = 65_536


def model_rows(model: Any, data: pd.DataFrame) -> pd.DataFrame:
    """The user's rows as ``model`` sees them: its rules' reparametrizations applied."""
    table = model._table_metadata()
    for rule in getattr(model, "_rules_", None) or []:
        if rule.reparametrized:
            data = rule.transform(data, table)
            table = rule.transform_metadata(table)
    return data


def latent_codes(
    model: Any, data: pd.DataFrame, mean: Callable[[Any], Any], dim: int
) -> np.ndarray:
    """Latent coordinates of the rows of ``data`` under a fitted deep ``model``: ``mean(x)``
    of their encoded rows ``x`` (the mean of ``q(z | x)``), in batches, ``dim`` columns.

    Numbers are encoded with their most likely mixture component, so the same rows always land
    on the same points.
    """
    import torch

    model._check_fitted()
    encoded = model._transformer_.transform(model_rows(model, data))
    device = model._torch_device()
    x = torch.from_numpy(np.ascontiguousarray(encoded[:, model._layout_.order])).to(device)
    for net in model._networks().values():
        net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), _ENCODE_BATCH):
            out.append(mean(x[start : start + _ENCODE_BATCH]).float().cpu().numpy())
    if not out:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(out)


def _pca(z: np.ndarray) -> tuple[np.ndarray, list[str]]:
    centered = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    coords = centered @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    var = s**2 / max(float((s**2).sum()), 1e-12)
    labels = [f"PC{i + 1} ({var[i]:.0%})" if i < len(var) else f"PC{i + 1}" for i in range(2)]
    return coords, labels


def _umap(z: np.ndarray, random_state: int | None) -> tuple[np.ndarray, list[str]]:
    umap = require("umap", "visualize_latent_space(method='umap'); method='pca' does not")
    reducer = umap.UMAP(n_components=2, random_state=random_state)
    return reducer.fit_transform(z), ["UMAP 1", "UMAP 2"]


def visualize_latent_space(
    model: Any,
    data: pd.DataFrame,
    *,
    color_by: str | None = None,
    method: Literal["pca", "umap"] = "pca",
    max_points: int = 20_000,
    random_state: int | None = 0,
    **encode_options: Any,
) -> Any:
    """A plotly scatter of the rows of ``data`` in a fitted VAE's latent space.

    Each row is encoded to the mean of ``q(z | x)`` (:meth:`encode`) and projected to two
    dimensions with PCA (no extra dependency; the axes say how much variance they keep) or
    UMAP (optional extra: ``pip install clinsynth[umap]``).

    Parameters
    ----------
    model : TVAESynthesizer or HVAEGANSynthesizer
        A fitted model with an ``encode`` method.
    data : DataFrame
        Rows with the model's columns (real rows, or synthetic rows to compare).
    color_by : str, optional
        A column of ``data`` to colour the points by (categories get a legend, numbers a scale).
    method : {"pca", "umap"}
    max_points : int
        Rows drawn at random (with ``random_state``) when ``data`` has more.
    random_state : int, optional
    **encode_options
        Passed to ``model.encode`` (e.g. ``level="shared"`` for the HVAE-GAN).

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, TVAESynthesizer, visualize_latent_space
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"age": rng.normal(60, 10, 100), "sex": rng.choice(["F", "M"], 100)})
    >>> model = TVAESynthesizer(Metadata.detect_from_dataframe(df), epochs=1).fit(df)
    >>> fig = visualize_latent_space(model, df, color_by="sex", method="pca")
    >>> len(fig.data)
    2
    """
    import plotly.graph_objects as go

    if not hasattr(model, "encode"):
        raise ParameterError(
            f"{type(model).__name__} has no latent space to show; use a variational model "
            "(TVAESynthesizer, HVAEGANSynthesizer)."
        )
    if method not in ("umap", "pca"):
        raise parameter_error("visualize_latent_space", "method", method, "'umap' or 'pca'")
    if color_by is not None and color_by not in data.columns:
        raise parameter_error(
            "visualize_latent_space",
            "color_by",
            color_by,
            "None or a column of the data",
            f"It is not a column; columns: {list(data.columns)}.",
        )
    if len(data) > max_points:
        data = data.sample(n=max_points, random_state=random_state)
    data = data.reset_index(drop=True)
    z = model.encode(data, **encode_options)
    coords, labels = _umap(z, random_state) if method == "umap" else _pca(z)
    fig = go.Figure()
    marker: dict[str, Any] = {"size": 4, "opacity": 0.7}
    if color_by is None:
        fig.add_trace(
            go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", marker=marker, name="rows")
        )
    elif pd.api.types.is_numeric_dtype(data[color_by]) and data[color_by].nunique() > 12:
        values = data[color_by].astype(float)
        fig.add_trace(
            go.Scattergl(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                name=color_by,
                marker={
                    **marker,
                    "color": values,
                    "colorscale": "Viridis",
                    "colorbar": {"title": color_by},
                },
                text=[f"{color_by}={v}" for v in data[color_by]],
            )
        )
    else:
        keys = data[color_by].astype(object).where(data[color_by].notna(), "(missing)")
        for level in pd.unique(keys):
            mask = (keys == level).to_numpy()
            fig.add_trace(
                go.Scattergl(
                    x=coords[mask, 0],
                    y=coords[mask, 1],
                    mode="markers",
                    marker=marker,
                    name=str(level),
                )
            )
    fig.update_layout(
        title=f"{type(model).__name__} latent space ({method.upper()})",
        xaxis_title=labels[0],
        yaxis_title=labels[1],
        template="plotly_white",
        legend_title_text=color_by or "",
    )
    return fig
