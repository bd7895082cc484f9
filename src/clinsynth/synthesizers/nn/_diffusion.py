"""Gaussian and multinomial diffusion for tables, and the MLP denoiser (tensors only).

Numerical variables (normal scores) follow Gaussian diffusion (Ho et al., "Denoising Diffusion
Probabilistic Models", 2020): ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps`` with ``a_t`` the
cumulative product of ``1 - beta_t``; the network predicts ``eps``. Categorical variables (one-hot
groups) follow multinomial diffusion (Hoogeboom et al., "Argmax Flows and Multinomial
Diffusion", NeurIPS 2021): ``q(x_t | x_0) = Cat(a_t x_0 + (1 - a_t) / K)``; the network predicts
the logits of ``x_0`` and the loss is the KL divergence between the true posterior
``q(x_{t-1} | x_t, x_0)`` and the one computed with the predicted ``x_0``. One network denoises
both at once and the two losses are added, as in TabDDPM (Kotelnikov et al., "TabDDPM: Modelling
Tabular Data with Diffusion Models", ICML 2023). Both use the cosine schedule of Nichol &
Dhariwal ("Improved Denoising Diffusion Probabilistic Models", 2021).

Sampling may take fewer steps than training, on an evenly strided subsequence
``tau_S > ... > tau_1`` of the training steps. Gaussian part: the DDIM update (Song et al.,
"Denoising Diffusion Implicit Models", ICLR 2021) between ``tau_i`` and ``tau_{i-1}``, with
``eta`` = 0 deterministic and ``eta`` = 1 the ancestral DDPM step of the respaced chain.
Multinomial part: the same respacing. The marginals ``q(x_t | x_0)`` only depend on ``a_t``, so
the respaced chain with per-step keep probability ``a_{tau_i} / a_{tau_{i-1}}`` has exactly the
training marginals at the kept steps, and the reverse step draws from the posterior of that
chain, ``q(x_{tau_{i-1}} | x_{tau_i}, x_0)``, with the predicted ``x_0``. The network is only
ever asked for ``x_0`` (or ``eps``) at a training step ``t``, so no retraining is needed.

The layout of a row (permuted space of :class:`~clinsynth.synthesizers.nn.SpanLayout`): the
``n_num`` Gaussian variables first, then one-hot groups, ``(start, count, width)`` each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clinsynth.synthesizers.nn._activations import gumbel_noise

#: Predicted clean normal scores are clipped to this bound: quantile-normalized values lie
#: within about +-4.4 even for a million rows, and an unclipped prediction at a noisy step can be
#: far out (``sqrt(a_t)`` is tiny there), which would derail the few-step sampler.
X0_CLIP = 5.0
#: Floor of probabilities before a log (a one-hot target has exact zeros).
_LOG_FLOOR = 1e-30


def cosine_alpha_bars(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """``a_t``, the cumulative product of ``1 - beta_t``, for ``t = 0 .. T-1`` (cosine schedule).

    Examples
    --------
    >>> a = cosine_alpha_bars(1000)
    >>> bool(a[0] > 0.999 and a[-1] < 1e-4 and np.all(np.diff(a) < 0))
    True
    """
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    return np.cumprod(1.0 - betas)


def strided_timesteps(num_timesteps: int, sampling_steps: int) -> np.ndarray:
    """The training steps visited when sampling with ``sampling_steps`` steps, ascending.

    Always includes ``0`` and ``T - 1``.

    >>> strided_timesteps(1000, 5).tolist()
    [0, 250, 500, 749, 999]
    """
    steps = min(max(int(sampling_steps), 1), num_timesteps)
    return np.unique(np.round(np.linspace(0, num_timesteps - 1, steps)).astype(np.int64))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps ``t`` (Vaswani et al. 2017): ``(len(t), dim)``.

    >>> timestep_embedding(torch.tensor([0, 10]), 8).shape
    torch.Size([2, 8])
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float().unsqueeze(1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class LabelEmbedding(nn.Module):
    """A learned vector per class (``nn.Embedding`` with an initializer from a generator)."""

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, dim))

    def init_parameters(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0, generator=generator)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.embedding(y, self.weight)


class Denoiser(nn.Module):
    """MLP denoiser: ``(x_t, t, class) -> (eps of the numbers, x_0 logits of the groups)``.

    ``h = W x_t + MLP_t(sinusoid(t)) + E[class]`` then a ReLU MLP and a linear output of the
    row's width.

    Parameters
    ----------
    in_dim : int
        Width of a (permuted) row.
    hidden : sequence of int
        Widths of the hidden layers.
    embedding_dim : int
        Width of the input projection and of the time and class embeddings.
    n_classes : int
        Levels of the condition column; 0 for an unconditional model.

    Examples
    --------
    >>> net = Denoiser(5, (16, 16), 8, n_classes=3)
    >>> net(torch.zeros(4, 5), torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0])).shape
    torch.Size([4, 5])
    >>> net(torch.zeros(4, 5), torch.tensor([7]), torch.tensor([0, 1, 2, 0])).shape  # shared t
    torch.Size([4, 5])
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], embedding_dim: int, n_classes: int = 0
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.proj = nn.Linear(in_dim, embedding_dim)
        self.time = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim),
            nn.SiLU(),
            nn.Linear(embedding_dim, embedding_dim),
        )
        self.label = LabelEmbedding(n_classes, embedding_dim) if n_classes else None
        layers: list[nn.Module] = []
        dim = embedding_dim
        for h in hidden:
            layers += [nn.Linear(dim, h), nn.ReLU()]
            dim = h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(dim, in_dim)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``t`` holds one step per row, or a single step shared by every row."""
        h = self.proj(x) + self.time(timestep_embedding(t, self.embedding_dim))
        if self.label is not None and y is not None:
            h = h + self.label(y)
        return self.out(self.body(h))


class TabularDiffusion:
    """Gaussian diffusion of the first ``n_num`` variables, multinomial diffusion of the groups.

    Parameters
    ----------
    n_num : int
        Gaussian variables (the first ``n_num`` columns of a row).
    groups : list of (start, count, width)
        One-hot groups of equal width, contiguous from ``start`` (see ``SpanLayout.groups``).
    num_timesteps : int
        Diffusion steps ``T`` of training.
    device : torch.device

    Examples
    --------
    >>> diff = TabularDiffusion(1, [(1, 1, 3)], 100, torch.device("cpu"))
    >>> net = Denoiser(4, (16,), 8)
    >>> x0 = torch.cat([torch.randn(32, 1), torch.eye(3)[torch.randint(3, (32,))]], 1)
    >>> g = torch.Generator().manual_seed(0)
    >>> num, cat = diff.loss(net, x0, None, g)
    >>> diff.sample(net, 5, None, g, sampling_steps=10).shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        n_num: int,
        groups: Sequence[tuple[int, int, int]],
        num_timesteps: int,
        device: torch.device,
    ) -> None:
        self.n_num = int(n_num)
        self.groups = [tuple(int(v) for v in g) for g in groups]
        self.n_cat = sum(count for _, count, _ in self.groups)
        self.dim = self.n_num + sum(count * width for _, count, width in self.groups)
        self.num_timesteps = int(num_timesteps)
        self.device = device
        abar = cosine_alpha_bars(self.num_timesteps)
        self.alpha_bar_np = abar
        self.alpha_bar = torch.as_tensor(abar, dtype=torch.float32, device=device)
        alpha = abar / np.r_[1.0, abar[:-1]]
        self.log_alpha = torch.as_tensor(np.log(alpha), dtype=torch.float32, device=device)
        self.log_1m_alpha = torch.as_tensor(np.log1p(-alpha), dtype=torch.float32, device=device)
        # Step t - 1 of step 0 is the data itself: a_{-1} = 1 (log 0 = -inf is handled below).
        prev = np.r_[1.0, abar[:-1]]
        self.log_abar_prev = torch.as_tensor(np.log(prev), dtype=torch.float32, device=device)
        with np.errstate(divide="ignore"):
            log_1m_prev = np.log1p(-prev)
        self.log_1m_abar_prev = torch.as_tensor(log_1m_prev, dtype=torch.float32, device=device)
        self.log_abar = torch.as_tensor(np.log(abar), dtype=torch.float32, device=device)
        self.log_1m_abar = torch.as_tensor(np.log1p(-abar), dtype=torch.float32, device=device)

    # ------------------------------------------------------------------ multinomial helpers
    @staticmethod
    def _posterior(
        log_xt_factor: torch.Tensor,
        log_x0: torch.Tensor,
        log_keep_prev: torch.Tensor,
        log_mix_prev: torch.Tensor,
    ) -> torch.Tensor:
        """``log q(x_{t-1} | x_t, x_0)`` (normalized over the last axis).

        ``log_xt_factor`` is ``log q(x_t | x_{t-1} = k)`` for every ``k``; the second factor is
        ``log(a_{t-1} x_0 + (1 - a_{t-1}) / K)``, with ``log_mix_prev = log((1 - a_{t-1}) / K)``.
        """
        prior = torch.logaddexp(log_x0 + log_keep_prev, log_mix_prev)
        unnorm = log_xt_factor + prior
        return unnorm - torch.logsumexp(unnorm, dim=-1, keepdim=True)

    @staticmethod
    def _xt_factor(
        xt: torch.Tensor, log_keep: torch.Tensor, log_flip: torch.Tensor, width: int
    ) -> torch.Tensor:
        """``log(alpha x_t + (1 - alpha) / K)`` for a one-hot ``x_t``, as ``(rows, groups, K)``."""
        stay = torch.logaddexp(log_keep, log_flip - math.log(width))
        move = log_flip - math.log(width)
        return torch.where(xt > 0.5, stay, move)

    # ------------------------------------------------------------------ training loss
    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, gumbel: torch.Tensor
    ) -> torch.Tensor:
        """Noisy rows ``x_t`` given clean rows, steps, Gaussian noise and Gumbel noise.

        ``noise`` is ``(rows, n_num)``; ``gumbel`` is ``(rows, dim - n_num)`` (one Gumbel draw
        per category, used to draw ``x_t`` from ``q(x_t | x_0)`` by Gumbel-max).
        """
        n = x0.shape[0]
        parts = []
        if self.n_num:
            a = self.alpha_bar[t].unsqueeze(1)
            parts.append(a.sqrt() * x0[:, : self.n_num] + (1 - a).sqrt() * noise)
        la, l1a = self.log_abar[t].view(n, 1, 1), self.log_1m_abar[t].view(n, 1, 1)
        s = self.n_num
        for start, count, width in self.groups:
            end = start + count * width
            x0g = x0[:, start:end].reshape(n, count, width)
            logp = torch.logaddexp(torch.log(x0g.clamp_min(_LOG_FLOOR)) + la, l1a - math.log(width))
            g = gumbel[:, start - s : end - s].reshape(n, count, width)
            parts.append(F.one_hot((logp + g).argmax(-1), width).to(x0.dtype).reshape(n, -1))
        return torch.cat(parts, dim=1)

    def loss_terms(
        self,
        out: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row losses ``(gaussian, multinomial)`` from the denoiser's output ``out``.

        Gaussian: mean squared error of the predicted noise. Multinomial: ``T`` times the KL
        divergence of the true posterior from the predicted one (an unbiased estimate of the
        variational bound summed over steps), mean over categorical variables; at ``t = 0`` the
        KL is the negative log-likelihood of ``x_0``.
        """
        n = x0.shape[0]
        num = ((out[:, : self.n_num] - noise) ** 2).mean(dim=1) if self.n_num else x0.new_zeros(n)
        cat = x0.new_zeros(n)
        if self.n_cat:
            lk, lf = self.log_alpha[t].view(n, 1, 1), self.log_1m_alpha[t].view(n, 1, 1)
            lkp = self.log_abar_prev[t].view(n, 1, 1)
            l1p = self.log_1m_abar_prev[t].view(n, 1, 1)
            for start, count, width in self.groups:
                end = start + count * width
                shape = (n, count, width)
                factor = self._xt_factor(xt[:, start:end].reshape(shape), lk, lf, width)
                mix = l1p - math.log(width)
                log_x0 = torch.log(x0[:, start:end].reshape(shape).clamp_min(_LOG_FLOOR))
                log_true = self._posterior(factor, log_x0, lkp, mix)
                log_pred = self._posterior(
                    factor, torch.log_softmax(out[:, start:end].reshape(shape), dim=-1), lkp, mix
                )
                kl = (log_true.exp() * (log_true - log_pred)).sum(dim=-1)
                cat = cat + kl.sum(dim=1)
            # T * E_t[KL_t] estimates the sum over steps, the variational bound (Hoogeboom et
            # al.); without the factor T the categorical term would be ~1/T of the Gaussian one.
            cat = cat * (self.num_timesteps / self.n_cat)
        return num, cat

    def draw_training_noise(
        self, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps, Gaussian noise and Gumbel noise of one batch of ``n`` rows."""
        t = torch.randint(self.num_timesteps, (n,), generator=generator, device=self.device)
        noise = torch.randn(n, self.n_num, generator=generator, device=self.device)
        like = torch.empty(0, device=self.device)
        gumbel = gumbel_noise((n, self.dim - self.n_num), generator, like)
        return t, noise, gumbel

    def loss(
        self, net: nn.Module, x0: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean Gaussian and multinomial losses of a batch (add them to train)."""
        t, noise, gumbel = self.draw_training_noise(x0.shape[0], generator)
        xt = self.q_sample(x0, t, noise, gumbel)
        num, cat = self.loss_terms(net(xt, t, y), x0, xt, t, noise)
        return num.mean(), cat.mean()

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        net: nn.Module,
        n: int,
        y: torch.Tensor | None,
        generator: torch.Generator,
        *,
        sampling_steps: int,
        eta: float = 0.0,
        start: tuple[torch.Tensor, int] | None = None,
        record: tuple[list[torch.Tensor], int] | None = None,
    ) -> torch.Tensor:
        """``n`` rows drawn by the reverse process on a strided subsequence of steps.

        ``start = (x, t)`` continues the chain from the states ``x`` at the visited step ``t``
        instead of drawing ``x_T`` (``n`` must be ``len(x)``); ``record = (states, t)`` appends
        the rows' states at the visited step ``t`` to the list ``states`` (before the step
        from ``t``). Conditional sampling splits chains at such a step
        (:mod:`clinsynth.synthesizers._diffusion_conditioning`).
        """
        device = self.device
        taus = strided_timesteps(self.num_timesteps, sampling_steps)
        s = self.n_num
        if start is not None:
            x, first = start[0].clone(), int(np.searchsorted(taus, start[1]))
        else:
            x, first = torch.empty(n, self.dim, device=device), len(taus) - 1
            if s:
                x[:, :s] = torch.randn(n, s, generator=generator, device=device)
            for begin, count, width in self.groups:  # uniform over the levels
                u = torch.randint(width, (n, count), generator=generator, device=device)
                x[:, begin : begin + count * width] = F.one_hot(u, width).float().reshape(n, -1)
        abar = self.alpha_bar_np
        for i in range(first, -1, -1):
            t = int(taus[i])
            if record is not None and t == record[1]:
                record[0].append(x.clone())
            a_t = float(abar[t])
            a_prev = float(abar[taus[i - 1]]) if i > 0 else 1.0
            # Every row is at step t: the time embedding is computed once and broadcast.
            step = torch.full((1,), t, device=device, dtype=torch.long)
            out = net(x, step, y)
            new = torch.empty_like(x)
            if s:
                new[:, :s] = self._ddim_step(x[:, :s], out[:, :s], a_t, a_prev, eta, generator)
            if self.groups:
                new[:, s:] = self._multinomial_step(x, out, a_t, a_prev, generator)
            x = new
        return x

    def split_step(self, sampling_steps: int, alpha_bar: float = 0.5) -> int:
        """The visited step with the most noise whose ``a_t`` is at least ``alpha_bar``."""
        taus = strided_timesteps(self.num_timesteps, sampling_steps)
        ok = taus[self.alpha_bar_np[taus] >= alpha_bar]
        return int(ok[-1]) if len(ok) else int(taus[0])

    def _ddim_step(
        self,
        xt: torch.Tensor,
        eps: torch.Tensor,
        a_t: float,
        a_prev: float,
        eta: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        x0 = ((xt - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp_(-X0_CLIP, X0_CLIP)
        if a_prev >= 1.0:
            return x0
        eps = (xt - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        mean = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            mean = mean + sigma * torch.randn(xt.shape, generator=generator, device=xt.device)
        return mean

    def _multinomial_step(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        a_t: float,
        a_prev: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        n = x.shape[0]
        keep = a_t / a_prev  # the respaced chain's probability of keeping a level
        log_keep = torch.tensor(math.log(keep), device=x.device)
        log_flip = torch.tensor(math.log1p(-keep) if keep < 1 else -math.inf, device=x.device)
        log_keep_prev = torch.tensor(math.log(a_prev), device=x.device)
        log_1m_prev = math.log1p(-a_prev) if a_prev < 1 else -math.inf
        parts = []
        for start, count, width in self.groups:
            end = start + count * width
            shape = (n, count, width)
            factor = self._xt_factor(x[:, start:end].reshape(shape), log_keep, log_flip, width)
            mix = torch.tensor(log_1m_prev - math.log(width), device=x.device)
            log_x0 = torch.log_softmax(out[:, start:end].reshape(shape), dim=-1)
            logp = self._posterior(factor, log_x0, log_keep_prev, mix)
            g = gumbel_noise(shape, generator, logp)
            parts.append(F.one_hot((logp + g).argmax(-1), width).to(x.dtype).reshape(n, -1))
        return torch.cat(parts, dim=1)
