"""The event network of the sequential synthesizer (tensors only).

A GRU reads a patient's past events; at each step a small conditional VAE (a prior and a
posterior over ``z_t`` given the GRU state, the patient's context, the step's position and,
directly, the previous event)
decodes the next event, every column of it at once (the latent ``z_t`` carries the dependence
between the columns of one event). Training is teacher-forced over padded batches of patients;
sampling runs the steps in time order, vectorized over patients, each step over the patients
whose sequence is still running (patients sorted by length, so those are a prefix).

With differential privacy (:func:`train_private`) the training example is one whole sequence:
:meth:`SequenceNet.forward` is the loss of each sequence of a padded batch (the GRU unrolled
on its own weights, padded steps masked out), so that ``torch.func`` can take one gradient per
sequence, which DP-SGD clips and noises (:class:`~clinsynth.privacy.DPSGD`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from clinsynth.synthesizers.nn._activations import sample_rows_t
from clinsynth.synthesizers.nn._layers import mlp
from clinsynth.synthesizers.nn._losses import gaussian_kl, reconstruction_loss
from clinsynth.synthesizers.nn._spans import SpanLayout

#: Features of a step: log(1 + position), log(1 + events left after it), first event, whether
#: the patient has an upper time bound, and log(1 + the time left before it, in typical gaps).
STEP_FEATURES = 5


def step_features(t: torch.Tensor, lengths: torch.Tensor, room: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` features of positions ``t`` in sequences of ``lengths`` with ``room``
    (time left before the upper bound after the previous event, in typical gaps; inf without
    a bound), broadcast together."""
    t = t.to(torch.float32)
    left = (lengths.to(torch.float32) - 1 - t).clamp_min(0)
    bounded = torch.isfinite(room)
    room = torch.where(bounded, room.clamp_min(0), torch.zeros_like(room))
    t, left, room = torch.broadcast_tensors(t, left, room)
    return torch.stack(
        [
            torch.log1p(t),
            torch.log1p(left),
            (t == 0).to(torch.float32),
            bounded.expand_as(t).to(torch.float32),
            torch.log1p(room),
        ],
        dim=-1,
    )


