"""Fused output activations of the encoded spans (tanh scalars, softmax or Gumbel-softmax
groups) with one backward, and rows drawn from the generator's output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from clinsynth.synthesizers.nn._spans import _TINY, SpanLayout


def gumbel_noise(
    shape: Sequence[int], generator: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(U))`` from a local generator (in place: uniforms are
    several times cheaper to draw than exponentials on the CPU)."""
    u = torch.rand(tuple(shape), generator=generator, device=like.device, dtype=like.dtype)
    return u.clamp_(1e-10, 1.0 - 1e-7).log_().neg_().log_().neg_()


def activate(
    raw: torch.Tensor,
    layout: SpanLayout,
    *,
    tau: float | None = None,
    generator: torch.Generator | None = None,
    append: torch.Tensor | None = None,
) -> torch.Tensor:
    """Network output (permuted space) to data space: tanh, identity, softmax per span.

    With ``tau`` the one-hot groups use the Gumbel-softmax relaxation (noise from ``generator``),
    as GAN generators need to produce nearly one-hot, differentiable rows. ``append``: columns
    (without gradient, e.g. a conditional vector) placed after the activated ones.
    """
    if (
        tau is not None
        and layout.groups
        and (append is None or not append.requires_grad)
        and not torch.is_autocast_enabled(raw.device.type)
    ):
        if generator is None:
            raise ValueError("Gumbel-softmax needs a generator.")
        if append is None:
            append = raw.new_zeros(raw.shape[0], 0)
        return _GumbelActivate.apply(raw, layout, float(tau), generator, append)
    out = _activate(raw, layout, tau=tau, generator=generator)
    return out if append is None else torch.cat([out, append], dim=1)


class _GumbelActivate(torch.autograd.Function):
    """:func:`activate` with the Gumbel-softmax, and its backward, in a few whole-table
    operations: one noise tensor, one softmax per block of equal-width spans, one
    concatenation (with the appended columns) into the output. The autograd version builds
    some fifty graph nodes per call, an eighth of a CTGAN step on RHC. Same random draws, same
    numbers (``tests/synthesizers/test_critic_step.py``)."""

    @staticmethod
    def forward(
        ctx: Any,
        raw: torch.Tensor,
        layout: SpanLayout,
        tau: float,
        generator: torch.Generator,
        append: torch.Tensor,
    ) -> torch.Tensor:
        n, s = raw.shape[0], layout.n_scalar
        logits = raw[:, s:] + gumbel_noise((n, raw.shape[1] - s), generator, raw)
        logits.div_(tau)
        parts = []
        if layout.n_tanh:
            parts.append(torch.tanh(raw[:, : layout.n_tanh]))
        if layout.n_linear:
            parts.append(raw[:, layout.n_tanh : s])
        probs = []
        for first, count, width in layout.groups:
            start = first - s
            block, axis = layout.block_view(logits[:, start : start + count * width], count, width)
            probs.append(torch.softmax(block, dim=axis).view(n, -1))
        out = torch.cat([*parts, *probs, append], dim=1)
        # Levels below _TINY: zero (denormal floats slow every later product; see _activate).
        tail = out[:, s : layout.dim]
        tail.masked_fill_(tail < _TINY, 0.0)
        ctx.layout, ctx.tau = layout, tau
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor) -> Any:
        (out,) = ctx.saved_tensors
        layout, tau = ctx.layout, ctx.tau
        n, s = out.shape[0], layout.n_scalar
        parts = []
        if layout.n_tanh:
            parts.append(
                torch.ops.aten.tanh_backward(d_out[:, : layout.n_tanh], out[:, : layout.n_tanh])
            )
        if layout.n_linear:
            parts.append(d_out[:, layout.n_tanh : s])
        d_logits = d_out[:, s : layout.dim] / tau
        for first, count, width in layout.groups:
            cols = slice(first, first + count * width)
            d, axis = layout.block_view(
                d_logits[:, first - s : first - s + count * width], count, width
            )
            y, _ = layout.block_view(out[:, cols], count, width)
            grad = torch.ops.aten._softmax_backward_data(d, y, axis, out.dtype)
            parts.append(grad.reshape(n, -1))
        return torch.cat(parts, dim=1), None, None, None, None


