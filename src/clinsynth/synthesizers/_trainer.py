"""The Trainer: one fit of a neural synthesizer, assembled around ``nn.TrainingEngine``.

A :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` says what its networks, optimizers,
training step, validation loss and generation are; the :class:`Trainer` does the rest of a fit:
the device, the held-out rows of the memorization guard, the validation split, the precision the
step runs in, DP-SGD around the step (with ``epsilon``), progress (and ``verbose`` printing),
the time budget's deadline, checkpoints and resuming from them, and the history the engine
returns. Same seeds, same order of draws: a fit gives the same weights as before the Trainer
was its own unit.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from clinsynth.errors import ParameterError, parameter_error
from clinsynth.synthesizers._guard import MemorizationGuard, check_every, holdout_split
from clinsynth.synthesizers.nn import SpanLayout, TrainingEngine, load_checkpoint
from clinsynth.synthesizers.nn._spans import _TINY

if TYPE_CHECKING:
    from clinsynth.synthesizers._deep import DeepSynthesizer
    from clinsynth.synthesizers._dp import DPSGDTraining

logger = logging.getLogger(__name__)

#: ``training_precision`` / ``sample_precision`` values and the dtype of the matrix products
#: they ask for (None: float32, no autocast).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}

Step = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``training_precision="auto"`` trains in bfloat16 on ``device``: a CPU with AMX
    tiles (Intel Sapphire Rapids and later), where bfloat16 products run several times faster
    than float32 ones and the fidelity was measured (``benchmarks/bench_precision.py``).
    GPUs stay in float32 until measured the same way.

    Examples
    --------
    >>> fast_bfloat16(torch.device("meta"))
    False
    """
    if device.type != "cpu":
        return False
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check()) if check is not None else False


def printing(progress: Callable[..., None] | None, name: str) -> Callable[..., None]:
    """``verbose=True``: one line per epoch on stdout (the epoch, its losses and the ETA), as
    SDV users expect, then the caller's own progress callback. The library otherwise only
    logs; verbose is the user asking for the print."""
    import sys

    def update(total: int, completed: int, message: str = "") -> None:
        print(f"{name} {message}", file=sys.stdout, flush=True)
        if progress is not None:
            progress(total, completed, message)

    return update


