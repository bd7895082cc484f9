"""The federation's deep model: TVAE weights trained by DP-SGD at each site and averaged.

TVAE is the model: one loss, no adversary, so an averaged encoder/decoder pair is still a
trained VAE (averaging two GANs' generators and critics separately does not give a trained
pair), it is the project's fastest DP-SGD model per step, and it is strong on mid-sized tables.

A site trains on its rows only (:class:`SiteTrainer`): per-row clipped gradients with Gaussian
noise on Poisson batches (:class:`~clinsynth.privacy.DPSGD`), its own
:class:`~clinsynth.privacy.PrivacyAccountant`, its own sampling rate, its noise calibrated so
that its statistics and every planned round together spend exactly its epsilon. The server
averages the sites' weights (:func:`fedavg`), weighted by their noisy sizes, and writes a normal
clinsynth bundle (:func:`federated_model`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from clinsynth.errors import FederationError, PrivacyError
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.privacy import (
    DPSGD,
    PrivacyAccountant,
    calibrate_noise_multiplier,
    epsilon_from_rdp,
    poisson_batch,
    sampled_gaussian_rdp,
)
from clinsynth.synthesizers import TVAESynthesizer
from clinsynth.synthesizers import _assembly as assembly
from clinsynth.synthesizers._dp import ACCOUNTANT
from clinsynth.synthesizers.nn._optim import adam
from clinsynth.transform import TableTransformer

#: TVAE parameters a federation may set (the server's plan), with their defaults.
MODEL_DEFAULTS: dict[str, Any] = {
    "embedding_dim": 64,
    "compress_dims": [128, 128],
    "decompress_dims": [128, 128],
    "batch_size": 256,
    "learning_rate": 2e-3,
    "l2scale": 1e-5,
    "loss_factor": 2.0,
    "max_grad_norm": 1.0,
}


def build_model(
    metadata: Metadata | TableMetadata,
    transformer: TableTransformer,
    params: dict[str, Any],
    seed: int = 0,
) -> TVAESynthesizer:
    """A TVAE with the federation's transformer and freshly initialized networks (``seed``:
    the same at the server and every site, so round 0 starts from one model)."""
    if isinstance(metadata, TableMetadata):
        metadata = Metadata({"table": metadata})
    p = {**MODEL_DEFAULTS, **params}
    model = TVAESynthesizer(
        metadata,
        embedding_dim=int(p["embedding_dim"]),
        compress_dims=tuple(p["compress_dims"]),
        decompress_dims=tuple(p["decompress_dims"]),
        batch_size=int(p["batch_size"]),
        learning_rate=float(p["learning_rate"]),
        l2scale=float(p["l2scale"]),
        loss_factor=float(p["loss_factor"]),
        max_grad_norm=float(p["max_grad_norm"]),
        epsilon=float(p.get("epsilon", 1.0)),
        random_state=seed,
    )
    assembly.attach_transformer(model, transformer, seed=seed)
    return model


def weight_names(model: TVAESynthesizer) -> list[str]:
    """The order of the weight arrays exchanged (every network's state, sorted)."""
    return [
        f"{name}.{key}"
        for name, net in assembly.networks(model).items()
        for key in net.state_dict()
    ]


def get_weights(model: TVAESynthesizer) -> list[np.ndarray]:
    return [
        v.detach().cpu().numpy().copy()
        for net in assembly.networks(model).values()
        for v in net.state_dict().values()
    ]


def set_weights(model: TVAESynthesizer, weights: list[np.ndarray]) -> None:
    """Load ``weights`` (in :func:`weight_names` order), every shape checked."""
    names = weight_names(model)
    if len(weights) != len(names):
        raise FederationError(
            f"Received {len(weights)} weight arrays; the model has {len(names)}. The server "
            "and the site run different model settings or versions."
        )
    i = 0
    for net in assembly.networks(model).values():
        state = net.state_dict()
        new = {}
        for key, value in state.items():
            w = np.asarray(weights[i])
            if w.shape != tuple(value.shape) or not np.all(np.isfinite(w)):
                raise FederationError(
                    f"Weight '{names[i]}' has shape {w.shape} (or values that are not finite); "
                    f"expected {tuple(value.shape)}."
                )
            new[key] = torch.as_tensor(w, dtype=value.dtype)
            i += 1
        net.load_state_dict(new)


def fedavg(updates: list[tuple[list[np.ndarray], float]]) -> list[np.ndarray]:
    """Average weight lists, weighted by each site's (noisy) size; sites of weight 0 (stopped)
    are left out.

    >>> a, b = [np.zeros(2)], [np.ones(2)]
    >>> fedavg([(a, 1.0), (b, 3.0)])[0].tolist()
    [0.75, 0.75]
    """
    kept = [(w, float(n)) for w, n in updates if n > 0]
    if not kept:
        raise FederationError("No site contributed to the round (all stopped or failed).")
    total = sum(n for _, n in kept)
    return [
        np.sum([w[i] * (n / total) for w, n in kept], axis=0).astype(kept[0][0][i].dtype)
        for i in range(len(kept[0][0]))
    ]


class SiteTrainer:
    """DP-SGD rounds of one site on its own rows (see the module docstring).

    Parameters
    ----------
    model : TVAESynthesizer
        From :func:`build_model` (the federation's transformer).
    data : DataFrame
        The site's rows (checked against the metadata).
    epsilon, delta : float
        The site's budget; ``accountant`` already holds what its statistics spent.
    rounds, local_steps : int
        The federation's plan: the noise is calibrated for ``rounds x local_steps`` steps.
    """

    def __init__(
        self,
        model: TVAESynthesizer,
        data: pd.DataFrame,
        *,
        epsilon: float,
        delta: float,
        accountant: PrivacyAccountant,
        rounds: int,
        local_steps: int,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.epsilon, self.delta = float(epsilon), float(delta)
        self.accountant = accountant
        self.local_steps = int(local_steps)
        self.data = assembly.training_rows(model, data, seed=seed)
        n = len(self.data)
        self.sample_rate = min(int(model.batch_size), n) / n
        self.generator = torch.Generator().manual_seed(seed + 1)
        try:
            self.noise_multiplier = calibrate_noise_multiplier(
                self.epsilon,
                self.delta - accountant.delta_slack(),
                self.sample_rate,
                int(rounds) * self.local_steps,
                extra_rdp=accountant.rdp(),
                tolerance=1e-2,
            )
        except PrivacyError as exc:
            raise FederationError(f"The site cannot train within its budget: {exc}") from None
        self.engine = DPSGD(
            {"encoder": model.encoder_, "decoder": model.decoder_},
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=float(model.max_grad_norm),
            sample_rate=self.sample_rate,
            num_rows=n,
            generator=self.generator,
        )
        self.rounds_done = 0
        # The RDP of DP-SGD is linear in the steps: the curve of one step, computed once.
        self._base_rdp = accountant.rdp()
        self._step_rdp = sampled_gaussian_rdp(
            self.sample_rate, self.noise_multiplier, 1, accountant.orders
        )

    def _epsilon(self, rounds: int) -> float:
        rdp = self._base_rdp + rounds * self.local_steps * self._step_rdp
        delta = self.delta - self.accountant.delta_slack()
        return float(epsilon_from_rdp(rdp, delta, self.accountant.orders)[0])

    def spent(self) -> float:
        """Epsilon this site has spent so far (statistics and rounds)."""
        return self._epsilon(self.rounds_done)

    def can_train(self) -> bool:
        """Whether one more round stays within the site's epsilon."""
        return self._epsilon(self.rounds_done + 1) <= self.epsilon * (1 + 1e-3)

    def record(self) -> None:
        """Write the rounds trained into the site's ledger (at the end of the federation)."""
        if self.rounds_done:
            self.accountant.add_sampled_gaussian(
                f"DP-SGD, {self.rounds_done} federated rounds",
                self.noise_multiplier,
                sample_rate=self.sample_rate,
                steps=self.rounds_done * self.local_steps,
                consumer="training",
            )

    def train_round(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """``local_steps`` private steps from the global ``weights``; the new weights."""
        if not self.can_train():
            raise FederationError("The site's privacy budget is spent; it trains no more.")
        model = self.model
        set_weights(model, weights)
        params = [*model.encoder_.parameters(), *model.decoder_.parameters()]
        optimizer = adam(params, model.learning_rate, model.l2scale, torch.device("cpu"))
        model.encoder_.train()
        model.decoder_.train()
        for _ in range(self.local_steps):
            x = self.data[poisson_batch(len(self.data), self.sample_rate, self.generator)]
            eps = torch.randn(len(x), model.embedding_dim, generator=self.generator)
            self.engine.step(assembly.row_loss(model), x, eps)
            optimizer.step()
            with torch.no_grad():
                model.decoder_.sigma.clamp_(0.01, 1.0)
        self.rounds_done += 1
        return get_weights(model)


def federated_model(
    model: TVAESynthesizer,
    weights: list[np.ndarray],
    *,
    sites: list[dict[str, Any]],
    rounds: int,
    dtypes: dict[str, str],
    num_rows: int,
    seconds: float,
) -> TVAESynthesizer:
    """``model`` with the averaged ``weights``, ready to sample and save as a normal bundle;
    its privacy report lists what each site spent (accounted at the sites)."""
    set_weights(model, weights)
    model.stopped_early_, model.best_epoch_ = False, None
    model.trained_precision_ = "float32"
    model.stopped_by_guard_, model.memorization_ = None, []
    return finish(
        model,
        sites=sites,
        rounds=rounds,
        dtypes=dtypes,
        num_rows=num_rows,
        seconds=seconds,
        mechanism=(
            "noisy column statistics merged by the server; FedAvg of DP-SGD updates "
            "(Poisson sampling, per-row clipping, Gaussian noise at each site)"
        ),
    )


def finish(
    model: Any,
    *,
    sites: list[dict[str, Any]],
    rounds: int,
    dtypes: dict[str, str],
    num_rows: int,
    seconds: float,
    mechanism: str,
    **details: Any,
) -> Any:
    """Mark a model built by the federation as fitted (what ``fit`` would set), with a privacy
    report that lists what each site spent (accounted at the sites) and ``details``."""
    eps = [s["epsilon"] for s in sites]
    model.epsilon = float(max(eps)) if eps else None
    budget = {
        "differential_privacy": True,
        "guarantee": (
            "federated: each site's rows are differentially private at that site's own "
            f"(epsilon, delta) (at most {max(eps):g}; 'federated' lists each site), accounted "
            "at the site"
        ),
        "epsilon": float(max(eps)),
        "epsilon_spent": float(max(s["epsilon_spent"] for s in sites)),
        "delta": float(max(s["delta"] for s in sites)),
        "accountant": ACCOUNTANT,
        "consumers": {},
        "public_bounds": [],
        "mechanism": mechanism,
        **details,
        "federated": {"rounds": int(rounds), "sites": sites},
        "ledger": [],
    }
    return assembly.mark_fitted(
        model, dtypes=dtypes, num_rows=num_rows, seconds=seconds, privacy_budget=budget
    )


def rows_weight(noisy_rows: float) -> float:
    """A site's FedAvg weight from its noisy size (at least 1)."""
    return float(max(1.0, math.floor(noisy_rows)))


def elapsed(start: float) -> float:
    return time.perf_counter() - start
