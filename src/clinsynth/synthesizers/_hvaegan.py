"""HVAE-GAN: a hierarchical VAE over feature groups, sharpened by an adversarial critic.

Clinical tables come in blocks (genetic markers, clinical measurements, environment). Each group
has its own encoder, which sees only that group's columns and infers that group's latent block
``z_g``; the group latents are concatenated and one decoder reconstructs the whole row from them.

Group encoders alone would leave the prior over the blocks independent, and the dependence
*between* groups (a genotype and a lab value) would be lost when sampling. So the latent space is
hierarchical (as in ladder/NVAE-style models): a shared top latent ``z_top ~ N(0, I)`` generates
the group latents through a learned conditional prior ``p(z_g | z_top)``, and a top encoder
infers ``q(z_top | z_groups)``. The KL term is ``KL(q(z_top) || N(0, I)) + KL(q(z_g | x_g) ||
p(z_g | z_top))``. Sampling goes down the hierarchy: ``z_top`` -> ``z_groups`` -> row.

A critic compares real rows with rows decoded from the prior (Gumbel-softmax relaxed); the
decoder is trained on ``loss_factor * reconstruction + kl_weight * KL + adversarial_weight *
non-saturating GAN loss`` (Larsen et al., 2016 combine a VAE and a GAN the same way).

The group encoders are one block-diagonal network (masked weights): one matrix product per layer
for every group, instead of one small network per group.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clinsynth.errors import ParameterError, parameter_error
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
from clinsynth.synthesizers._tvae import Decoder
from clinsynth.synthesizers.nn import (
    Critic,
    MaskedLinear,
    activate,
    gaussian_kl,
    mlp,
    reconstruction_loss,
    sample_rows_t,
)
from clinsynth.synthesizers.nn._optim import adam

GUMBEL_TAU = 0.2
OTHER_GROUP = "other"


class GroupEncoder(nn.Module):
    """Block-diagonal MLP: group ``g``'s hidden units and latent block see only its columns.

    Output: ``[mu_1, ..., mu_G, logvar_1, ..., logvar_G]``, each block ``latent_dim`` wide.
    """

    def __init__(
        self, in_dim: int, groups: list[np.ndarray], hidden: tuple[int, ...], latent_dim: int
    ) -> None:
        super().__init__()
        n_groups = len(groups)
        layers: list[nn.Module] = []
        # Owner group of each input unit (-1: no group) and of each output unit, layer by layer.
        owner_in = np.full(in_dim, -1)
        for g, cols in enumerate(groups):
            owner_in[cols] = g
        for width in hidden:
            owner_out = np.repeat(np.arange(n_groups), width)
            mask = owner_out[:, None] == owner_in[None, :]
            layers += [MaskedLinear(len(owner_in), len(owner_out), mask), nn.ReLU()]
            owner_in = owner_out
        owner_out = np.tile(np.repeat(np.arange(n_groups), latent_dim), 2)
        layers.append(
            MaskedLinear(len(owner_in), len(owner_out), owner_out[:, None] == owner_in[None, :])
        )
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("hvaegan", aliases=("hvae_gan", "hvae"))
class HVAEGANSynthesizer(DeepSynthesizer):
    """Hierarchical VAE-GAN with one encoder per feature group and a shared latent space.

    Parameters
    ----------
    metadata : Metadata
    column_groups : dict of str to list of str, optional
        Feature groups, e.g. ``{"genetic": [...], "clinical": [...], "environmental": [...]}``.
        Default: the metadata's ``column_groups``, else one group. Columns in no group form an
        ``"other"`` group.
    group_embedding_dim : int
        Latent size of each group.
    embedding_dim : int
        Size of the shared top latent.
    compress_dims : tuple of int
        Hidden widths of each group's encoder.
    decompress_dims : tuple of int
        Hidden widths of the decoder.
    discriminator_dim : tuple of int
        Widths of the critic (not trained when ``adversarial_weight=0``).
    kl_weight : float
        Weight of the KL term.
    adversarial_weight : float
        Weight of the decoder's adversarial loss (0: a pure hierarchical VAE).
    loss_factor : float
        Weight of the reconstruction term (as in TVAE).
    l2scale : float
        Weight decay.
    learning_rate, discriminator_lr : float
        Adam learning rates of the VAE and of the critic.
    batch_size, epochs : int
    validation_split, early_stopping_patience, checkpoint_dir, checkpoint_every
        See :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` (validation: the negative
        ELBO of held-out rows).
    epsilon, delta, max_grad_norm, public_bounds
        Differential privacy: DP-SGD on the encoders, prior, decoder and critic together (see
        :class:`~clinsynth.synthesizers._deep.DeepSynthesizer` and ``docs/PRIVACY.md``).
    **kwargs
        ``random_state``, ``device`` ("cpu", "cuda", "auto"), ``verbose``, ``progress``, ...

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, HVAEGANSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"apoe4": rng.choice(["yes", "no"], 200), "age": rng.normal(60, 9, 200),
    ...                    "smoker": rng.choice([True, False], 200)})
    >>> groups = {"genetic": ["apoe4"], "clinical": ["age"]}  # smoker -> "other"
    >>> model = HVAEGANSynthesizer(Metadata.detect_from_dataframe(df), column_groups=groups,
    ...                            epochs=2, random_state=0).fit(df)
    >>> model.sample(4).shape, model.encode(df.head(2)).shape
    ((4, 3), (2, 48))
    >>> model.latent_groups_
    {'genetic': slice(0, 16, None), 'clinical': slice(16, 32, None), 'other': slice(32, 48, None)}
    """

    _network_names: ClassVar[tuple[str, ...]] = (
        "encoder",
        "top",
        "prior",
        "decoder",
        "discriminator",
    )
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "column_groups": (
            lambda v: (
                v is None
                or (
                    isinstance(v, dict)
                    and all(
                        isinstance(k, str) and isinstance(c, list | tuple) for k, c in v.items()
                    )
                )
            ),
            "None or a dict of group name to a list of columns",
        ),
        "group_embedding_dim": (_is_int(1), "an int >= 1"),
        "embedding_dim": (_is_int(1), "an int >= 1"),
        "compress_dims": DIMS,
        "decompress_dims": DIMS,
        "discriminator_dim": DIMS,
        "kl_weight": NON_NEGATIVE_FLOAT,
        "adversarial_weight": NON_NEGATIVE_FLOAT,
        "loss_factor": POSITIVE_FLOAT,
        "l2scale": NON_NEGATIVE_FLOAT,
        "learning_rate": POSITIVE_FLOAT,
        "discriminator_lr": POSITIVE_FLOAT,
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        column_groups: dict[str, list[str]] | None = None,
        group_embedding_dim: int = 16,
        embedding_dim: int = 32,
        compress_dims: tuple[int, ...] = (128,),
        decompress_dims: tuple[int, ...] = (128, 128),
        discriminator_dim: tuple[int, ...] = (128, 128),
        kl_weight: float = 1.0,
        adversarial_weight: float = 1.0,
        loss_factor: float = 2,
        l2scale: float = 1e-5,
        learning_rate: float = 1e-3,
        discriminator_lr: float = 2e-4,
        batch_size: int = 500,
        epochs: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.column_groups = column_groups
        self.group_embedding_dim = group_embedding_dim
        self.embedding_dim = embedding_dim
        self.compress_dims = compress_dims
        self.decompress_dims = decompress_dims
        self.discriminator_dim = discriminator_dim
        self.kl_weight = kl_weight
        self.adversarial_weight = adversarial_weight
        self.loss_factor = loss_factor
        self.l2scale = l2scale
        self.learning_rate = learning_rate
        self.discriminator_lr = discriminator_lr
        self.batch_size = batch_size
        self.epochs = epochs

    # ------------------------------------------------------------------ groups
    def _check_params(self) -> None:
        super()._check_params()
        self._declared_groups()

    def _declared_groups(self) -> dict[str, list[str]]:
        """The groups asked for (parameter, else metadata, else one), every column once."""
        table = self._table_metadata()
        groups = self.column_groups
        if groups is None:
            groups = getattr(table, "column_groups", None) or {}
        groups = {str(k): list(v) for k, v in groups.items()}
        if not groups:
            return {"all": list(table.columns)}
        seen: dict[str, str] = {}
        problems = []
        for name, columns in groups.items():
            for column in columns:
                if column not in table.columns:
                    problems.append(f"group '{name}' names '{column}', which is not a column")
                elif column in seen:
                    problems.append(f"'{column}' is in groups '{seen[column]}' and '{name}'")
                seen.setdefault(column, name)
        if problems:
            raise ParameterError.from_problems(
                f"The 'column_groups' of {type(self).__name__} are invalid; each column may be "
                "in one group at most",
                problems,
            )
        rest = [c for c in table.columns if c not in seen]
        if rest:
            groups.setdefault(OTHER_GROUP, []).extend(rest)
        return groups

    def _model_groups(self) -> dict[str, list[str]]:
        """The declared groups over the columns the model encodes: a joint column made by a
        rule (``FixedCombinations``) joins the group of its members; any unclaimed column joins
        the ``"other"`` group."""
        declared = self._declared_groups()
        owner = {c: g for g, columns in declared.items() for c in columns}
        for rule in getattr(self, "_rules_", None) or []:
            joint = getattr(rule, "joint_column", None)
            members = [c for c in getattr(rule, "columns", []) if c in owner]
            if joint is not None and members:
                owner.setdefault(joint, owner[members[0]])
        groups: dict[str, list[str]] = {g: [] for g in declared}
        for column in self._transformer_.column_names:
            groups.setdefault(owner.get(column, OTHER_GROUP), []).append(column)
        return groups

    def _group_columns(self) -> tuple[list[str], list[np.ndarray]]:
        """Group names and their permuted encoded columns (groups with no encoded column
        -- only identifiers or personal data -- are dropped)."""
        spans = self._transformer_.output_info
        names, cols = [], []
        for name, columns in self._groups_.items():
            wanted = set(columns)
            index = self._layout_.permuted_columns(
                [i for i, s in enumerate(spans) if s.column in wanted]
            )
            if len(index):
                names.append(name)
                cols.append(index)
        return names, cols

    @property
    def latent_groups_(self) -> dict[str, slice]:
        """Where each group's block lies in the coordinates returned by :meth:`encode`."""
        self._check_fitted()
        width = self.group_embedding_dim
        return {
            name: slice(i * width, (i + 1) * width) for i, name in enumerate(self._group_names_)
        }

    # ------------------------------------------------------------------ networks
    def _fit(self, encoded: np.ndarray) -> None:
        self._groups_ = self._model_groups()
        super()._fit(encoded)

    def _build_networks(self, generator: torch.Generator, device: torch.device) -> None:
        self._group_names_, cols = self._group_columns()
        dim, latent = self._layout_.dim, self.group_embedding_dim * len(cols)
        self.encoder_ = self._build(
            lambda: GroupEncoder(dim, cols, tuple(self.compress_dims), self.group_embedding_dim),
            generator,
            device,
        )
        self.top_ = self._build(
            lambda: mlp(latent, (128,), 2 * self.embedding_dim), generator, device
        )
        self.prior_ = self._build(
            lambda: mlp(self.embedding_dim, (128,), 2 * latent), generator, device
        )
        self.decoder_ = self._build(
            lambda: Decoder(latent, tuple(self.decompress_dims), dim, self._layout_.n_scalar),
            generator,
            device,
        )
        self.discriminator_ = self._build(
            lambda: Critic(dim, tuple(self.discriminator_dim), pac=1), generator, device
        )

    def _make_optimizers(self, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        vae = [
            p
            for name in ("encoder", "top", "prior", "decoder")
            for p in getattr(self, f"{name}_").parameters()
        ]
        self._opt_ = adam(vae, self.learning_rate, self.l2scale, device)
        self._opt_d_ = adam(
            self.discriminator_.parameters(), self.discriminator_lr, 0.0, device, betas=(0.5, 0.9)
        )
        return {"vae": self._opt_, "discriminator": self._opt_d_}

    # ------------------------------------------------------------------ training
    def _noise(self, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    def _elbo(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-row ``loss_factor * reconstruction + kl_weight * KL`` (the negative ELBO)."""
        mu, logvar = self.encoder_(x).chunk(2, dim=1)
        z = mu + self._noise(mu, generator) * torch.exp(0.5 * logvar)
        top_mu, top_logvar = self.top_(z).chunk(2, dim=1)
        z_top = top_mu + self._noise(top_mu, generator) * torch.exp(0.5 * top_logvar)
        prior_mu, prior_logvar = self.prior_(z_top).chunk(2, dim=1)
        kl = gaussian_kl(top_mu, top_logvar) + gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        nll = reconstruction_loss(self.decoder_(z), x, self._layout_, self.decoder_.sigma)
        return (self.loss_factor * nll + self.kl_weight * kl) / x.shape[0]

    def _prior_latents(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        z_top = torch.randn(n, self.embedding_dim, generator=generator, device=device)
        mu, logvar = self.prior_(z_top).chunk(2, dim=1)
        return mu + self._noise(mu, generator) * torch.exp(0.5 * logvar)

    def _train_step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        g, x = self._generator_, self._data_[idx]
        loss = self._elbo(x, g)
        out = {}
        if self.adversarial_weight > 0:
            critic = self.discriminator_
            raw = self.decoder_(self._prior_latents(len(x), g, x.device))
            fake = activate(raw, self._layout_, tau=GUMBEL_TAU, generator=g)
            loss_d = F.softplus(-critic(x)).mean() + F.softplus(critic(fake.detach())).mean()
            self._opt_d_.zero_grad(set_to_none=True)
            loss_d.backward()
            self._opt_d_.step()
            critic.requires_grad_(False)
            adversarial = F.softplus(-critic(fake)).mean()
            critic.requires_grad_(True)
            loss = loss + self.adversarial_weight * adversarial
            out = {"adversarial_loss": adversarial.detach(), "discriminator_loss": loss_d.detach()}
        self._opt_.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_.step()
        with torch.no_grad():
            self.decoder_.sigma.clamp_(0.01, 1.0)
        return {"loss": loss.detach(), **out}

    def _validation_loss(self, valid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._elbo(valid, generator)

    # ------------------------------------------------------------------ DP-SGD
    def _dp_training(self) -> PrivateStep:
        names = ["encoder", "top", "prior", "decoder"]
        if self.adversarial_weight > 0:
            names.append("discriminator")
        return PrivateStep({name: getattr(self, f"{name}_") for name in names}, self._dp_train_step)

    def _dp_row_loss(
        self, params: dict, x: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """One row's negative ELBO (the VAE's networks) plus its critic loss against one
        generated row (the critic's): one gradient vector per row, clipped as a whole."""
        mu, logvar = functional(self.encoder_, params["encoder"], x).chunk(2, dim=1)
        z = mu + e1 * torch.exp(0.5 * logvar)
        top_mu, top_logvar = functional(self.top_, params["top"], z).chunk(2, dim=1)
        z_top = top_mu + e2 * torch.exp(0.5 * top_logvar)
        prior_mu, prior_logvar = functional(self.prior_, params["prior"], z_top).chunk(2, dim=1)
        kl = gaussian_kl(top_mu, top_logvar) + gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        raw = functional(self.decoder_, params["decoder"], z)
        nll = reconstruction_loss(raw, x, self._layout_, params["decoder"]["sigma"])
        loss = self.loss_factor * nll + self.kl_weight * kl
        if self.adversarial_weight > 0:
            d = params["discriminator"]
            loss = (
                loss
                + F.softplus(-functional(self.discriminator_, d, x)).sum()
                + F.softplus(functional(self.discriminator_, d, fake)).sum()
            )
        return loss

    def _dp_train_step(self, dp: DPSGDTraining) -> dict[str, torch.Tensor]:
        """DP-SGD on every network that reads real rows; the adversarial term of the decoder
        reads none (generated rows through the private critic) and is added as it is."""
        g, data = self._generator_, self._data_
        x = data[dp.batch(len(data), g)]
        n, latent = len(x), self.group_embedding_dim * len(self._group_names_)
        e1 = torch.randn(n, latent, generator=g, device=x.device, dtype=x.dtype)
        e2 = torch.randn(n, self.embedding_dim, generator=g, device=x.device, dtype=x.dtype)
        with torch.no_grad():
            fake = activate(
                self.decoder_(self._prior_latents(n, g, x.device)),
                self._layout_,
                tau=GUMBEL_TAU,
                generator=g,
            )
        dp.step(self._dp_row_loss, x, e1, e2, fake)
        if self.adversarial_weight > 0:
            critic = self.discriminator_
            raw = self.decoder_(self._prior_latents(self.batch_size, g, x.device))
            generated = activate(raw, self._layout_, tau=GUMBEL_TAU, generator=g)
            critic.requires_grad_(False)
            adversarial = self.adversarial_weight * F.softplus(-critic(generated)).mean()
            critic.requires_grad_(True)
            params = [
                p for name in ("prior", "decoder") for p in getattr(self, f"{name}_").parameters()
            ]
            for p, extra in zip(
                params, torch.autograd.grad(adversarial, params, allow_unused=True), strict=True
            ):
                if extra is not None:
                    p.grad = extra if p.grad is None else p.grad + extra
            self._opt_d_.step()
        self._opt_.step()
        with torch.no_grad():
            self.decoder_.sigma.clamp_(0.01, 1.0)
        return {"loss": torch.tensor(float("nan"), device=x.device)}

    # ------------------------------------------------------------------ sampling
    def _generate(self, num_rows: int, generator: torch.Generator, **kwargs: Any) -> torch.Tensor:
        sigma = self.decoder_.sigma
        z = self._prior_latents(num_rows, generator, sigma.device)
        return sample_rows_t(self.decoder_.output_t(z), self._layout_, generator, sigma)

    def encode(self, data: Any, *, level: str = "groups") -> np.ndarray:
        """Latent coordinates of the rows of ``data`` (posterior means).

        Parameters
        ----------
        data : DataFrame
        level : {"groups", "shared"}
            ``groups``: the concatenated group latents the decoder reads (blocks in
            :attr:`latent_groups_`); ``shared``: the top latent shared by all groups.
        """
        if level not in ("groups", "shared"):
            raise parameter_error("encode", "level", level, "'groups' or 'shared'")

        def mean(x: torch.Tensor) -> torch.Tensor:
            mu = self.encoder_(x).chunk(2, dim=1)[0]
            return self.top_(mu).chunk(2, dim=1)[0] if level == "shared" else mu

        self._check_fitted()
        shared = level == "shared"
        dim = self.embedding_dim if shared else self.group_embedding_dim * len(self._group_names_)
        return latent_codes(self, data, mean, int(dim))

    # ------------------------------------------------------------------ persistence
    def _extra_state(self) -> dict[str, Any]:
        return {"groups": self._groups_}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        from clinsynth.io import _schema as S

        columns = self._transformer_.column_names
        spec = S.mapping(
            values=S.array(S.text(10_000, choices=columns), max_len=len(columns)),
            keys=S.text(1000),
            max_len=max(len(columns), 1),
        )
        S.check_json(state.get("groups"), spec, "model.json (hvaegan): groups")
        self._groups_ = {k: list(v) for k, v in state["groups"].items()}

    # ------------------------------------------------------------------ conditions
    def conditioning(self) -> CheckedRows:
        """Importance resampling in the noise of the hierarchy."""
        return CheckedRows("latent importance", self._sample_conditioned)

    def _sample_conditioned(
        self, num_rows: int, parsed: dict[str, Any], rng: Any, max_rounds: int = 100
    ) -> Any:
        """Rows meeting a condition: importance resampling in the noise of the hierarchy (the
        top latent, the group latents' noise and the output noise; see
        :mod:`clinsynth.synthesizers._latent_conditioning`)."""
        from clinsynth.synthesizers._latent_conditioning import sample_in_noise_space

        top = int(self.embedding_dim)
        groups = int(self.group_embedding_dim * len(self._group_names_))

        def decode(noise: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            # _prior_latents and _generate, from their noise on.
            mu, logvar = self.prior_(noise[:, :top]).chunk(2, dim=1)
            z = mu + noise[:, top:] * torch.exp(0.5 * logvar)
            return self.decoder_.output_t(z)

        return sample_in_noise_space(
            self,
            num_rows,
            parsed,
            rng,
            noise_dims=(top, groups),
            decode=decode,
            reference=self._generate,
            sigma=self.decoder_.sigma,
            max_rounds=max_rounds,
        )