def _activate(
    raw: torch.Tensor,
    layout: SpanLayout,
    *,
    tau: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`activate` with autograd's operations (no appended columns)."""
    pieces = layout.split(raw)
    parts = []
    if layout.n_tanh:
        parts.append(torch.tanh(pieces[0]))
    if layout.n_linear:
        parts.append(pieces[1])
    if layout.groups:
        n = raw.shape[0]
        noise: list[torch.Tensor | None] = [None] * len(layout.groups)
        if tau is not None:
            if generator is None:
                raise ValueError("Gumbel-softmax needs a generator.")
            sizes = [c * w for _, c, w in layout.groups]
            noise = list(gumbel_noise((n, sum(sizes)), generator, raw).split(sizes, dim=1))
        for (_, count, width), logits, g in zip(layout.groups, pieces[2:], noise, strict=True):
            if g is not None:
                logits = (logits + g) / tau
            block, axis = layout.block_view(logits, count, width)
            probs = torch.softmax(block, dim=axis)
            if g is not None:
                # A Gumbel-softmax at a low temperature puts most levels at 1e-40 and below:
                # denormal floats, on which every later matrix product (the critic's first
                # layer and its weight gradient) runs up to 100x slower on the CPU. They are
                # zero to the model; make them so.
                probs = probs.masked_fill(probs < _TINY, 0.0)
            parts.append(probs.reshape(n, -1))
    return torch.cat(parts, dim=1) if parts else raw


def output_t(layer: nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
    """``layer(hidden)`` transposed: ``(out_features, rows)``, computed as one matmul.

    Sampling works on columns: each variable is one contiguous row of this tensor, so the
    activations, the column permutation and the hand-over to the (column-major) decoder of the
    transformer are all contiguous copies, with no transposition of a large matrix.
    """
    return torch.addmm(layer.bias.unsqueeze(1), layer.weight, hidden.T)


def sample_rows_t(
    raw_t: torch.Tensor,
    layout: SpanLayout,
    generator: torch.Generator | None,
    sigma: torch.Tensor | None = None,
    *,
    jitter_t: torch.Tensor | None = None,
    uniforms: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Draw rows from the network's output distribution, in place; input and output transposed.

    Scalars: ``tanh`` (plus ``sigma``-scaled Gaussian noise when given, clipped to ``[-1, 1]``).
    One-hot groups: one level per span by inverse CDF on the unnormalized cumulative
    ``exp(logit - max)`` (one uniform per span, no division), returned one-hot.

    The noise is drawn from ``generator`` (the scalars' Gaussians first, then one uniform
    tensor per one-hot block, in ``layout.groups`` order), unless given: ``jitter_t``
    ``(scalars, rows)`` and ``uniforms``, one tensor per block holding ``(spans, rows)`` values
    in ``[0, 1)`` (conditional sampling replays chosen noise this way).
    """
    s = layout.n_scalar
    n = raw_t.shape[1]
    out = raw_t if raw_t.dtype == torch.float32 else raw_t.float()  # reduced-precision nets
    if layout.n_tanh:
        out[: layout.n_tanh].tanh_()
    if s and sigma is not None:
        if jitter_t is None:
            jitter_t = torch.randn(
                s, n, generator=generator, device=raw_t.device, dtype=raw_t.dtype
            )
        out[:s].addcmul_(jitter_t, sigma.unsqueeze(1))
        if layout.n_tanh:
            out[: layout.n_tanh].clamp_(-1.0, 1.0)
    for k, (block, axis) in enumerate(layout.blocks(out, transposed=True)):
        width = block.shape[axis]
        block.sub_(block.amax(dim=axis, keepdim=True)).exp_()
        # The running sum level by level: each step adds two contiguous slices, where torch's
        # cumsum over a leading axis walks the rows one by one (5x slower on the CPU).
        for j in range(1, width):
            block.select(axis, j).add_(block.select(axis, j - 1))
        total = block.narrow(axis, width - 1, 1)
        if uniforms is None:
            u = torch.rand(
                total.shape, generator=generator, device=raw_t.device, dtype=raw_t.dtype
            ).mul_(total)
        else:
            u = uniforms[k].reshape(total.shape) * total
        # Step: 1 from the drawn level on (u * total < total, so the last slot is always 1) ...
        torch.gt(block, u, out=block)
        # ... and its difference is the one-hot of the drawn level (from the end: in place).
        for j in range(width - 1, 0, -1):
            block.select(axis, j).sub_(block.select(axis, j - 1))
    return out