class GapCoding:
    """Where the event vector holds the gap, as a normal score of the log gap through its
    empirical distribution (``knots``: log gaps at evenly spaced probabilities), and how a
    score maps back to ticks: ``max(1, round(exp(quantile(ndtr(score)))))``."""

    def __init__(self, column: int, knots: list[float]) -> None:
        self.column = column
        self.knots = torch.tensor(knots, dtype=torch.float64)
        k = len(knots)
        self.probs = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        self.typical = math.exp(float(self.knots[k // 2]))

    def ticks(self, score: torch.Tensor) -> torch.Tensor:
        """Gaps in ticks (float64 tensor of whole numbers >= 1)."""
        knots, probs = self.knots.to(score.device), self.probs.to(score.device)
        p = torch.special.ndtr(score.double()).clamp(float(probs[0]), float(probs[-1]))
        right = torch.searchsorted(probs, p).clamp(1, len(probs) - 1)
        left = right - 1
        w = (p - probs[left]) / (probs[right] - probs[left])
        logs = knots[left] + w * (knots[right] - knots[left])
        return torch.exp(logs).round().clamp_min(1.0)


class SequenceNet(nn.Module):
    """GRU over events + per-step conditional VAE (see the module notes)."""

    def __init__(
        self, context_dim: int, event_dim: int, hidden_dim: int, latent_dim: int, n_scalar: int
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.init_state = nn.Linear(max(context_dim, 1), hidden_dim)
        self.gru = nn.GRU(event_dim, hidden_dim, batch_first=True)
        cond = hidden_dim + context_dim + STEP_FEATURES + event_dim
        self.prior = mlp(cond, (hidden_dim,), 2 * latent_dim)
        self.encoder = mlp(cond + event_dim, (hidden_dim,), 2 * latent_dim)
        self.decoder = mlp(cond + latent_dim, (hidden_dim, hidden_dim), event_dim)
        self.sigma = nn.Parameter(torch.full((n_scalar,), 0.1))

    def init_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default distributions, drawn from ``generator``."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    bound = 1.0 / math.sqrt(max(module.in_features, 1))
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.uniform_(-bound, bound, generator=generator)
            bound = 1.0 / math.sqrt(self.gru.hidden_size)
            for p in self.gru.parameters():
                p.uniform_(-bound, bound, generator=generator)
            self.sigma.fill_(0.1)

    def start(self, context: torch.Tensor) -> torch.Tensor:
        """The GRU state before the first event, from the context."""
        if context.shape[1] == 0:
            context = context.new_zeros(context.shape[0], 1)
        return torch.tanh(self.init_state(context))

    @staticmethod
    def _gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = params.chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 10.0)

    def _step_conditions(
        self,
        events: torch.Tensor,
        context: torch.Tensor,
        lengths: torch.Tensor,
        room: torch.Tensor,
        *,
        unrolled: bool,
    ) -> torch.Tensor:
        """What each step of a padded batch ``(b, t, dim)`` is conditioned on: the GRU state
        after the previous events, the context, the step features and the previous event
        ``(b, t, ...)``. ``unrolled``: the GRU computed step by step (batchable by vmap)."""
        b, t, d = events.shape
        previous = torch.cat([events.new_zeros(b, 1, d), events[:, :-1]], dim=1)
        if unrolled:
            states = self._unrolled_gru(previous, self.start(context))
        else:
            states, _ = self.gru(previous, self.start(context).unsqueeze(0))
        steps = step_features(
            torch.arange(t, device=events.device).expand(b, t), lengths.unsqueeze(1), room
        )
        return torch.cat([states, context.unsqueeze(1).expand(b, t, -1), steps, previous], dim=2)

    def loss(
        self,
        events: torch.Tensor,
        mask: torch.Tensor,
        context: torch.Tensor,
        lengths: torch.Tensor,
        room: torch.Tensor,
        layout: SpanLayout,
        generator: torch.Generator,
        loss_factor: float,
    ) -> torch.Tensor:
        """Mean negative ELBO per event of a padded batch ``(patients, steps, dim)``;
        ``room`` ``(patients, steps)`` as :func:`step_features` wants it."""
        cond = self._step_conditions(events, context, lengths, room, unrolled=False)[mask]
        x = events[mask]
        mu_p, lv_p = self._gaussian(self.prior(cond))
        mu_q, lv_q = self._gaussian(self.encoder(torch.cat([cond, x], dim=1)))
        noise = torch.randn(mu_q.shape, generator=generator, device=x.device)
        z = mu_q + noise * torch.exp(0.5 * lv_q)
        raw = self.decoder(torch.cat([cond, z], dim=1))
        nll = reconstruction_loss(raw, x, layout, self.sigma)
        return (loss_factor * nll + gaussian_kl(mu_q, lv_q, mu_p, lv_p)) / x.shape[0]

    def _unrolled_gru(self, inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The GRU's states ``(b, t, hidden)`` computed step by step from its own weights
        (``nn.GRU``'s equations, gates r, z, n): ``torch.func`` can batch it per sequence."""
        gru = self.gru
        gates_in = inputs @ gru.weight_ih_l0.T + gru.bias_ih_l0
        states = []
        for t in range(inputs.shape[1]):
            gates_h = state @ gru.weight_hh_l0.T + gru.bias_hh_l0
            i_r, i_z, i_n = gates_in[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            state = (1 - z) * torch.tanh(i_n + r * h_n) + z * state
            states.append(state)
        return torch.stack(states, dim=1)

    def forward(
        self,
        events: torch.Tensor,
        mask: torch.Tensor,
        context: torch.Tensor,
        lengths: torch.Tensor,
        room: torch.Tensor,
        noise: torch.Tensor,
        layout: SpanLayout,
        loss_factor: float,
    ) -> torch.Tensor:
        """The negative ELBO of each sequence of a padded batch, per event: ``(b,)``.

        ``events`` ``(b, t, dim)`` zero on padded steps, ``mask`` ``(b, t)`` (1.0 on real
        steps), ``noise`` ``(b, t, latent)`` the reparametrization draws. No boolean indexing
        and no cuDNN GRU: the function is batched per sequence by ``torch.func.vmap``.
        """
        b, t, d = events.shape
        cond = self._step_conditions(events, context, lengths, room, unrolled=True)
        mu_p, lv_p = self._gaussian(self.prior(cond))
        mu_q, lv_q = self._gaussian(self.encoder(torch.cat([cond, events], dim=2)))
        z = mu_q + noise * torch.exp(0.5 * lv_q)
        raw = self.decoder(torch.cat([cond, z], dim=2))
        nll = _masked_nll(raw.reshape(b * t, d), events.reshape(b * t, d), layout, self.sigma)
        kl = 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p).pow(2)) / lv_p.exp() - 1).sum(2)
        per_step = loss_factor * nll.reshape(b, t) + kl
        return (per_step * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    @torch.no_grad()
    def generate(
        self,
        context: torch.Tensor,
        lengths: torch.Tensor,
        start: torch.Tensor,
        high: torch.Tensor,
        gap: GapCoding,
        layout: SpanLayout,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Events of every patient, patient after patient, ``(sum(lengths), dim)`` in the
        network's (permuted) column order, and the tick of each (float64): ``start`` for the
        first event, then the gaps the events carry. ``high`` is each patient's last allowed
        tick (inf without a bound)."""
        n = context.shape[0]
        dim = self.decoder[-1].out_features
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_len = lengths[order]
        offsets = torch.cumsum(lengths, 0) - lengths
        where = offsets[order]
        ctx, clock, limit = context[order], start[order].double(), high[order].double()
        out = context.new_empty(int(lengths.sum()), dim)
        ticks = torch.empty(out.shape[0], dtype=torch.float64, device=out.device)
        state = self.start(ctx)
        previous = context.new_zeros(n, dim)
        for t in range(int(sorted_len[0]) if n else 0):
            k = int((sorted_len > t).sum())
            _, h = self.gru(previous[:k].unsqueeze(1), state[:k].unsqueeze(0))
            state = h.squeeze(0)
            room = ((limit[:k] - clock[:k]) / gap.typical).float()
            steps = step_features(torch.full((k,), t, device=ctx.device), sorted_len[:k], room)
            cond = torch.cat([state, ctx[:k], steps, previous[:k]], dim=1)
            mu, logvar = self._gaussian(self.prior(cond))
            noise = torch.randn(mu.shape, generator=generator, device=ctx.device)
            z = mu + noise * torch.exp(0.5 * logvar)
            raw_t = self.decoder(torch.cat([cond, z], dim=1)).T.contiguous()
            x = sample_rows_t(raw_t, layout, generator, self.sigma).T
            if t:
                clock = clock.clone()
                clock[:k] += gap.ticks(x[:, gap.column])
            out[where[:k] + t] = x
            ticks[where[:k] + t] = clock[:k]
            previous = x
        return out, ticks


def _masked_nll(
    raw: torch.Tensor, target: torch.Tensor, layout: SpanLayout, sigma: torch.Tensor
) -> torch.Tensor:
    """Negative log-likelihood of each row (``(rows,)``), as
    :func:`~clinsynth.synthesizers.nn._layers.reconstruction_loss` sums it over rows."""
    s = layout.n_scalar
    pieces = layout.split(raw)
    loss = raw.new_zeros(raw.shape[0])
    if s:
        pred = torch.tanh(pieces[0])
        if layout.n_linear:
            pred = torch.cat([pred, pieces[1]], dim=1)
        loss = loss + (((target[:, :s] - pred) / sigma) ** 2).sum(1) / 2 + torch.log(sigma).sum()
    for (_, count, width), logits, (block, _) in zip(
        layout.groups, pieces[2:], layout.blocks(target), strict=True
    ):
        view, axis = layout.block_view(logits, count, width)
        term = block * torch.log_softmax(view, dim=axis)
        loss = loss - term.reshape(term.shape[0], -1).sum(1)
    return loss


def _padded(
    events: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor, room: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The events of a batch of sequences padded to the longest (zeros), the mask and room."""
    device = events.device
    longest = int(lengths.max()) if len(lengths) else 1
    steps = torch.arange(longest, device=device)
    mask = steps.unsqueeze(0) < lengths.unsqueeze(1)
    rows = torch.where(mask, offsets.unsqueeze(1) + steps, 0)
    batch = events[rows] * mask.unsqueeze(2)
    space = torch.where(mask, room[rows], torch.zeros((), device=device))
    return batch, mask, space


def train_private(
    net: SequenceNet,
    events: torch.Tensor,
    lengths: torch.Tensor,
    context: torch.Tensor,
    room: torch.Tensor,
    layout: SpanLayout,
    dp: Any,
    *,
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float,
    loss_factor: float,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
) -> None:
    """DP-SGD over whole sequences: ``epochs * steps_per_epoch`` steps of Adam on private
    gradients. Each step draws a Poisson batch of sequences (``dp.batch``) and hands the
    per-sequence loss to ``dp.step`` (a
    :class:`~clinsynth.synthesizers._dp.DPSGDTraining`), which clips each sequence's
    gradient and adds the noise: a patient's whole sequence is one clipped example. No loss
    is reported (it would be computed on real rows outside the budget)."""
    from torch.func import functional_call

    offsets = torch.cumsum(lengths, 0) - lengths
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=1e-5)
    n = lengths.shape[0]
    options = {"layout": layout, "loss_factor": loss_factor}

    def row_loss(params: Any, *rows: torch.Tensor) -> torch.Tensor:
        return functional_call(net, params, rows, options).sum()

    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            idx = dp.batch(n, generator)
            batch, mask, space = _padded(events, offsets[idx], lengths[idx], room)
            noise = torch.randn(
                (*mask.shape, net.latent_dim), generator=generator, device=events.device
            )
            optimizer.zero_grad(set_to_none=True)
            dp.step(row_loss, batch, mask.float(), context[idx], lengths[idx], space, noise)
            optimizer.step()
            with torch.no_grad():
                net.sigma.clamp_(0.01, 1.0)
        if on_epoch is not None:
            on_epoch(epoch, float("nan"))


def train(
    net: SequenceNet,
    events: torch.Tensor,
    lengths: torch.Tensor,
    context: torch.Tensor,
    room: torch.Tensor,
    layout: SpanLayout,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    loss_factor: float,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam over shuffled batches of patients; each batch padded to its longest sequence.

    ``events`` holds every patient's events one after the other (permuted columns), ``room``
    the time left before each event's upper bound (see :func:`step_features`). Returns the
    mean loss of each epoch.
    """
    device = events.device
    offsets = torch.cumsum(lengths, 0) - lengths
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=1e-5)
    history = []
    n = lengths.shape[0]
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=generator, device=device)
        total, batches = 0.0, 0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            length = lengths[idx]
            steps = torch.arange(int(length.max()), device=device)
            mask = steps.unsqueeze(0) < length.unsqueeze(1)
            rows = torch.where(mask, offsets[idx].unsqueeze(1) + steps, 0)
            batch = events[rows] * mask.unsqueeze(2)
            space = torch.where(mask, room[rows], torch.zeros((), device=device))
            loss = net.loss(
                batch, mask, context[idx], length, space, layout, generator, loss_factor
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                net.sigma.clamp_(0.01, 1.0)
            total += float(loss.detach())
            batches += 1
        history.append(total / max(batches, 1))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
