"""Refinement by the density ratio: a model's rows resampled toward the real distribution.

A classifier learns to tell the real training rows (label 1) from as many rows of the fitted
model (label 0). Its odds ``c(x) / (1 - c(x))`` estimate the density ratio
``p_real(x) / p_model(x)`` (times the class ratio, 1 here). Sampling then draws ``oversample``
times the rows asked for from the model and keeps as many as asked, drawn without replacement
with probabilities proportional to the estimated ratio (Gumbel top-k): rows of regions the model
over-produces are thinned, rows of regions it under-produces are kept. This is importance
resampling (sampling-importance-resampling; for GANs, "discriminator rejection sampling",
Azadi et al., ICLR 2019), applied to any model of the registry.

The classifier is a small multilayer perceptron (torch) on the rows as numbers: numbers and dates
as standardized values with their missing indicator, categories one-hot. It is trained with a
held-out fifth of its rows for early stopping, so it learns what separates the two distributions,
not the training rows themselves; the ratio is clipped (at ``max_weight`` times the median) so
that a few rows cannot take over. The saved model holds the classifier's weights and the
feature statistics (means, standard deviations, the levels the model's transformer already
keeps): no row. A refined model reads the real rows a second time: it is refused with
differential privacy, whose budget does not cover it.

Refinement applies to the model's unconditional draws (``sample(n)``, and conditions met by
rejection through them). Conditions that a model meets natively (the copula's truncation,
TabDDPM's class label) and multi-table sampling use the unrefined model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from clinsynth.errors import BundleError
from clinsynth.io import _schema as S
from clinsynth.metadata import TableMetadata
from clinsynth.transform import TableTransformer

#: Rows per batch of the classifier's training.
_BATCH = 256
#: What a bundle's refiner.json may hold (checked before anything is built from it).
_MAX_FEATURES = 1_000_000
_STATE = S.mapping(
    {
        "params": S.mapping(
            {
                "oversample": S.integer(2, 1000),
                "hidden": S.array(S.integer(1, 4096), min_len=1, max_len=8),
                "dropout": S.number(0, 0.99),
                "max_epochs": S.integer(1, 100_000),
                "patience": S.integer(1, 100_000),
                "max_weight": S.number(1, 1e6),
                "seed": S.integer(0, 2**63),
            },
            required=("oversample", "hidden", "dropout", "max_epochs", "patience", "max_weight"),
        ),
        "transformer": S.mapping(extra=True),
        "mean": S.array(S.number(), max_len=_MAX_FEATURES),
        "scale": S.array(S.number(0), max_len=_MAX_FEATURES),
        "median_logit": S.number(),
        "held_out_loss": S.number(),
    },
    required=("params", "transformer", "mean", "scale", "median_logit", "held_out_loss"),
)


class _Classifier(nn.Module):
    """Linear-ReLU layers and a logit; dropout masks come from the caller's generator (not
    torch's global one), so a fit is reproducible."""

    def __init__(self, dim: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        widths = [dim, *hidden]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out = nn.Linear(widths[-1], 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
            if generator is not None and self.dropout > 0:
                keep = torch.rand(x.shape, generator=generator) >= self.dropout
                x = x * keep / (1.0 - self.dropout)
        return self.out(x)[:, 0]


class DensityRatioRefiner:
    """Estimate ``p_real / p_model`` with a classifier and resample a model's rows by it.

    Parameters
    ----------
    oversample : int
        Rows drawn from the model per row kept (>= 2). More rows correct more of the gap and
        cost proportionally more sampling time.
    hidden : tuple of int
        Hidden layer widths of the classifier.
    dropout : float
        Dropout of the classifier's hidden layers.
    max_epochs, patience : int
        Training epochs at most, and epochs without a better held-out loss before stopping.
    max_weight : float
        Largest weight relative to the median weight.
    seed : int
        Seed of the classifier's initialization, batches and held-out split.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"x": rng.normal(0, 1, 400)})
    >>> model_rows = pd.DataFrame({"x": rng.normal(0.5, 1, 400)})
    >>> table = Metadata.detect_from_dataframe(real).get_table()
    >>> refiner = DensityRatioRefiner(seed=0).fit(real, model_rows, table)
    >>> candidates = pd.DataFrame({"x": rng.normal(0.5, 1, 3000)})
    >>> kept = candidates.iloc[refiner.select(candidates, 1000, np.random.default_rng(1))]
    >>> bool(abs(kept["x"].mean()) < abs(candidates["x"].mean()))
    True
    """

    def __init__(
        self,
        *,
        oversample: int = 3,
        hidden: tuple[int, ...] = (128, 128),
        dropout: float = 0.2,
        max_epochs: int = 100,
        patience: int = 5,
        max_weight: float = 20.0,
        seed: int = 0,
    ) -> None:
        self.oversample = oversample
        self.hidden = tuple(hidden)
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_weight = max_weight
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        real: pd.DataFrame,
        synthetic: pd.DataFrame,
        table: TableMetadata,
        *,
        rare_category_threshold: int | None = 5,
    ) -> DensityRatioRefiner:
        """Learn the classifier from real rows and as many (or more) of the model's rows.

        Categorical levels held by fewer than ``rare_category_threshold`` patients are merged
        (and not stored), as in the model's own transformer.
        """
        self.transformer_ = TableTransformer(
            table,
            numerical="identity",
            categorical="onehot",
            rare_category_threshold=rare_category_threshold,
        ).fit(real)
        xr = self.transformer_.transform(real).astype(np.float64)
        xs = self.transformer_.transform(synthetic).astype(np.float64)
        self.mean_ = xr.mean(axis=0)
        self.scale_ = np.where(xr.std(axis=0) > 0, xr.std(axis=0), 1.0)
        x = torch.from_numpy(np.vstack([self._standardize(xr), self._standardize(xs)])).float()
        y = torch.cat([torch.ones(len(xr)), torch.zeros(len(xs))])
        generator = torch.Generator().manual_seed(self.seed)
        self.classifier_ = self._build(x.shape[1], generator)
        self.held_out_loss_ = self._train(x, y, generator)
        with torch.no_grad():
            self.classifier_.eval()
            self.median_logit_ = float(torch.median(self.classifier_(x[len(xr) :])))
        return self

    def _build(self, dim: int, generator: torch.Generator) -> _Classifier:
        from clinsynth.synthesizers.nn import build_module

        return build_module(
            lambda: _Classifier(dim, self.hidden, self.dropout), generator, torch.device("cpu")
        )

    def _standardize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean_) / self.scale_, -10.0, 10.0)

    def _train(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        perm = torch.randperm(len(x), generator=generator)
        n_valid = max(1, len(x) // 5)
        valid, train = perm[:n_valid], perm[n_valid:]
        net = self.classifier_
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        loss_fn = nn.BCEWithLogitsLoss()
        best, bad, best_state = math.inf, 0, None
        for _ in range(self.max_epochs):
            net.train()
            order = train[torch.randperm(len(train), generator=generator)]
            for start in range(0, len(order), _BATCH):
                idx = order[start : start + _BATCH]
                loss = loss_fn(net(x[idx], generator), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                held_out = float(loss_fn(net(x[valid]), y[valid]))
            if held_out < best - 1e-4:
                best, bad = held_out, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return best

    # ------------------------------------------------------------------ use
    def log_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """The estimated log density ratio of each row (relative to the model's median row)."""
        x = self._standardize(self.transformer_.transform(frame).astype(np.float64))
        with torch.inference_mode():
            logits = self.classifier_(torch.from_numpy(x).float()).numpy().astype(np.float64)
        return np.clip(logits - self.median_logit_, -30.0, math.log(self.max_weight))

    def select(self, frame: pd.DataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
        """Positions of ``n`` rows of ``frame`` drawn without replacement, with probabilities
        proportional to their estimated density ratio (Gumbel top-k)."""
        if n >= len(frame):
            return np.arange(len(frame))
        keys = self.log_ratio(frame) + rng.gumbel(size=len(frame))
        chosen = np.argpartition(-keys, n - 1)[:n]
        return np.sort(chosen)

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(json_state, tensors)``: parameters, feature statistics, classifier weights."""
        state = {
            "params": {
                "oversample": self.oversample,
                "hidden": list(self.hidden),
                "dropout": self.dropout,
                "max_epochs": self.max_epochs,
                "patience": self.patience,
                "max_weight": self.max_weight,
                "seed": self.seed,
            },
            "transformer": self.transformer_.to_dict(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "median_logit": self.median_logit_,
            "held_out_loss": self.held_out_loss_,
        }
        tensors = {
            f"refiner.{k}": v.detach().cpu() for k, v in self.classifier_.state_dict().items()
        }
        return state, tensors

    @classmethod
    def from_state(
        cls,
        state: Any,
        tensors: dict[str, torch.Tensor],
        metadata: Any,
        table_name: str | None,
    ) -> DensityRatioRefiner:
        """Rebuild a refiner from a bundle, checking every field and tensor first (a bundle is
        untrusted input): a :class:`~clinsynth.errors.BundleError` names what does not fit."""
        from clinsynth.io._bundle import check_tensor

        where = "refiner.json"
        S.check_json(state, _STATE, where)
        params = dict(state["params"])
        params["hidden"] = tuple(int(h) for h in params["hidden"])
        obj = cls(**params)
        obj.transformer_ = TableTransformer.from_dict(state["transformer"], metadata, table_name)
        obj.mean_ = np.asarray(state["mean"], dtype=np.float64)
        obj.scale_ = np.asarray(state["scale"], dtype=np.float64)
        obj.median_logit_ = float(state["median_logit"])
        obj.held_out_loss_ = float(state["held_out_loss"])
        dim = obj.transformer_.output_dim
        if len(obj.mean_) != dim or len(obj.scale_) != dim or not (obj.scale_ > 0).all():
            raise BundleError(
                f"{where}: the feature statistics have {len(obj.mean_)} means and "
                f"{len(obj.scale_)} positive scales for {dim} features. The bundle was damaged "
                "or tampered with; fit and save the model again."
            )
        widths = [dim, *obj.hidden]
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            check_tensor(tensors, f"refiner.hidden.{i}.weight", (fan_out, fan_in), where)
            check_tensor(tensors, f"refiner.hidden.{i}.bias", (fan_out,), where)
        check_tensor(tensors, "refiner.out.weight", (1, widths[-1]), where)
        check_tensor(tensors, "refiner.out.bias", (1,), where)
        obj.classifier_ = _Classifier(dim, obj.hidden, obj.dropout)
        weights = {k[len("refiner.") :]: v for k, v in tensors.items() if k.startswith("refiner.")}
        obj.classifier_.load_state_dict(weights)
        obj.classifier_.eval()
        return obj