class Trainer:
    """One fit of ``model``: :meth:`prepare` on the table, then :meth:`run` on its encoding.

    Parameters
    ----------
    model : DeepSynthesizer
        The model being fitted; its parameters (``epochs``, ``batch_size``,
        ``validation_split``, ``early_stopping_patience``, ``memorization_guard``,
        ``checkpoint_dir``, ``checkpoint_every``, ``training_precision``, ``verbose``,
        ``progress``) drive the fit.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` when there is one.
    """

    def __init__(self, model: DeepSynthesizer, *, resume: bool = False) -> None:
        self.model = model
        self.resume = bool(resume)
        self._guard_rows: tuple[pd.DataFrame, np.ndarray] | None = None
        self._fingerprint: str | None = None

    @staticmethod
    def check_params(model: DeepSynthesizer) -> None:
        """The training parameters that do not go together (precision, early stopping,
        differential privacy) and the device, checked before any work."""
        name = type(model).__name__
        if model.training_precision == "bfloat16":
            if not model._bf16_training:
                raise parameter_error(
                    name,
                    "training_precision",
                    model.training_precision,
                    f"float32 ({name} trains in float32; bfloat16 is for TVAE, CTGAN and CWGAN-GP)",
                    "Leave training_precision out.",
                )
            if model.dp_enabled:
                raise parameter_error(
                    name,
                    "training_precision",
                    model.training_precision,
                    "float32 with differential privacy",
                    "Leave training_precision out, or drop epsilon.",
                )
        if model.early_stopping_patience is not None and model.validation_split == 0:
            raise parameter_error(
                name,
                "early_stopping_patience",
                model.early_stopping_patience,
                "None without validation rows (validation_split=0)",
                "Set validation_split > 0 (e.g. 0.1).",
            )
        model._torch_device()
        if not model.dp_enabled:
            return
        if model.validation_split:
            raise parameter_error(
                name,
                "validation_split",
                model.validation_split,
                "0 with epsilon (the validation loss is computed on real rows outside the "
                "privacy budget)",
                "Use validation_split=0.",
            )
        if model.early_stopping_patience is not None:
            raise parameter_error(
                name,
                "early_stopping_patience",
                model.early_stopping_patience,
                "None with epsilon (stopping on a real-data loss spends privacy outside the "
                "budget)",
                "Leave early_stopping_patience out.",
            )

    # ------------------------------------------------------------------ before encoding
    def prepare(self, data: pd.DataFrame) -> None:
        """Before the table is encoded: its fingerprint and the checkpoint to resume (which
        restores the interrupted fit's seeds), and the rows the memorization guard holds out.
        The checkpoint read is ``model._resume_state_`` (a model's ``_prepare_training`` may
        read the epoch it resumes at)."""
        model = self.model
        model._resume_state_ = None
        if model.checkpoint_dir is not None:
            hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
            self._fingerprint = hashlib.sha256(hashed.tobytes()).hexdigest()
        if self.resume:
            model._resume_state_ = self.read_checkpoint()
        self._guard_rows = None
        if model.memorization_guard is not None and not model.dp_enabled:
            mask = holdout_split(len(data), model._seeds()["guard"])
            if mask is not None:
                self._guard_rows = (data, mask)  # released in run

    # ------------------------------------------------------------------ the fit
    def run(self, encoded: np.ndarray) -> None:
        """Train the model's networks on ``encoded`` rows and keep the history on the model."""
        model = self.model
        device = model._torch_device()
        model._layout_ = SpanLayout(model._transformer_.output_info, level_major=True)
        seeds = model._seeds()
        guard, encoded = self._guard(encoded, seeds)
        data, valid = self._tensors(encoded, seeds, device)
        model._build_networks(torch.Generator().manual_seed(seeds["init"]), device)
        optimizers = model._make_optimizers(device)
        generator = torch.Generator(device=device).manual_seed(seeds["train"])
        model._prepare_training(data, generator)
        dp_sgd, step = (
            self._dp_sgd(len(data), generator) if model._dp_ is not None else (None, None)
        )
        #: The precision training ran in ("auto" resolved), saved with the model.
        model.trained_precision_ = model._training_precision()
        logger.info("%s trains in %s", type(model).__name__, model.trained_precision_)
        engine = TrainingEngine(
            modules=model._networks(),
            optimizers=optimizers,
            step=step or self._step(device),
            n_rows=len(data),
            batch_size=model.batch_size,
            epochs=model.epochs,
            generator=generator,
            steps_per_epoch=model._steps_per_epoch(len(data)),
            validate=self._validate(valid, seeds, device),
            patience=model.early_stopping_patience,
            progress=printing(model.progress, type(model).__name__)
            if model.verbose
            else model.progress,
            checkpoint_path=self.checkpoint_path(),
            checkpoint_every=model.checkpoint_every,
            checkpoint_meta=self.checkpoint_meta() if model.checkpoint_dir is not None else {},
            verbose=model.verbose,
            # A time budget's hard stop, set by AutoSynthesizer (a runtime choice, not saved).
            deadline=getattr(model, "_deadline", None),
            guard=guard,
            guard_every=check_every(model.epochs),
        )
        try:
            history = engine.run(resume=model._resume_state_)
        finally:
            model._release_training()
            if dp_sgd is not None:  # the planned steps all ran (no early stopping with DP)
                details = dp_sgd.record(model._dp_.accountant)
                model.privacy_budget_ = model._dp_.budget(**details, epochs=int(model.epochs))
        model._set_history(history)
        #: Every check of the memorization guard (epoch, DCR share, its SE); empty without it.
        model.memorization_ = list(guard.log) if guard is not None else []

    def _guard(
        self, encoded: np.ndarray, seeds: dict[str, int]
    ) -> tuple[MemorizationGuard | None, np.ndarray]:
        """The memorization guard and the encoded rows left for training."""
        rows, self._guard_rows = self._guard_rows, None
        if rows is None:
            return None, encoded
        model = self.model
        data, mask = rows
        rng = np.random.default_rng(seeds["guard"])

        def generate(n: int) -> pd.DataFrame:
            return model._transformer_.inverse_transform(
                model._generate_encoded(n, rng), random_state=rng
            )

        guard = MemorizationGuard(
            threshold=float(model.memorization_guard),  # type: ignore[arg-type]
            train=data[~mask],
            holdout=data[mask],
            table=model._transformer_._table(),
            generate=generate,
            seed=seeds["guard"],
        )
        return guard, encoded[~mask]

    def _tensors(
        self, encoded: np.ndarray, seeds: dict[str, int], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The training rows on the device (in the layout's order) and the validation rows."""
        model = self.model
        data = torch.from_numpy(np.ascontiguousarray(encoded[:, model._layout_.order]))
        # Encoded values like 1e-31 (a number at its mixture component's mean) are zero to the
        # networks, but their products with the weights are denormal floats, which the CPU
        # multiplies up to 100x slower: every matrix product that reads them crawls. Values
        # below _TINY (the threshold the Gumbel-softmax uses too) are set to 0.
        data.masked_fill_(data.abs() < _TINY, 0.0)
        n_val = int(math.floor(len(data) * model.validation_split))
        if n_val and len(data) - n_val < 1:
            n_val = 0
        valid = None
        if n_val:
            split = torch.Generator().manual_seed(seeds["split"])
            perm = torch.randperm(len(data), generator=split)
            valid, data = data[perm[:n_val]].to(device), data[perm[n_val:]]
        return data.to(device), valid

    def _validate(
        self, valid: torch.Tensor | None, seeds: dict[str, int], device: torch.device
    ) -> Callable[[], float] | None:
        """The validation loss after an epoch (None without validation rows)."""
        if valid is None:
            return None
        model = self.model

        def validate() -> float:
            g = torch.Generator(device=device).manual_seed(seeds["valid"])
            for net in model._networks().values():
                net.eval()
            with torch.no_grad():
                return float(model._validation_loss(valid, g))

        return validate

    def _step(self, device: torch.device) -> Step:
        """The model's step, under autocast when it trains in bfloat16 and does not apply the
        precision itself."""
        model = self.model
        low = PRECISIONS[model.trained_precision_]
        if low is None or model._own_precision_:
            return model._train_step

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            with torch.autocast(device.type, dtype=low):
                return model._train_step(idx)

        return step

    def _dp_sgd(self, n: int, generator: torch.Generator) -> tuple[DPSGDTraining, Step]:
        """DP-SGD for the whole schedule and the engine's step that runs the private step."""
        model = self.model
        private = model._dp_training()
        batch_size = int(model.batch_size)
        per_epoch = model._steps_per_epoch(n) or math.ceil(n / max(1, min(batch_size, n)))
        modules = private.modules
        networks = (
            sorted(modules)
            if isinstance(modules, dict)
            else [name for name, net in model._networks().items() if net is modules]
        )
        dp_sgd = model._dp_.sgd(
            modules,
            networks,
            num_rows=n,
            batch_size=batch_size,
            steps=int(model.epochs) * per_epoch * private.updates,
            generator=generator,
        )
        return dp_sgd, dp_sgd.wrap(private.step)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self) -> Path | None:
        """Where the checkpoint is written (None without ``checkpoint_dir``)."""
        model = self.model
        if model.checkpoint_dir is None:
            return None
        return Path(model.checkpoint_dir) / f"{model._model_name}.checkpoint.pt"

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: the model, its parameters (but
        ``epochs`` and runtime options), the data's fingerprint, and the seeds it ran with."""
        model = self.model
        skip = (*model._runtime_params, "epochs", "progress")
        params = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in model.get_params().items()
            if k not in skip and not callable(v)
        }
        return {
            "model": model._model_name,
            "params": repr(sorted(params.items())),
            "data": self._fingerprint,
            "fit_seed": int(model._fit_seed_),
            "sample_seed": int(model._sample_seed_),
        }

    def read_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint to resume, checked against this fit (None when there is none); the
        model takes the interrupted fit's seeds."""
        model = self.model
        path = self.checkpoint_path()
        if path is None or not path.exists():
            logger.info("no checkpoint at %s: training from the start", path)
            return None
        state = load_checkpoint(path, model._torch_device())
        meta = state.get("meta", {})
        name = type(model).__name__
        if meta.get("model") != model._model_name:
            raise ParameterError(
                f"The checkpoint {path} belongs to model {meta.get('model')!r}, not {name}. Use "
                "another checkpoint_dir or fit without resume=True."
            )
        if meta.get("data") != self._fingerprint:
            raise ParameterError(
                f"The checkpoint {path} was trained on other data than the table given to fit. "
                "Pass the same data, or fit without resume=True to start over."
            )
        # Same seeds as the interrupted fit, even when random_state is None.
        model._fit_seed_, model._sample_seed_ = int(meta["fit_seed"]), int(meta["sample_seed"])
        expected = self.checkpoint_meta()
        if meta.get("params") != expected["params"]:
            raise ParameterError(
                f"The checkpoint {path} was written by a {name} with other parameters "
                f"({meta.get('params')}); this one has {expected['params']}. Use the same "
                "parameters (only epochs may change), another checkpoint_dir, or fit without "
                "resume=True."
            )
        return state
