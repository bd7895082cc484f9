"""CTGAN: a conditional GAN for tables (Xu et al., "Modeling Tabular Data using Conditional GAN",
NeurIPS 2019), with PacGAN packing (Lin et al., 2018) and the WGAN gradient penalty (Gulrajani et
al., 2017).

Training by sampling: every generated row comes with a conditional vector that fixes one level of
one categorical column (the column uniformly, the level by its log-frequency), the generator is
penalised by the cross-entropy of that column, and the critic compares the generated rows with
real rows that have the same level. This keeps rare categories in the game. Everything runs as
tensor operations on the device: the condition, the matching real rows (from per-level index
tables built once) and the loss on the chosen column (one gather).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from clinsynth.errors import parameter_error
from clinsynth.metadata import Metadata
from clinsynth.privacy import critic_row_loss
from clinsynth.synthesizers._base import _is_int
from clinsynth.synthesizers._conditioning import CheckedRows
from clinsynth.synthesizers._deep import (
    DIMS,
    NON_NEGATIVE_FLOAT,
    POSITIVE_FLOAT,
    DeepSynthesizer,
    adversarial_training,
)
from clinsynth.synthesizers._dp import DPSGDTraining, PrivateStep
from clinsynth.synthesizers._registry import register
from clinsynth.synthesizers.nn import (
    ChoiceLoss,
    Critic,
    ResidualGenerator,
    SpanLayout,
    activate,
    sample_rows_t,
)
from clinsynth.synthesizers.nn._optim import adam

#: Temperature of the Gumbel-softmax that makes generated one-hot groups nearly one-hot.
GUMBEL_TAU = 0.2


class ConditionSpace:
    """The conditional vector: one slot per level of every categorical (one-hot) column.

    Parameters
    ----------
    layout : SpanLayout
    spans : list of SpanInfo
    frequencies : list of list of float
        Level frequencies of each categorical span (for unconditional sampling).
    device : torch.device
    """

    def __init__(
        self,
        layout: SpanLayout,
        spans: list[Any],
        frequencies: list[list[float]],
        device: torch.device,
    ) -> None:
        chosen = [
            i for i, s in enumerate(spans) if s.role == "category" and s.activation == "softmax"
        ]
        self.columns = [spans[i].column for i in chosen]
        #: Permuted positions of the levels of each categorical span.
        self.positions = [layout.span_columns(i) for i in chosen]
        self.widths = [spans[i].dim for i in chosen]
        self.offsets = (
            np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64)
            if chosen
            else np.zeros(0, dtype=np.int64)
        )
        self.dim = int(sum(self.widths))
        self.device = device
        self._offsets = torch.as_tensor(self.offsets, device=device)
        self.choice_loss = ChoiceLoss(self.positions, device) if chosen else None
        self._index = [torch.as_tensor(c, device=device) for c in self.positions]
        self.sample_cum = self._cumulative(frequencies)

    def __len__(self) -> int:
        return len(self.columns)

    def _cumulative(self, probabilities: list[Any]) -> torch.Tensor:
        """Padded cumulative probabilities ``(columns, max width)``; the tail is exactly 1."""
        width = max(self.widths) if self.widths else 1
        cum = np.ones((len(self.widths), width), dtype=np.float64)
        for j, p in enumerate(probabilities):
            p = np.asarray(p, dtype=np.float64)
            p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
            cum[j, : len(p)] = np.cumsum(p)
            cum[j, len(p) - 1 :] = 1.0
        return torch.as_tensor(cum, dtype=torch.float32, device=self.device)

    def draw(
        self, n: int, generator: torch.Generator, cum: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A column (uniformly) and a level (by ``cum``) per row: ``(column, level)``."""
        column = torch.randint(len(self), (n,), generator=generator, device=self.device)
        u = torch.rand(n, 1, generator=generator, device=self.device)
        level = (u >= cum[column]).sum(dim=1)
        return column, level

    def levels(self, rows: torch.Tensor) -> torch.Tensor:
        """The level of every categorical span in encoded rows: ``(rows, columns)``."""
        return torch.stack([rows.index_select(1, idx).argmax(dim=1) for idx in self._index], 1)

    def vector(self, column: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        cond = torch.zeros(len(column), self.dim, device=self.device)
        return cond.scatter_(1, (self._offsets[column] + level).unsqueeze(1), 1.0)


class RealRowSampler:
    """Real rows having a given level of a given column, drawn uniformly (index tables)."""

    def __init__(self, space: ConditionSpace, data: torch.Tensor, log_frequency: bool) -> None:
        n = data.shape[0]
        table = space.levels(data)
        levels = [table[:, j] for j in range(len(space))]
        counts = [
            torch.bincount(level, minlength=w)
            for level, w in zip(levels, space.widths, strict=True)
        ]
        flat_counts = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.long)
        # Rows of column j sorted by level; level k of column j starts at j*n + (rows below k).
        rows = [torch.argsort(level, stable=True) for level in levels]
        self.rows = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
        starts = []
        for j, c in enumerate(counts):
            starts.append(j * n + torch.cumsum(c, 0) - c)
        self.start = torch.cat(starts) if starts else flat_counts
        self.count = flat_counts
        weights = [np.log1p(c.cpu().numpy()) if log_frequency else c.cpu().numpy() for c in counts]
        self.train_cum = space._cumulative(weights)
        self.space = space

    def rows_for(
        self, column: torch.Tensor, level: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        slot = self.space._offsets[column] + level
        u = torch.rand(len(slot), generator=generator, device=slot.device)
        count = self.count[slot]
        pos = torch.minimum((u * count).long(), count - 1)
        return self.rows[self.start[slot] + pos]


@register("ctgan")
class CTGANSynthesizer(DeepSynthesizer):
    """Conditional tabular GAN (CTGAN): a generator trained against a critic, rare categories kept.

    Its parameters have SDV's names, so SDV code ports by changing the import.

    Parameters
    ----------
    metadata : Metadata
    embedding_dim : int
        Size of the generator's noise input.
    generator_dim : tuple of int
        Widths of the generator's residual layers.
    discriminator_dim : tuple of int
        Widths of the critic's layers.
    generator_lr, discriminator_lr : float
        Adam learning rates (betas 0.5, 0.9).
    generator_decay, discriminator_decay : float
        Adam weight decays.
    batch_size : int
        Rows per step; a multiple of ``pac``.
    discriminator_steps : int
        Critic updates per generator update.
    log_frequency : bool
        Draw the training condition's level by log-frequency (rare levels more often).
    pac : int
        Rows the critic judges together (PacGAN), against mode collapse.
    epochs : int
        One epoch is ``max(rows // batch_size, 1)`` steps.
    training_precision : {"auto", "float32", "bfloat16"}
        ``"auto"`` (the default): the matrix products of training in bfloat16 on CPUs with AMX
        (Intel Sapphire Rapids and later), where they are several times faster (CTGAN fits
        RHC in 25 s instead of 31 s), float32 elsewhere and with ``epsilon``. The SDMetrics
        quality on RHC was the same within seed noise (0.842 over nine fits against 0.844
        over eight in float32, seed-to-seed spread 0.01), and on three small clinical tables
        within 0.002 (``benchmarks/bench_precision.py``, docs/BENCHMARKS.md).
        ``"float32"`` for float32 everywhere. Weights, optimizer, losses and element-wise
        work are float32 in every case; ``trained_precision_`` says what a fit used.
    sample_precision : {"auto", "float32", "bfloat16"}
        The same for sampling's products (a runtime option, see
        :class:`~clinsynth.synthesizers._deep.DeepSynthesizer`): ``"auto"`` samples 1M RHC
        rows in about 5.5 s instead of 8-9 s at the same SDMetrics quality in every run
        measured (docs/BENCHMARKS.md).
    validation_split, early_stopping_patience, checkpoint_dir, checkpoint_every
        See :class:`~clinsynth.synthesizers._deep.DeepSynthesizer`. The validation loss is the
        critic's estimate of the Wasserstein distance between held-out rows and generated rows.
    epsilon, delta, max_grad_norm, public_bounds
        Differential privacy (DP-SGD on the critic), see
        :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` and ``docs/PRIVACY.md``. With
        ``epsilon`` the critic judges single rows (``pac`` is not used: a pack would mix
        several patients in one clipped gradient), every real row is conditioned on one of its
        own levels, and the generator's conditions follow the DP level frequencies.
    **kwargs
        ``random_state``, ``device`` ("cpu", "cuda", "auto"), ``verbose``, ``progress``, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, CTGANSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"age": rng.normal(60, 10, 200).round(),
    ...                    "sex": rng.choice(["F", "M"], 200)})
    >>> model = CTGANSynthesizer(Metadata.detect_from_dataframe(df), epochs=2, batch_size=100,
    ...                          random_state=0)
    >>> rows = model.fit(df).sample(5, conditions={"sex": "F"})
    >>> rows["sex"].unique().tolist()
    ['F']
    """

    _network_names: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    #: Every mixture component: with BIC's fewer components, the fidelity on RHC dropped
    #: (SDMetrics quality 0.823 against 0.838 over three seeds, docs/BENCHMARKS.md).
    _transformer_options: ClassVar[dict[str, Any]] = {
        "numerical": "mode",
        "categorical": "onehot",
        "mode_selection": "all",
    }
    _bf16_training: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "embedding_dim": (_is_int(1), "an int >= 1"),
        "generator_dim": DIMS,
        "discriminator_dim": DIMS,
        "generator_lr": POSITIVE_FLOAT,
        "generator_decay": NON_NEGATIVE_FLOAT,
        "discriminator_lr": POSITIVE_FLOAT,
        "discriminator_decay": NON_NEGATIVE_FLOAT,
        "discriminator_steps": (_is_int(1), "an int >= 1"),
        "log_frequency": (lambda v: isinstance(v, bool), "a bool"),
        "pac": (_is_int(1), "an int >= 1"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        embedding_dim: int = 128,
        generator_dim: tuple[int, ...] = (256, 256),
        discriminator_dim: tuple[int, ...] = (256, 256),
        generator_lr: float = 2e-4,
        generator_decay: float = 1e-6,
        discriminator_lr: float = 2e-4,
        discriminator_decay: float = 1e-6,
        batch_size: int = 500,
        discriminator_steps: int = 1,
        log_frequency: bool = True,
        pac: int = 10,
        epochs: int = 300,
        training_precision: str = "auto",
        sample_precision: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            metadata,
            training_precision=training_precision,
            sample_precision=sample_precision,
            **kwargs,
        )
        self.embedding_dim = embedding_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.generator_lr = generator_lr
        self.generator_decay = generator_decay
        self.discriminator_lr = discriminator_lr
        self.discriminator_decay = discriminator_decay
        self.batch_size = batch_size
        self.discriminator_steps = discriminator_steps
        self.log_frequency = log_frequency
        self.pac = pac
        self.epochs = epochs

    def _check_params(self) -> None:
        super()._check_params()
        if not self.dp_enabled and self.batch_size % self.pac:
            raise parameter_error(
                type(self).__name__,
                "batch_size",
                self.batch_size,
                f"a multiple of pac ({self.pac})",
            )

    # ------------------------------------------------------------------ networks
    def _condition_space(self, device: torch.device) -> ConditionSpace:
        spans = self._transformer_.output_info
        freqs = [
            self._transformer_.get_transformer(s.column).frequencies_
            for s in spans
            if s.role == "category" and s.activation == "softmax"
        ]
        return ConditionSpace(self._layout_, spans, freqs, device)

    def _build_networks(self, generator: torch.Generator, device: torch.device) -> None:
        self._space_ = self._condition_space(device)
        dim, cond = self._layout_.dim, self._space_.dim
        self.generator_ = self._build(
            lambda: ResidualGenerator(self.embedding_dim + cond, tuple(self.generator_dim), dim),
            generator,
            device,
        )
        self.discriminator_ = self._build(
            lambda: Critic(
                dim + cond,
                tuple(self.discriminator_dim),
                1 if self.dp_enabled else self.pac,
                dropout=0.5,
            ),
            generator,
            device,
        )

    def _make_optimizers(self, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        self._opt_g_ = adam(
            self.generator_.parameters(),
            self.generator_lr,
            self.generator_decay,
            device,
            betas=(0.5, 0.9),
        )
        self._opt_d_ = adam(
            self.discriminator_.parameters(),
            self.discriminator_lr,
            self.discriminator_decay,
            device,
            betas=(0.5, 0.9),
        )
        return {"generator": self._opt_g_, "discriminator": self._opt_d_}

    def _prepare_training(self, data: torch.Tensor, generator: torch.Generator) -> None:
        super()._prepare_training(data, generator)
        # The training step (DP: the private step of _dp_training instead).
        self._gan_ = adversarial_training(self, extra_loss=self._generator_extra_loss)
        self._own_precision_ = self._gan_ is not None and self._gan_.applies_precision
        # DP: no table of real rows per level (it would steer training outside the budget).
        self._rows_ = (
            RealRowSampler(self._space_, data, self.log_frequency)
            if len(self._space_) and not self.dp_enabled
            else None
        )

    def _release_training(self) -> None:
        super()._release_training()
        if self._gan_ is not None:
            self._gan_.release()
        self._gan_ = None
        self._rows_ = None

    def _steps_per_epoch(self, n_rows: int) -> int:
        return max(n_rows // self.batch_size, 1)

    # ------------------------------------------------------------------ training
    def _train_step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._gan_.step(idx, self._generator_)

    def _noise(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.embedding_dim, generator=generator, device=device)

    def _critic_batch(self, idx: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Training by sampling: a condition per row and, shuffled, real rows that meet it."""
        g, data, bs = self._generator_, self._data_, self.batch_size
        if self._rows_ is None:
            real = data[torch.randint(len(data), (bs,), generator=g, device=data.device)]
            return real, data.new_zeros(bs, 0), None
        column, level = self._space_.draw(bs, g, self._rows_.train_cum)
        cond = self._space_.vector(column, level)
        perm = torch.randperm(bs, generator=g, device=data.device)
        real = data[self._rows_.rows_for(column[perm], level[perm], g)]
        return torch.cat([real, cond[perm]], dim=1), cond, (column, level)

    def _fake_rows(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self._generator_
        raw = self.generator_(torch.cat([self._noise(len(cond), g, cond.device), cond], dim=1))
        return activate(raw, self._layout_, tau=GUMBEL_TAU, generator=g, append=cond), raw

    def _generator_extra_loss(self, raw: torch.Tensor, context: Any) -> torch.Tensor | None:
        """Cross-entropy of the conditioned column: the generator must honour the condition."""
        return None if context is None else self._space_.choice_loss(raw, *context)

    # ------------------------------------------------------------------ DP-SGD
    def _dp_training(self) -> PrivateStep:
        return PrivateStep(self.discriminator_, self._dp_train_step, int(self.discriminator_steps))

    def _dp_critic_loss(
        self, params: dict, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        return critic_row_loss(
            self.discriminator_, params, real, fake, alpha, generator=self._generator_
        )

    def _dp_train_step(self, dp: DPSGDTraining) -> dict[str, torch.Tensor]:
        """Private critic steps on Poisson batches, then a generator step that reads no row."""
        g, data, bs = self._generator_, self._data_, self.batch_size
        space, layout, gen = self._space_, self._layout_, self.generator_
        for _ in range(self.discriminator_steps):
            real = data[dp.batch(len(data), g)]
            n = len(real)
            if len(space):  # each row is conditioned on one of its own levels
                column = torch.randint(len(space), (n,), generator=g, device=data.device)
                level = space.levels(real).gather(1, column.unsqueeze(1)).squeeze(1)
                cond = space.vector(column, level)
            else:
                cond = data.new_zeros(n, 0)
            # Running batch-norm statistics: no fake row depends on another row's condition,
            # and the generator's buffers do not see the real conditions.
            gen.eval()
            with torch.no_grad():
                raw = gen(torch.cat([self._noise(n, g, data.device), cond], dim=1))
                fake = torch.cat([activate(raw, layout, tau=GUMBEL_TAU, generator=g), cond], 1)
            gen.train()
            alpha = torch.rand(n, 1, generator=g, device=data.device)
            dp.step(self._dp_critic_loss, torch.cat([real, cond], 1), fake, alpha)
            self._opt_d_.step()
        if len(space):  # conditions drawn from the DP level frequencies of the transformer
            column, level = space.draw(bs, g, space.sample_cum)
            cond = space.vector(column, level)
        else:
            cond = data.new_zeros(bs, 0)
        raw = gen(torch.cat([self._noise(bs, g, data.device), cond], dim=1))
        fake = torch.cat([activate(raw, layout, tau=GUMBEL_TAU, generator=g), cond], dim=1)
        self.discriminator_.requires_grad_(False)
        loss_g = -self.discriminator_(fake, g).mean()
        self.discriminator_.requires_grad_(True)
        if len(space):
            loss_g = loss_g + space.choice_loss(raw, column, level)
        self._opt_g_.zero_grad(set_to_none=True)
        loss_g.backward()
        self._opt_g_.step()
        # The critic's loss reads real rows: not kept. The generator's reads none.
        return {
            "generator_loss": loss_g.detach(),
            "discriminator_loss": torch.tensor(float("nan"), device=data.device),
        }

    def _validation_loss(self, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The critic's Wasserstein estimate between held-out rows and generated rows."""
        n = (len(valid) // self.pac) * self.pac
        if n == 0:
            return torch.tensor(float("nan"))
        valid = valid[:n]
        if len(self._space_):
            column = torch.randint(
                len(self._space_), (n,), generator=generator, device=valid.device
            )
            level = self._space_.levels(valid).gather(1, column.unsqueeze(1)).squeeze(1)
            cond = self._space_.vector(column, level)
        else:
            cond = valid.new_zeros(n, 0)
        raw = self.generator_(torch.cat([self._noise(n, generator, valid.device), cond], dim=1))
        fake = torch.cat(
            [activate(raw, self._layout_, tau=GUMBEL_TAU, generator=generator), cond], dim=1
        )
        real = torch.cat([valid, cond], dim=1)
        return self.discriminator_(real).mean() - self.discriminator_(fake).mean()

    # ------------------------------------------------------------------ sampling
    def _generate(
        self, num_rows: int, generator: torch.Generator, slot: int | None = None, **kwargs: Any
    ) -> torch.Tensor:
        device = self._space_.device
        inputs = [self._noise(num_rows, generator, device)]
        if len(self._space_):
            if slot is None:
                column, level = self._space_.draw(num_rows, generator, self._space_.sample_cum)
                cond = self._space_.vector(column, level)
            else:
                cond = torch.zeros(num_rows, self._space_.dim, device=device)
                cond[:, slot] = 1.0
            inputs.append(cond)
        return sample_rows_t(self.generator_.output_t(*inputs), self._layout_, generator)

    def conditioning(self) -> CheckedRows:
        """The conditional vector of an equality, then importance resampling in the noise ``z``."""
        return CheckedRows("conditional vector and latent importance", self._sample_conditioned)

    def _sample_conditioned(
        self,
        num_rows: int,
        parsed: dict[str, Any],
        rng: np.random.Generator,
        max_rounds: int = 100,
    ) -> Any:
        """Rows meeting a condition: the conditional vector of an equality condition (with
        several equalities on categorical columns, the rarest level's), then importance
        resampling in the noise ``z`` for the rest of the condition (ranges, other levels,
        rows the vector did not steer; see :mod:`clinsynth.synthesizers._latent_conditioning`).
        """
        from clinsynth.synthesizers._latent_conditioning import sample_in_noise_space

        best: tuple[float, int] | None = None
        for column, cond in parsed.items():
            if cond[0] != "eq" or column not in self._space_.columns:
                continue
            j = self._space_.columns.index(column)
            transformer = self._transformer_.get_transformer(column)
            level = int(transformer.codes(pd.Series([cond[1]], dtype=object))[0])
            freq = float(transformer.frequencies_[level])
            if best is None or freq < best[0]:
                best = (freq, int(self._space_.offsets[j]) + level)
        slot = None if best is None else best[1]
        space = self._space_

        def decode(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            inputs = [z]  # _generate, from its noise z to the raw output
            if len(space):
                if slot is None:
                    column, level = space.draw(len(z), generator, space.sample_cum)
                    cond = space.vector(column, level)
                else:
                    cond = torch.zeros(len(z), space.dim, device=z.device)
                    cond[:, slot] = 1.0
                inputs.append(cond)
            return self.generator_.output_t(*inputs)

        def reference(n: int, generator: torch.Generator) -> torch.Tensor:
            return self._generate(n, generator, slot=slot)

        return sample_in_noise_space(
            self,
            num_rows,
            parsed,
            rng,
            noise_dims=(self.embedding_dim,),
            decode=decode,
            reference=reference,
            max_rounds=max_rounds,
        )
