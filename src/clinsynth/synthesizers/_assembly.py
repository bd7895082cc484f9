"""Models assembled from parts learned elsewhere (a federation's agreed transformer, averaged
weights, a tree of noisy marginals): the one seam through which another package builds a
fitted model, so that no code outside ``synthesizers`` sets a model's private state.

The federation (``clinsynth.federated``) uses it; a model assembled here saves, loads and
samples as one fitted by ``fit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from clinsynth.synthesizers._base import BaseSynthesizer
from clinsynth.synthesizers._deep import DeepSynthesizer
from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer
from clinsynth.synthesizers.nn import SpanLayout


def attach_transformer(model: BaseSynthesizer, transformer: Any, *, seed: int = 0) -> None:
    """Give ``model`` a fitted table transformer; a deep model also gets its networks,
    initialized from ``seed`` on the CPU (the same seed everywhere gives the same start)."""
    model._transformer_ = transformer
    if isinstance(model, DeepSynthesizer):
        model._layout_ = SpanLayout(transformer.output_info, level_major=True)
        model._build_networks(torch.Generator().manual_seed(seed), torch.device("cpu"))


def networks(model: DeepSynthesizer) -> dict[str, torch.nn.Module]:
    """The deep model's networks by name (their weights are what a federation exchanges)."""
    return model._networks()


def training_rows(model: DeepSynthesizer, data: Any, *, seed: int) -> torch.Tensor:
    """``data`` encoded by the model's transformer, in its networks' column order."""
    encoded = model._transformer_.transform(data, random_state=seed)
    x = torch.from_numpy(np.ascontiguousarray(encoded[:, model._layout_.order]))
    x.masked_fill_(x.abs() < 1e-30, 0.0)
    return x


def row_loss(model: DeepSynthesizer) -> Any:
    """The per-row loss DP-SGD differentiates (``params, *rows -> loss``)."""
    return model._dp_row_loss


def set_marginal_tree(
    model: DPMarginalSynthesizer, attrs: list[dict[str, Any]], tree: dict[str, Any]
) -> None:
    """The ``dp_marginal`` model's attributes and tree of noisy marginals."""
    model._set_tree(attrs, tree)


def mark_fitted(
    model: BaseSynthesizer,
    *,
    dtypes: dict[str, str],
    num_rows: int,
    seconds: float,
    privacy_budget: dict[str, Any],
) -> BaseSynthesizer:
    """Mark an assembled model fitted, with what ``fit`` would have set (no rules, no
    refinement, no loss history) and its privacy report."""
    if isinstance(model, DeepSynthesizer):
        for net in model._networks().values():
            net.eval()
        model._batch_loss_history_ = pd.DataFrame(
            {"epoch": pd.Series(dtype="int64"), "batch": pd.Series(dtype="int64"), "loss": []}
        )
    model._dtypes_ = dict(dtypes)
    model._rules_ = []
    model._refiner_ = None
    model._loss_history_ = None
    model.num_training_rows_ = int(num_rows)
    rng = np.random.default_rng(model.random_state)
    model._fit_seed_ = int(rng.integers(0, 2**31 - 1))
    model._sample_seed_ = int(rng.integers(0, 2**31 - 1))
    model.fit_seconds_ = float(seconds)
    model.privacy_budget_ = privacy_budget
    model._fitted_ = True
    model.reset_sampling()
    return model
