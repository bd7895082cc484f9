"""The one training loop of the deep synthesizers.

Batches are slices of a ``torch.randperm`` drawn on the device from a local generator (no
DataLoader, no worker processes, no per-row Python). Losses stay on the device during an epoch
and reach the host once per epoch, so a GPU is never stalled by a per-batch ``.item()``. The
engine also owns validation, early stopping, progress reports with an ETA, and checkpoints that
let a long fit resume where it stopped.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clinsynth.io._atomic import atomic_path

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout; a checkpoint of another version is not resumed.
CHECKPOINT_VERSION = 1

StepFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]
ProgressFn = Callable[[int, int, str], None]


@dataclass
class TrainingHistory:
    """Losses per epoch and per batch, as plain lists (the synthesizer makes DataFrames)."""

    epoch: dict[str, list[float]] = field(default_factory=dict)
    batch: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    best_epoch: int | None = None
    #: The last epoch trained when a deadline stopped training (None: it did not).
    stopped_at_deadline: int | None = None
    #: The epoch after which a guard stopped training (None: it did not), and the epoch whose
    #: weights were kept (the last one the guard accepted; None: none was).
    stopped_by_guard: int | None = None
    guard_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            "stopped_at_deadline": self.stopped_at_deadline,
            "stopped_by_guard": self.stopped_by_guard,
            "guard_epoch": self.guard_epoch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingHistory:
        return cls(
            epoch={k: list(v) for k, v in data["epoch"].items()},
            batch={k: list(v) for k, v in data["batch"].items()},
            stopped_early=bool(data.get("stopped_early", False)),
            best_epoch=data.get("best_epoch"),
            stopped_at_deadline=data.get("stopped_at_deadline"),
            stopped_by_guard=data.get("stopped_by_guard"),
            guard_epoch=data.get("guard_epoch"),
        )


@dataclass
class TrainingEngine:
    """Run ``epochs`` passes of ``step`` over shuffled batches of row indices.

    Parameters
    ----------
    modules : dict of str to Module
        Every network trained (saved in checkpoints, restored for early stopping).
    optimizers : dict of str to Optimizer
    step : callable
        ``step(batch_indices) -> {loss_name: scalar tensor}``; does the backward pass and the
        optimizer steps itself (GANs alternate several).
    n_rows : int
        Training rows; batches index ``[0, n_rows)``.
    batch_size : int
    epochs : int
    generator : torch.Generator
        On the training device; shuffles, and is saved in checkpoints.
    steps_per_epoch : int, optional
        Default: ``ceil(n_rows / batch_size)`` (every row once per epoch).
    validate : callable, optional
        ``validate() -> float``, the held-out loss after each epoch (lower is better).
    patience : int, optional
        Stop after this many epochs without a better validation loss; restore the best weights.
    progress : callable, optional
        ``progress(total_epochs, completed_epochs, message)``.
    checkpoint_path : path, optional
        Where to write checkpoints (atomically).
    checkpoint_every : int
        Epochs between checkpoints (the last epoch is always written).
    checkpoint_meta : dict
        JSON-able description checked before a checkpoint is resumed.
    verbose : bool
        Log every epoch at INFO level (DEBUG otherwise).
    deadline : float, optional
        A ``time.perf_counter()`` value: no epoch starts after it (a time budget's hard stop;
        the history says so in ``stopped_at_deadline``). At least one epoch always runs.
    guard : callable, optional
        ``guard(epoch) -> bool`` run every ``guard_every`` epochs and after the last: False
        stops training and restores the weights of the last epoch it accepted (the history
        says so in ``stopped_by_guard`` and ``guard_epoch``). The memorization guard.
    guard_every : int
        Epochs between two runs of ``guard``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    >>> def step(idx):
    ...     loss = net(x[idx]).pow(2).mean()
    ...     opt.zero_grad(); loss.backward(); opt.step()
    ...     return {"loss": loss.detach()}
    >>> engine = TrainingEngine({"net": net}, {"opt": opt}, step, n_rows=64, batch_size=16,
    ...                         epochs=3, generator=torch.Generator().manual_seed(0))
    >>> history = engine.run()
    >>> len(history.epoch["loss"])
    3
    """

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    step: StepFn
    n_rows: int
    batch_size: int
    epochs: int
    generator: torch.Generator
    steps_per_epoch: int | None = None
    validate: Callable[[], float] | None = None
    patience: int | None = None
    progress: ProgressFn | None = None
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 10
    checkpoint_meta: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False
    deadline: float | None = None
    guard: Callable[[int], bool] | None = None
    guard_every: int = 1

    def __post_init__(self) -> None:
        self.batch_size = max(1, min(self.batch_size, self.n_rows))
        if self.steps_per_epoch is None:
            self.steps_per_epoch = math.ceil(self.n_rows / self.batch_size)
        self.history = TrainingHistory()
        self._best_loss = math.inf
        self._best_state: dict[str, Any] | None = None
        self._bad_epochs = 0
        self._start_epoch = 0
        self._guard_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ loop
    def run(self, resume: dict[str, Any] | None = None) -> TrainingHistory:
        """Train; ``resume`` is a checkpoint from :func:`load_checkpoint` to continue from."""
        if resume is not None:
            self._restore(resume)
        device = self._device()
        started = time.perf_counter()
        done_here = 0
        for epoch in range(self._start_epoch + 1, self.epochs + 1):
            if self.history.stopped_early:
                break
            if self.deadline is not None and done_here and time.perf_counter() >= self.deadline:
                self.history.stopped_at_deadline = epoch - 1
                logger.info("time budget: training stopped after epoch %d", epoch - 1)
                break
            for module in self.modules.values():
                module.train()
            perm = torch.randperm(self.n_rows, generator=self.generator, device=device)
            batch_losses: dict[str, list[torch.Tensor]] = {}
            for b in range(self.steps_per_epoch):
                lo = (b * self.batch_size) % self.n_rows
                idx = perm[lo : lo + self.batch_size]
                for name, value in self.step(idx).items():
                    batch_losses.setdefault(name, []).append(value.detach())
            # One host transfer per epoch for every loss of every batch.
            names = list(batch_losses)
            table = torch.stack([torch.stack(batch_losses[n]) for n in names]).float().cpu()
            for j, name in enumerate(names):
                values = table[j].tolist()
                self.history.batch.setdefault(name, []).extend(values)
                self.history.epoch.setdefault(name, []).append(sum(values) / len(values))
            self.history.batch.setdefault("epoch", []).extend([epoch] * self.steps_per_epoch)
            self.history.batch.setdefault("batch", []).extend(range(self.steps_per_epoch))
            self.history.epoch.setdefault("epoch", []).append(epoch)
            if self.validate is not None:
                self._after_validation(epoch, float(self.validate()))
            done_here += 1
            if self.guard is not None and (epoch % self.guard_every == 0 or epoch == self.epochs):
                if not self._after_guard(epoch):
                    break
            self._report(epoch, names, started, done_here)
            last = epoch == self.epochs or self.history.stopped_early
            if self.checkpoint_path is not None and (epoch % self.checkpoint_every == 0 or last):
                self.save_checkpoint(epoch)
        if self.history.stopped_by_guard is not None:
            if self._guard_state is not None:
                self._load_states(self._guard_state)
        elif self._best_state is not None and self.patience is not None:
            self._load_states(self._best_state)
        for module in self.modules.values():
            module.eval()
        return self.history

    def _device(self) -> torch.device:
        for module in self.modules.values():
            for p in module.parameters():
                return p.device
        return torch.device("cpu")

    def _after_validation(self, epoch: int, loss: float) -> None:
        self.history.epoch.setdefault("val_loss", []).append(loss)
        if loss < self._best_loss:
            self._best_loss, self._bad_epochs = loss, 0
            self.history.best_epoch = epoch
            if self.patience is not None:
                self._best_state = {
                    name: copy.deepcopy(m.state_dict()) for name, m in self.modules.items()
                }
        else:
            self._bad_epochs += 1
            if self.patience is not None and self._bad_epochs >= self.patience:
                self.history.stopped_early = True
                logger.info(
                    "early stopping after epoch %d (best epoch %s)", epoch, self.history.best_epoch
                )

    def _after_guard(self, epoch: int) -> bool:
        """Run the guard after ``epoch``; False stops training."""
        if self.guard(epoch):  # type: ignore[misc]
            self.history.guard_epoch = epoch
            self._guard_state = {
                name: copy.deepcopy(m.state_dict()) for name, m in self.modules.items()
            }
            return True
        self.history.stopped_by_guard = epoch
        return False

    def _report(self, epoch: int, names: list[str], started: float, done_here: int) -> None:
        elapsed = time.perf_counter() - started
        left = 0 if self.history.stopped_early else self.epochs - epoch
        eta = elapsed / done_here * left
        losses = " ".join(f"{n} {self.history.epoch[n][-1]:.4g}" for n in names)
        if "val_loss" in self.history.epoch:
            losses += f" val_loss {self.history.epoch['val_loss'][-1]:.4g}"
        message = f"epoch {epoch}/{self.epochs} {losses} ETA {eta:.0f}s"
        logger.log(logging.INFO if self.verbose else logging.DEBUG, message)
        if self.progress is not None:
            total = epoch if self.history.stopped_early else self.epochs
            self.progress(total, epoch, message)

    # ------------------------------------------------------------------ checkpoints
    def state(self, epoch: int) -> dict[str, Any]:
        """Everything needed to continue training after ``epoch`` (tensors and plain values)."""
        return {
            "version": CHECKPOINT_VERSION,
            "epoch": epoch,
            "meta": self.checkpoint_meta,
            "modules": {name: m.state_dict() for name, m in self.modules.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "history": self.history.to_dict(),
            "best_loss": self._best_loss,
            "best_state": self._best_state,
            "bad_epochs": self._bad_epochs,
        }

    def save_checkpoint(self, epoch: int) -> Path:
        path = Path(self.checkpoint_path)  # type: ignore[arg-type]
        save_checkpoint(path, self.state(epoch))
        return path

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self._load_states(ckpt["modules"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        self.generator.set_state(ckpt["generator"].cpu())  # a CPU ByteTensor on any device
        self.history = TrainingHistory.from_dict(ckpt["history"])
        self._best_loss = float(ckpt["best_loss"])
        self._best_state = ckpt["best_state"]
        self._bad_epochs = int(ckpt["bad_epochs"])
        self._start_epoch = int(ckpt["epoch"])

    def _load_states(self, states: dict[str, Any]) -> None:
        for name, module in self.modules.items():
            module.load_state_dict(states[name])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain values, no pickle)."""
    return torch.load(path, map_location=device, weights_only=True)
