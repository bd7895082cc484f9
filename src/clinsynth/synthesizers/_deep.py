"""What every neural synthesizer shares: device, seeds, sampling, losses, persistence.

A model module (``_tvae``, ``_ctgan``, ...) only builds its networks and optimizers, says what
one training step is, and how to generate a batch of encoded rows; this module turns that into
``fit`` (one :class:`~clinsynth.synthesizers._trainer.Trainer`: validation, early stopping,
precision, DP-SGD, checkpoints and resume), ``sample`` in large batches under
``torch.inference_mode``, loss tables and plots, and the bundle's ``(json, tensors)``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from clinsynth._utils import derive_seed, one_openmp_thread
from clinsynth.errors import BundleError, DataError, check_param, parameter_error
from clinsynth.io import _schema as S
from clinsynth.metadata import Metadata
from clinsynth.synthesizers._base import _RUNTIME_PARAMS, BaseSynthesizer, _is_float, _is_int
from clinsynth.synthesizers._dp import DP_PARAMETERS, PrivateStep
from clinsynth.synthesizers._trainer import PRECISIONS, Trainer, fast_bfloat16
from clinsynth.synthesizers.nn import (
    AdversarialTraining,
    SpanLayout,
    TrainingHistory,
    build_module,
)


def is_dims(value: Any) -> bool:
    """A tuple/list of positive ints (layer widths); empty means no hidden layer."""
    return isinstance(value, tuple | list) and all(_is_int(1)(v) for v in value)


DIMS = (is_dims, "a tuple of ints >= 1")
POSITIVE_FLOAT = (lambda v: _is_float(0.0)(v) and v > 0, "a float > 0")
NON_NEGATIVE_FLOAT = (_is_float(0.0), "a float >= 0")


class DeepSynthesizer(BaseSynthesizer):
    """Base of the neural synthesizers (TVAE, CTGAN, CWGAN-GP, HVAE-GAN, TabDDPM).

    Differential privacy is a part, not a layer of classes: with ``epsilon`` the fit owns a
    :class:`~clinsynth.synthesizers._dp.DifferentialPrivacy` (``self._dp_``), and the training
    engine runs the model's private step (``_dp_training()``, a
    :class:`~clinsynth.synthesizers._dp.PrivateStep`: the networks that read real rows and a
    step that draws ``dp.batch(...)`` and calls ``dp.step(...)``) inside a
    :class:`~clinsynth.synthesizers._dp.DPSGDTraining`, its noise calibrated for the whole
    schedule (``epochs x steps per epoch x updates per step``) and recorded in the ledger when
    training ends. With ``epsilon=None`` nothing changes.

    Parameters
    ----------
    metadata : Metadata
    epsilon, delta, max_grad_norm, public_bounds
        Differential privacy (:class:`~clinsynth.synthesizers._dp.DifferentialPrivacy`).
    validation_split : float
        Fraction of the rows held out to measure a validation loss after every epoch.
    early_stopping_patience : int, optional
        Stop after this many epochs without a better validation loss and keep the best weights
        (needs ``validation_split > 0``).
    memorization_guard : float, optional
        Watch memorization while training (:mod:`clinsynth.synthesizers._guard`): 10% of the
        rows (at least 80, at most 2,000; tables under 400 rows are not watched) are held out
        of training, and five times during training the DCR share of 500 synthetic rows
        against the training rows and the held-out rows is measured. When it exceeds this
        value by more than its standard error, training stops and the weights of the last
        check that passed are kept (``memorization_`` lists every check,
        ``stopped_by_guard_`` the epoch); 0.55 is the level the evaluation flags. With
        ``epsilon`` the guard is off (differential privacy bounds memorization, and the
        held-out rows would be read outside the budget). Off by default (``None``, every row
        trains the model): on the shared small tables the slice cost quality (TVAE on heart
        disease: 0.883 to 0.845) and is too small to resolve the share's drift
        (docs/PRIVACY.md).
    checkpoint_dir : str or path, optional
        Folder for a checkpoint of the training state, written atomically every
        ``checkpoint_every`` epochs; ``fit(data, resume=True)`` continues from it.
    checkpoint_every : int
        Epochs between checkpoints.
    training_precision : {"float32", "bfloat16", "auto"}
        Precision of the matrix products in training (TVAE, CTGAN, CWGAN-GP; the others train in
        float32). ``"bfloat16"`` multiplies bfloat16 inputs with float32 accumulation and keeps
        the weights, the optimizer, the losses and the element-wise work in float32; it pays
        on hardware with bfloat16 matrix units (CPUs with AMX, GPUs from Ampere on), at the
        same fidelity (``benchmarks/bench_precision.py``, docs/BENCHMARKS.md). ``"auto"``:
        bfloat16 on CPUs with AMX, float32 elsewhere (GPUs included, not measured yet) and
        with differential privacy. The precision a fit ran in is ``trained_precision_``,
        saved with the model.
    sample_precision : {"float32", "bfloat16", "auto"}
        Precision of the network's matrix products when sampling (unconditional ``sample``;
        conditional sampling stays in float32). ``"bfloat16"`` is 2-3x faster on CPUs with
        AMX or AVX-512 BF16 and on GPUs, and perturbs each raw network output by about 1%
        of its scale (the activations and draws stay float32): for bulk sampling, at a
        fidelity measured in ``docs/BENCHMARKS.md``. ``"auto"``: bfloat16 on CPUs with AMX,
        float32 elsewhere. A runtime option: not saved with the model, and may be changed on
        a fitted or loaded one.
    **kwargs
        Common options of :class:`~clinsynth.synthesizers.BaseSynthesizer` (``random_state``,
        ``device``, ``progress``, ``verbose``, ...).
    """

    _runtime_params: ClassVar[tuple[str, ...]] = (
        *_RUNTIME_PARAMS,
        "checkpoint_dir",
        "checkpoint_every",
        "sample_precision",
    )
    #: Models that train with ``training_precision="bfloat16"``.
    _bf16_training: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        **DP_PARAMETERS,
        "epochs": (_is_int(1), "an int >= 1"),
        "batch_size": (_is_int(1), "an int >= 1"),
        "validation_split": (lambda v: _is_float(0.0)(v) and v < 1.0, "a float in [0, 1)"),
        "early_stopping_patience": (lambda v: v is None or _is_int(1)(v), "None or an int >= 1"),
        "memorization_guard": (
            lambda v: v is None or (_is_float(0.5)(v) and v < 1.0),
            "None or a float in [0.5, 1)",
        ),
        "checkpoint_dir": (
            lambda v: v is None or isinstance(v, str | os.PathLike),
            "None or a folder path",
        ),
        "checkpoint_every": (_is_int(1), "an int >= 1"),
        "sample_precision": (
            lambda v: v in PRECISIONS or v == "auto",
            '"float32", "bfloat16" or "auto"',
        ),
        "training_precision": (
            lambda v: v in PRECISIONS or v == "auto",
            '"float32", "bfloat16" or "auto"',
        ),
        "verbose": (lambda v: isinstance(v, bool), "a bool"),
        "progress": (lambda v: v is None or callable(v), "None or a callable"),
    }
    #: Rows generated per forward pass when sampling.
    _sample_batch_size: ClassVar[int] = 16_384
    #: Names of the networks saved in the bundle (attributes of the model).
    _network_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        metadata: Metadata,
        *,
        epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        public_bounds: dict[str, Any] | None = None,
        validation_split: float = 0.0,
        early_stopping_patience: int | None = None,
        memorization_guard: float | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 10,
        training_precision: str = "float32",
        sample_precision: str = "float32",
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.public_bounds = public_bounds
        self.training_precision = training_precision
        self.sample_precision = sample_precision
        self.validation_split = validation_split
        self.early_stopping_patience = early_stopping_patience
        self.memorization_guard = memorization_guard
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, *, resume: bool = False) -> DeepSynthesizer:
        """Learn the table.

        Parameters
        ----------
        data : DataFrame
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir`` (written by an earlier, possibly
            interrupted, fit with the same parameters and data). Training picks up after the
            last saved epoch and ends with the same weights an uninterrupted fit would have;
            ``epochs`` may be raised to train an extended schedule. Without a checkpoint,
            training starts from scratch.
        """
        self._validate_params()
        if resume and self.checkpoint_dir is None:
            raise parameter_error(
                type(self).__name__,
                "checkpoint_dir",
                None,
                "the folder of the checkpoint with fit(resume=True)",
                "Set checkpoint_dir, or fit without resume=True.",
            )
        self._check_params()
        self._trainer_ = Trainer(self, resume=resume)
        try:
            return super().fit(data)
        finally:
            self._trainer_ = None  # with the training rows held for the guard, if fit failed
            self._resume_state_ = None

    def _check_params(self) -> None:
        """Checks across parameters, run before any work (models add their own)."""
        Trainer.check_params(self)

    def _training_precision(self) -> str:
        """The precision training runs in: ``"auto"`` resolved for this model and device."""
        if self.training_precision != "auto":
            return self.training_precision
        if self._bf16_training and not self.dp_enabled and fast_bfloat16(self._torch_device()):
            return "bfloat16"
        return "float32"

    def _sample_precision(self, device: torch.device) -> str:
        """The precision of sampling's products: ``"auto"`` resolved for ``device``."""
        if self.sample_precision != "auto":
            return self.sample_precision
        return "bfloat16" if fast_bfloat16(device) else "float32"

    def _matmul_dtype(self) -> torch.dtype:
        """Dtype of the hand-written training passes' matrix products."""
        return PRECISIONS[self._training_precision()] or torch.float32

    def _torch_device(self) -> torch.device:
        return torch_device(self.device)

    def _seeds(self) -> dict[str, int]:
        rng = np.random.default_rng(self._fit_seed_)
        names = ("encode", "init", "train", "split", "valid", "guard")
        return {k: derive_seed(rng) for k in names}

    def _encode_for_fit(self, data: pd.DataFrame) -> np.ndarray:
        trainer = getattr(self, "_trainer_", None)
        if trainer is None:  # _fit called outside fit (as a part of another model)
            trainer = self._trainer_ = Trainer(self)
        trainer.prepare(data)
        # The mixture component of every number is drawn from its posterior (CTGAN's encoding).
        return self._transformer_.transform(data, random_state=self._seeds()["encode"])

    def _fit(self, encoded: np.ndarray) -> None:
        if encoded.shape[1] == 0:
            raise DataError(
                f"{type(self).__name__} has nothing to learn: every column of the table is "
                "generated (identifiers, personal data, values too rare to learn). Declare the "
                "columns that carry information as numerical, categorical, boolean, ordinal or "
                "datetime in the metadata."
            )
        trainer = getattr(self, "_trainer_", None) or Trainer(self)
        trainer.run(encoded)

    # ------------------------------------------------------------------ model hooks
    def _build_networks(self, generator: torch.Generator, device: torch.device) -> None:
        """Create the networks (``build_module``): ``name_`` for each name in ``_network_names``."""
        raise NotImplementedError

    def _make_optimizers(self, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _prepare_training(self, data: torch.Tensor, generator: torch.Generator) -> None:
        """Keep what the training steps need (the data tensor, samplers). A model whose
        training step applies ``training_precision`` itself (hand-written passes) sets
        ``self._own_precision_``; the others run under autocast."""
        self._data_ = data
        self._generator_ = generator
        self._own_precision_ = False

    def _release_training(self) -> None:
        """Drop the training tensors: a fitted model holds no training row."""
        self._data_ = None
        self._generator_ = None

    def _dp_training(self) -> PrivateStep:
        """How the model trains by DP-SGD (with ``epsilon``): the networks that read real rows
        and the private training step."""
        raise NotImplementedError

    def _train_step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _steps_per_epoch(self, n_rows: int) -> int | None:
        return None

    def _validation_loss(self, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _generate(self, num_rows: int, generator: torch.Generator, **kwargs: Any) -> torch.Tensor:
        """``num_rows`` sampled rows, transposed: ``(permuted columns, rows)``.

        See :func:`~clinsynth.synthesizers.nn.output_t` and ``sample_rows_t``.
        """
        raise NotImplementedError

    def _networks(self) -> dict[str, torch.nn.Module]:
        return {name: getattr(self, f"{name}_") for name in self._network_names}

    def _build(
        self,
        factory: Callable[[], torch.nn.Module],
        generator: torch.Generator,
        device: torch.device,
    ) -> torch.nn.Module:
        if getattr(self, "_meta_build", False):  # shapes only (checking a bundle): no memory
            with torch.device("meta"):
                return factory()
        return build_module(factory, generator, device)

    # ------------------------------------------------------------------ sample
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        return self._generate_encoded(num_rows, rng)

    def _generate_encoded(
        self, num_rows: int, rng: np.random.Generator, **kwargs: Any
    ) -> np.ndarray:
        """Encoded rows in the transformer's column order (column-major, for fast decoding)."""
        device = self._torch_device()
        generator = torch.Generator(device=device).manual_seed(derive_seed(rng))
        out_t = torch.empty((self._layout_.dim, num_rows), dtype=torch.float32)
        order = torch.as_tensor(self._layout_.order)
        for net in self._networks().values():
            net.eval()
        check_param(
            type(self).__name__,
            "sample_precision",
            self.sample_precision,
            self.sample_precision in PRECISIONS or self.sample_precision == "auto",
            '"float32", "bfloat16" or "auto"',
        )
        low = PRECISIONS[self._sample_precision(device)]
        precision = (
            torch.autocast(device.type, dtype=low) if low is not None else contextlib.nullcontext()
        )
        # One OpenMP thread: between the network's products the rows are decoded in numpy, and
        # idle OpenMP workers spin meanwhile (measured: 2.5-3.5x the CPU time, and slower on
        # two shared cores). Sampling's parallelism is blocks side by side (sample_batches).
        with torch.inference_mode(), precision, one_openmp_thread():
            for start in range(0, num_rows, self._sample_batch_size):
                n = min(self._sample_batch_size, num_rows - start)
                rows_t = self._generate(n, generator, **kwargs)
                # Row j of the permuted space is column order[j] of the transformer's layout:
                # one contiguous copy per column, straight into the output.
                out_t[:, start : start + n].index_copy_(0, order, rows_t.float().cpu())
        return out_t.numpy().T

    # ------------------------------------------------------------------ losses
    def _set_history(self, history: TrainingHistory) -> None:
        epoch = pd.DataFrame(history.epoch)
        self._loss_history_ = epoch[["epoch", *[c for c in epoch.columns if c != "epoch"]]]
        batch = pd.DataFrame(history.batch)
        self._batch_loss_history_ = batch[
            ["epoch", "batch", *[c for c in batch.columns if c not in ("epoch", "batch")]]
        ]
        self.stopped_early_ = history.stopped_early
        self.best_epoch_ = history.best_epoch
        #: The epoch after which the memorization guard stopped training (None: it did not).
        self.stopped_by_guard_ = history.stopped_by_guard

    def get_loss_values(self, *, per_batch: bool = False) -> pd.DataFrame:
        """Training losses: one row per epoch, or per batch with ``per_batch=True``.

        Columns: ``epoch`` (and ``batch``), then the model's losses (``loss`` for the VAEs,
        ``generator_loss`` and ``discriminator_loss`` for the GANs) and ``val_loss`` when a
        validation split was held out.
        """
        self._check_fitted()
        if per_batch:
            return self._batch_loss_history_.copy()
        return self._loss_history_.copy()

    def plot_loss(self, *, show_batch_loss: bool = False) -> Any:
        """A plotly figure of the losses per epoch (and, faintly, per batch)."""
        import plotly.graph_objects as go

        epochs = self.get_loss_values()
        fig = go.Figure()
        palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
        names = [c for c in epochs.columns if c != "epoch"]
        for i, name in enumerate(names):
            color = palette[i % len(palette)]
            if show_batch_loss and name in self._batch_loss_history_:
                batch = self._batch_loss_history_
                steps = batch.groupby("epoch")["batch"].transform("max") + 1
                x = batch["epoch"] - 1 + (batch["batch"] + 1) / steps
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=batch[name],
                        mode="lines",
                        opacity=0.3,
                        line={"width": 1, "color": color},
                        name=f"{name} (batch)",
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=epochs["epoch"],
                    y=epochs[name],
                    mode="lines",
                    line={"width": 2, "color": color},
                    name=name,
                )
            )
        fig.update_layout(
            title=f"{type(self).__name__} training loss",
            xaxis_title="epoch",
            yaxis_title="loss",
            template="plotly_white",
        )
        return fig

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        tensors: dict[str, Any] = {}
        for name, net in self._networks().items():
            for key, value in net.state_dict().items():
                tensors[f"{name}.{key}"] = value.detach().cpu()
        batch = self._batch_loss_history_
        tensors["history.batch"] = torch.from_numpy(batch.to_numpy(dtype=np.float64))
        state = {
            "output_dim": int(self._layout_.dim),
            "batch_loss_columns": list(batch.columns),
            "stopped_early": bool(self.stopped_early_),
            "best_epoch": self.best_epoch_,
            "trained_precision": self.trained_precision_,
            "stopped_by_guard": self.stopped_by_guard_,
            "memorization": self.memorization_,
            **self._extra_state(),
        }
        return state, tensors

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        from clinsynth.synthesizers import _deep_state as checks

        where = f"model.json and weights.pt ({self._model_name})"
        checks.check_params(self, where)
        S.check_json(state, checks.STATE, f"model.json ({self._model_name})")
        self._layout_ = SpanLayout(self._transformer_.output_info, level_major=True)
        if int(state["output_dim"]) != self._layout_.dim:
            raise BundleError(
                f"{where}: the network width {state['output_dim']} does not match the "
                f"transformer's {self._layout_.dim}. Fit and save the model again."
            )
        checks.check_history(tensors, state["batch_loss_columns"], where)
        self._load_extra_state(state)
        checks.check_tensors(self, tensors, where)  # before any real allocation
        device = self._torch_device()
        self._build_networks(torch.Generator().manual_seed(0), device)
        for name, net in self._networks().items():
            prefix = f"{name}."
            sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            net.load_state_dict(sub)
            net.eval()
        self._batch_loss_history_ = pd.DataFrame(
            tensors["history.batch"].numpy(), columns=state["batch_loss_columns"]
        ).astype({"epoch": "int64", "batch": "int64"})
        self.stopped_early_ = bool(state.get("stopped_early", False))
        self.best_epoch_ = state.get("best_epoch")
        self.stopped_by_guard_ = state.get("stopped_by_guard")
        self.memorization_ = [dict(m) for m in state.get("memorization", [])]
        self.trained_precision_ = state.get("trained_precision", self.training_precision)
        if self._loss_history_ is not None and "epoch" in self._loss_history_:
            self._loss_history_ = self._loss_history_.astype({"epoch": "int64"})

    def _extra_state(self) -> dict[str, Any]:
        """JSON-able model state beyond the network weights."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_extra_state` before the networks are built."""


def adversarial_training(model: Any, **options: Any) -> AdversarialTraining | None:
    """The training step of a conditional GAN model (CTGAN, CWGAN-GP) from its networks,
    optimizers, critic batch and fake rows, with its ``options`` (``extra_loss``,
    ``penalty_weight``); None with differential privacy, where the model's private step
    (``_dp_training``) trains instead."""
    if model.dp_enabled:
        return None
    return AdversarialTraining(
        model.generator_,
        model.discriminator_,
        model._opt_g_,
        model._opt_d_,
        critic_batch=model._critic_batch,
        fake_rows=model._fake_rows,
        critic_steps=int(model.discriminator_steps),
        matmul_dtype=model._matmul_dtype(),
        **options,
    )


def torch_device(device: str) -> torch.device:
    """The torch device a model's ``device`` option names ('auto': a GPU when there is one)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise parameter_error(
            "the model",
            "device",
            device,
            "a device torch sees, but torch sees no CUDA GPU (torch.cuda.is_available() is False)",
            "Use device='cpu', or 'auto' to take a GPU only when there is one.",
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise parameter_error(
            "the model", "device", device, "a device torch sees (no Apple GPU)", "Use device='cpu'."
        )
    return torch.device(device)
