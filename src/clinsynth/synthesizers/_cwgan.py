"""Conditional WGAN-GP: a Wasserstein GAN with gradient penalty (Gulrajani et al., 2017)
conditioned on one categorical column (Mirza & Osindero, 2014).

The generator receives noise and the one-hot of the condition (e.g. the diagnosis) and produces
the rest of the row; the critic receives a row and its condition. The condition column of a
generated row is the condition itself, so ``sample(n, conditions={"diagnosis": "diabetes"})``
generates exactly such rows, however rare the diagnosis, with no rejection. Unconditional
sampling draws conditions by their training frequencies.
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
from clinsynth.synthesizers._conditioning import Candidates
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
    Critic,
    ResidualGenerator,
    activate,
    sample_rows_t,
)
from clinsynth.synthesizers.nn._optim import adam

#: Sdtypes encoded as one one-hot span: the kinds a condition column can have.
CATEGORICAL_SDTYPES = ("categorical", "boolean", "ordinal")
GUMBEL_TAU = 0.2


@register("cwgan", aliases=("cwgan_gp", "cwgangp"))
class CWGANGPSynthesizer(DeepSynthesizer):
    """Conditional Wasserstein GAN with gradient penalty, conditioned on one categorical column.

    Parameters
    ----------
    metadata : Metadata
    condition_column : str
        The categorical (or boolean, ordinal) column to condition on. Required.
    embedding_dim : int
        Size of the generator's noise input.
    generator_dim, discriminator_dim : tuple of int
        Widths of the generator's residual layers and of the critic's layers.
    generator_lr, discriminator_lr : float
        Adam learning rates (betas 0.5, 0.9 as in the WGAN-GP paper; the rates of CTGAN, which
        learn rare conditions faster than the paper's 1e-4).
    generator_decay, discriminator_decay : float
        Adam weight decays.
    batch_size : int
    discriminator_steps : int
        Critic updates per generator update (5 in the WGAN-GP paper).
    gradient_penalty_weight : float
        Weight of the gradient penalty (10 in the paper).
    epochs : int
    validation_split, early_stopping_patience, checkpoint_dir, checkpoint_every
        See :class:`~clinsynth.synthesizers._deep.DeepSynthesizer`; the validation loss is the
        critic's Wasserstein estimate between held-out and generated rows.
    epsilon, delta, max_grad_norm, public_bounds
        Differential privacy: DP-SGD on the critic, each fake row taking its real row's
        condition; the generator's conditions follow the DP level frequencies (see
        :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` and ``docs/PRIVACY.md``).
    **kwargs
        ``random_state``, ``device`` ("cpu", "cuda", "auto"), ``verbose``, ``progress``, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, CWGANGPSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"condition": rng.choice(["diabetes", "copd", "none"], 200),
    ...                    "age": rng.normal(60, 10, 200).round()})
    >>> model = CWGANGPSynthesizer(Metadata.detect_from_dataframe(df),
    ...                            condition_column="condition", epochs=2, random_state=0)
    >>> rows = model.fit(df).sample(10, conditions={"condition": "diabetes"})
    >>> rows["condition"].unique().tolist()
    ['diabetes']
    """

    _network_names: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    _bf16_training: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "condition_column": (lambda v: isinstance(v, str), "the name of a categorical column"),
        "embedding_dim": (_is_int(1), "an int >= 1"),
        "generator_dim": DIMS,
        "discriminator_dim": DIMS,
        "generator_lr": POSITIVE_FLOAT,
        "generator_decay": NON_NEGATIVE_FLOAT,
        "discriminator_lr": POSITIVE_FLOAT,
        "discriminator_decay": NON_NEGATIVE_FLOAT,
        "discriminator_steps": (_is_int(1), "an int >= 1"),
        "gradient_penalty_weight": NON_NEGATIVE_FLOAT,
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        condition_column: str | None = None,
        embedding_dim: int = 128,
        generator_dim: tuple[int, ...] = (256, 256),
        discriminator_dim: tuple[int, ...] = (256, 256),
        generator_lr: float = 2e-4,
        generator_decay: float = 1e-6,
        discriminator_lr: float = 2e-4,
        discriminator_decay: float = 1e-6,
        batch_size: int = 500,
        discriminator_steps: int = 5,
        gradient_penalty_weight: float = 10.0,
        epochs: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.condition_column = condition_column
        self.embedding_dim = embedding_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.generator_lr = generator_lr
        self.generator_decay = generator_decay
        self.discriminator_lr = discriminator_lr
        self.discriminator_decay = discriminator_decay
        self.batch_size = batch_size
        self.discriminator_steps = discriminator_steps
        self.gradient_penalty_weight = gradient_penalty_weight
        self.epochs = epochs

    def _check_params(self) -> None:
        super()._check_params()
        table = self._table_metadata()
        candidates = [
            c
            for c, spec in table.columns.items()
            if spec["sdtype"] in CATEGORICAL_SDTYPES and not spec.get("pii")
        ]
        spec = table.columns.get(self.condition_column)
        if spec is None or self.condition_column not in candidates:
            found = "not a column" if spec is None else f"a {spec['sdtype']} column"
            raise parameter_error(
                type(self).__name__,
                "condition_column",
                self.condition_column,
                "the name of a categorical column",
                f"It is {found}; categorical columns: {candidates}.",
            )

    # ------------------------------------------------------------------ networks
    def _model_condition_column(self) -> str:
        """The encoded column carrying the condition: the column itself, or the joint column a
        rule (e.g. ``FixedCombinations``) merged it into."""
        names = self._transformer_.column_names
        if self.condition_column in names:
            return self.condition_column
        for rule in getattr(self, "_rules_", None) or []:
            joint = getattr(rule, "joint_column", None)
            if joint in names and self.condition_column in rule.columns:
                return joint
        raise parameter_error(
            type(self).__name__,
            "condition_column",
            self.condition_column,
            "a column the model encodes (a rule replaced this one)",
            "Choose another condition_column.",
        )

    def _condition_span(self) -> tuple[np.ndarray, list[float]]:
        """``(permuted positions of the levels, level frequencies)`` of the condition column."""
        self._cond_column_ = self._model_condition_column()
        for i, span in enumerate(self._transformer_.output_info):
            if span.column == self._cond_column_ and span.role == "category":
                transformer = self._transformer_.get_transformer(span.column)
                return self._layout_.span_columns(i), list(transformer.frequencies_)
        raise parameter_error(
            type(self).__name__,
            "condition_column",
            self._cond_column_,
            "a column with a one-hot block in the encoding",
            "Choose another condition_column.",
        )

    def _build_networks(self, generator: torch.Generator, device: torch.device) -> None:
        positions, freqs = self._condition_span()
        width = len(positions)
        self._cond_width_ = width
        self._cond_index_ = torch.as_tensor(positions, device=device)
        cum = np.cumsum(np.asarray(freqs, dtype=np.float64) / np.sum(freqs))
        cum[-1] = 1.0
        self._cond_cum_ = torch.as_tensor(cum, dtype=torch.float32, device=device)
        dim = self._layout_.dim
        # Zero on the condition's block: generated rows get the condition there.
        self._keep_ = torch.ones(dim, device=device)
        self._keep_[self._cond_index_] = 0.0
        self.generator_ = self._build(
            lambda: ResidualGenerator(self.embedding_dim + width, tuple(self.generator_dim), dim),
            generator,
            device,
        )
        self.discriminator_ = self._build(
            lambda: Critic(dim + width, tuple(self.discriminator_dim), pac=1), generator, device
        )

    def _make_optimizers(self, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.9)
        self._opt_g_ = adam(
            self.generator_.parameters(), self.generator_lr, self.generator_decay, device, betas
        )
        self._opt_d_ = adam(
            self.discriminator_.parameters(),
            self.discriminator_lr,
            self.discriminator_decay,
            device,
            betas,
        )
        return {"generator": self._opt_g_, "discriminator": self._opt_d_}

    # ------------------------------------------------------------------ training
    def _prepare_training(self, data: torch.Tensor, generator: torch.Generator) -> None:
        super()._prepare_training(data, generator)
        # The training step (DP: the private step of _dp_training instead).
        self._gan_ = adversarial_training(self, penalty_weight=float(self.gradient_penalty_weight))
        self._own_precision_ = self._gan_ is not None and self._gan_.applies_precision

    def _release_training(self) -> None:
        super()._release_training()
        if self._gan_ is not None:
            self._gan_.release()
        self._gan_ = None

    def _train_step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._gan_.step(idx, self._generator_)

    def _fake(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Generated rows (Gumbel-softmax relaxed) with the condition in place, plus ``cond``."""
        z = torch.randn(len(cond), self.embedding_dim, generator=generator, device=cond.device)
        rows = activate(
            self.generator_(torch.cat([z, cond], dim=1)),
            self._layout_,
            tau=GUMBEL_TAU,
            generator=generator,
        )
        placed = cond.new_zeros(len(cond), self._layout_.dim).index_copy_(
            1, self._cond_index_, cond
        )
        return torch.cat([rows * self._keep_ + placed, cond], dim=1)

    def _with_condition(self, real: torch.Tensor) -> torch.Tensor:
        return torch.cat([real, real.index_select(1, self._cond_index_)], dim=1)

    def _critic_batch(self, idx: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """The epoch's batch for the first critic update, random rows for the others; fake
        rows take the real rows' conditions."""
        data = self._data_
        if step:
            idx = torch.randint(
                len(data), (len(idx),), generator=self._generator_, device=data.device
            )
        real = self._with_condition(data[idx])
        return real, real[:, -self._cond_width_ :], None

    def _fake_rows(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self._fake(cond, self._generator_)
        return fake, fake

    # ------------------------------------------------------------------ DP-SGD
    def _dp_training(self) -> PrivateStep:
        return PrivateStep(self.discriminator_, self._dp_train_step, int(self.discriminator_steps))

    def _dp_critic_loss(
        self, params: dict, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        return critic_row_loss(
            self.discriminator_,
            params,
            real,
            fake,
            alpha,
            penalty_weight=self.gradient_penalty_weight,
        )

    def _dp_train_step(self, dp: DPSGDTraining) -> dict[str, torch.Tensor]:
        """Private critic steps on Poisson batches (each fake row takes its real row's
        condition); the generator's conditions follow the DP level frequencies."""
        g, data, width = self._generator_, self._data_, self._cond_width_
        for _ in range(self.discriminator_steps):
            real = self._with_condition(data[dp.batch(len(data), g)])
            self.generator_.eval()  # running batch-norm statistics: rows stay independent
            with torch.no_grad():
                fake = self._fake(real[:, -width:], g)
            self.generator_.train()
            alpha = torch.rand(len(real), 1, generator=g, device=data.device)
            dp.step(self._dp_critic_loss, real, fake, alpha)
            self._opt_d_.step()
        u = torch.rand(self.batch_size, 1, generator=g, device=data.device)
        level = (u >= self._cond_cum_).sum(dim=1).clamp(max=width - 1)
        cond = torch.nn.functional.one_hot(level, width).to(data.dtype)
        fake = self._fake(cond, g)
        self.discriminator_.requires_grad_(False)
        loss_g = -self.discriminator_(fake).mean()
        self.discriminator_.requires_grad_(True)
        self._opt_g_.zero_grad(set_to_none=True)
        loss_g.backward()
        self._opt_g_.step()
        return {
            "generator_loss": loss_g.detach(),
            "discriminator_loss": torch.tensor(float("nan"), device=data.device),
        }

    def _validation_loss(self, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        real = self._with_condition(valid)
        fake = self._fake(real[:, -self._cond_width_ :], generator)
        return self.discriminator_(real).mean() - self.discriminator_(fake).mean()

    # ------------------------------------------------------------------ sampling
    def _generate(
        self, num_rows: int, generator: torch.Generator, level: int | None = None, **kwargs: Any
    ) -> torch.Tensor:
        width = self._cond_width_
        device = self._keep_.device
        if level is None:
            u = torch.rand(num_rows, 1, generator=generator, device=device)
            levels = (u >= self._cond_cum_).sum(dim=1)
        else:
            levels = torch.full((num_rows,), level, device=device, dtype=torch.long)
        cond = torch.nn.functional.one_hot(levels, width).float()
        z = torch.randn(num_rows, self.embedding_dim, generator=generator, device=device)
        rows_t = sample_rows_t(self.generator_.output_t(z, cond), self._layout_, generator)
        rows_t.index_copy_(0, self._cond_index_, cond.T)
        return rows_t

    def conditioning(self) -> Candidates:
        """The conditional vector: an equality on ``condition_column`` is generated directly."""
        return Candidates("conditional vector", self._sample_conditioned)

    def _sample_conditioned(
        self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator
    ) -> np.ndarray | None:
        """Rows generated for an equality condition on ``condition_column`` (no rejection)."""
        cond = parsed.get(self.condition_column)
        if cond is None or cond[0] != "eq" or self._cond_column_ != self.condition_column:
            return None
        transformer = self._transformer_.get_transformer(self.condition_column)
        level = int(transformer.codes(pd.Series([cond[1]], dtype=object))[0])
        return self._generate_encoded(num_rows, rng, level=level)
