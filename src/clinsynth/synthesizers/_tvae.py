"""TVAE: a variational autoencoder for tables (Xu et al., "Modeling Tabular Data using
Conditional GAN", NeurIPS 2019, section 4.3).

The encoder maps an encoded row to the mean and log-variance of ``q(z | x)``; the decoder maps
``z`` to one output per span: a tanh-bounded scalar with a learned noise scale ``sigma`` for each
scaled number, and logits for each one-hot group (the mixture component of a number, a category,
a null indicator). The loss is ``loss_factor`` times the negative log-likelihood of the row plus
the KL divergence to ``N(0, I)``. Sampling draws ``z ~ N(0, I)``, decodes it, adds the learned
noise to the scalars and draws every one-hot group from its softmax.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from clinsynth.metadata import Metadata
from clinsynth.privacy import functional
from clinsynth.synthesizers._base import _is_int
from clinsynth.synthesizers._conditioning import CheckedRows
from clinsynth.synthesizers._deep import (
    DIMS,
    NON_NEGATIVE_FLOAT,
    POSITIVE_FLOAT,
    DeepSynthesizer,
)
from clinsynth.synthesizers._dp import DPSGDTraining, PrivateStep
from clinsynth.synthesizers._latent import latent_codes
from clinsynth.synthesizers._registry import register
from clinsynth.synthesizers.nn import (
    FusedVAEStep,
    gaussian_kl,
    mlp,
    output_t,
    reconstruction_loss,
    sample_rows_t,
)
from clinsynth.synthesizers.nn._optim import adam


class Decoder(nn.Module):
    """``z`` to raw span outputs, plus the learned scale of every scalar column."""

    def __init__(
        self, embedding_dim: int, hidden: tuple[int, ...], out_dim: int, n_scalar: int
    ) -> None:
        super().__init__()
        self.net = mlp(embedding_dim, hidden, out_dim)
        self.sigma = nn.Parameter(torch.full((n_scalar,), 0.1))

    def init_parameters(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.sigma.fill_(0.1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def output_t(self, z: torch.Tensor) -> torch.Tensor:
        """``forward(z)`` transposed, ``(out_dim, rows)``, as sampling wants it."""
        return output_t(self.net[-1], self.net[:-1](z))


@register("tvae")
class TVAESynthesizer(DeepSynthesizer):
    """Variational autoencoder for tables (TVAE): fast, and strong on mid-sized tables.

    Its parameters have SDV's names, so SDV code ports by changing the import.

    Parameters
    ----------
    metadata : Metadata
    embedding_dim : int
        Size of the latent space.
    compress_dims : tuple of int
        Hidden layer widths of the encoder.
    decompress_dims : tuple of int
        Hidden layer widths of the decoder.
    l2scale : float
        Weight decay of Adam.
    batch_size : int
    epochs : int
    loss_factor : float
        Weight of the reconstruction term against the KL term.
    learning_rate : float
        Adam's learning rate.
    validation_split, early_stopping_patience, checkpoint_dir, checkpoint_every
        See :class:`~clinsynth.synthesizers._deep.DeepSynthesizer`.
    epsilon, delta, max_grad_norm, public_bounds
        Differential privacy: DP-SGD on the encoder and decoder (see
        :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` and ``docs/PRIVACY.md``); None trains
        without it.
    **kwargs
        ``random_state``, ``device`` ("cpu", "cuda", "auto"), ``verbose``, ``progress``, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, TVAESynthesizer
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"age": rng.normal(60, 10, 200).round(),
    ...                    "sex": rng.choice(["F", "M"], 200)})
    >>> model = TVAESynthesizer(Metadata.detect_from_dataframe(df), epochs=2, random_state=0)
    >>> model.fit(df).sample(5).shape
    (5, 2)
    >>> model.encode(df.head(3)).shape
    (3, 128)
    """

    _network_names: ClassVar[tuple[str, ...]] = ("encoder", "decoder")
    _bf16_training: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "embedding_dim": (_is_int(1), "an int >= 1"),
        "compress_dims": DIMS,
        "decompress_dims": DIMS,
        "l2scale": NON_NEGATIVE_FLOAT,
        "loss_factor": POSITIVE_FLOAT,
        "learning_rate": POSITIVE_FLOAT,
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        embedding_dim: int = 128,
        compress_dims: tuple[int, ...] = (128, 128),
        decompress_dims: tuple[int, ...] = (128, 128),
        l2scale: float = 1e-5,
        batch_size: int = 500,
        epochs: int = 300,
        loss_factor: float = 2,
        learning_rate: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.embedding_dim = embedding_dim
        self.compress_dims = compress_dims
        self.decompress_dims = decompress_dims
        self.l2scale = l2scale
        self.batch_size = batch_size
        self.epochs = epochs
        self.loss_factor = loss_factor
        self.learning_rate = learning_rate

    # ------------------------------------------------------------------ networks
    def _build_networks(self, generator: torch.Generator, device: torch.device) -> None:
        dim, emb = self._layout_.dim, self.embedding_dim
        self.encoder_ = self._build(
            lambda: mlp(dim, tuple(self.compress_dims), 2 * emb), generator, device
        )
        self.decoder_ = self._build(
            lambda: Decoder(emb, tuple(self.decompress_dims), dim, self._layout_.n_scalar),
            generator,
            device,
        )

    def _make_optimizers(self, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        params = [*self.encoder_.parameters(), *self.decoder_.parameters()]
        self._optimizer_ = adam(params, self.learning_rate, self.l2scale, device)
        return {"adam": self._optimizer_}

    # ------------------------------------------------------------------ training
    def _loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self.encoder_(x).chunk(2, dim=1)
        eps = torch.randn(mu.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        nll = reconstruction_loss(self.decoder_(z), x, self._layout_, self.decoder_.sigma)
        return (self.loss_factor * nll + gaussian_kl(mu, logvar)) / x.shape[0]

    def _prepare_training(self, data: torch.Tensor, generator: torch.Generator) -> None:
        super()._prepare_training(data, generator)
        self._own_precision_ = True  # the fused step's products; the plain step is float32
        self._fused_ = None
        if not self.dp_enabled and FusedVAEStep.supports(self.encoder_, self.decoder_.net):
            self._fused_ = FusedVAEStep(
                self.encoder_,
                self.decoder_.net,
                self.decoder_.sigma,
                self._layout_,
                self.loss_factor,
                matmul_dtype=self._matmul_dtype(),
            )

    def _release_training(self) -> None:
        super()._release_training()
        self._fused_ = None
        for p in [*self.encoder_.parameters(), *self.decoder_.parameters()]:
            p.grad = None  # the fused step's gradient buffers

    def _train_step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.index_select(self._data_, 0, idx)
        if self._fused_ is not None:
            # The same loss and noise as _loss, with the gradients written by hand.
            eps = torch.randn(
                len(x), self.embedding_dim, generator=self._generator_, device=x.device
            )
            loss = self._fused_(x, eps)
        else:
            loss = self._loss(x, self._generator_)
            self._optimizer_.zero_grad(set_to_none=True)
            loss.backward()
        self._optimizer_.step()
        with torch.no_grad():
            self.decoder_.sigma.clamp_(0.01, 1.0)
        return {"loss": loss.detach()}

    def _validation_loss(self, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._loss(valid, generator)

    # ------------------------------------------------------------------ DP-SGD
    def _dp_training(self) -> PrivateStep:
        return PrivateStep(
            {"encoder": self.encoder_, "decoder": self.decoder_}, self._dp_train_step
        )

    def _dp_row_loss(self, params: dict, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The loss of one row (``x`` and its reparametrization noise ``eps``)."""
        mu, logvar = functional(self.encoder_, params["encoder"], x).chunk(2, dim=1)
        z = mu + eps * torch.exp(0.5 * logvar)
        raw = functional(self.decoder_, params["decoder"], z)
        nll = reconstruction_loss(raw, x, self._layout_, params["decoder"]["sigma"])
        return self.loss_factor * nll + gaussian_kl(mu, logvar)

    def _dp_train_step(self, dp: DPSGDTraining) -> dict[str, torch.Tensor]:
        """A Poisson batch, per-row clipped and noised gradients; the loss is not kept (it is
        a statistic of real rows)."""
        g = self._generator_
        x = self._data_[dp.batch(len(self._data_), g)]
        eps = torch.randn(len(x), self.embedding_dim, generator=g, device=x.device, dtype=x.dtype)
        dp.step(self._dp_row_loss, x, eps)
        self._optimizer_.step()
        with torch.no_grad():
            self.decoder_.sigma.clamp_(0.01, 1.0)
        return {"loss": torch.tensor(float("nan"), device=x.device)}

    # ------------------------------------------------------------------ sampling
    def _generate(self, num_rows: int, generator: torch.Generator, **kwargs: Any) -> torch.Tensor:
        sigma = self.decoder_.sigma
        z = torch.randn(num_rows, self.embedding_dim, generator=generator, device=sigma.device)
        return sample_rows_t(self.decoder_.output_t(z), self._layout_, generator, sigma)

    def encode(self, data: Any) -> Any:
        """Latent coordinates of the rows of ``data`` (a DataFrame): the mean of ``q(z | x)``,
        one row of ``embedding_dim`` floats per row.

        Numbers are encoded with their most likely mixture component, so the same rows always
        land on the same points.
        """
        return latent_codes(
            self, data, lambda x: self.encoder_(x).chunk(2, dim=1)[0], int(self.embedding_dim)
        )

    def conditioning(self) -> CheckedRows:
        """Importance resampling in the noise space (``z`` and the output noise)."""
        return CheckedRows("latent importance", self._sample_conditioned)

    def _sample_conditioned(
        self, num_rows: int, parsed: dict[str, Any], rng: Any, max_rounds: int = 100
    ) -> Any:
        """Rows meeting a condition: importance resampling in the noise space (``z`` and the
        output noise; see
        :mod:`clinsynth.synthesizers._latent_conditioning`)."""
        from clinsynth.synthesizers._latent_conditioning import sample_in_noise_space

        def decode(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return self.decoder_.output_t(z)  # _generate, from its z to the raw output

        return sample_in_noise_space(
            self,
            num_rows,
            parsed,
            rng,
            noise_dims=(self.embedding_dim,),
            decode=decode,
            reference=self._generate,
            sigma=self.decoder_.sigma,
            max_rounds=max_rounds,
        )
