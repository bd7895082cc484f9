"""Torch building blocks of the deep synthesizers: span layout, fused activations, losses, nets.

The encoded table arrives as spans (a scaled scalar, a one-hot group, ...). Looping over spans in
Python at every batch is where much of the time of common implementations goes, so the columns
are reordered once: scalars first, then the one-hot groups sorted by width. Every group of equal
width is then one contiguous block that reshapes to a 3-D tensor, and an activation or a loss
over all spans is a handful of tensor operations whatever the number of columns.

In the *level-major* order (what the synthesizers use) a block of ``count`` spans of ``width``
levels holds level 0 of every span, then level 1 of every span, ...: it reshapes to
``(rows, width, count)`` and the softmax runs over the middle axis, vectorized across spans.
A softmax over a short last axis (``(rows, count, width)``, the *span-major* order) is several
times slower on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Logit given to padding slots of ragged gathers: exp() underflows to 0 and 0 * it stays finite.
_PAD_LOGIT = -1e4
#: Probabilities below this are set to 0 where they would otherwise reach the matrix products
#: as denormal floats (below 1.2e-38), which the CPU multiplies up to 100x slower.
_TINY = 1e-20


class SpanLayout:
    """Where each kind of span lies once the encoded columns are reordered.

    Parameters
    ----------
    spans : sequence of SpanInfo-like objects
        Each with ``dim``, ``activation`` (``tanh``, ``linear`` or ``softmax``) and ``role``.
    level_major : bool
        Order each block of equal-width one-hot spans level by level (see the module notes);
        otherwise span by span.

    Attributes
    ----------
    order : ndarray
        ``permuted = encoded[:, order]``.
    inverse : ndarray
        ``encoded = permuted[:, inverse]``.
    n_tanh, n_linear : int
        Scalar columns: ``[0, n_tanh)`` are tanh-bounded, then ``n_linear`` unbounded ones.
    groups : list of (start, count, width)
        Blocks of ``count`` one-hot spans of equal ``width``, contiguous from ``start``.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> spans = [S(dim=2, activation="softmax", role="category"),
    ...          S(dim=1, activation="tanh", role="value"),
    ...          S(dim=2, activation="softmax", role="null")]
    >>> layout = SpanLayout(spans, level_major=True)
    >>> layout.order.tolist(), layout.groups
    ([2, 0, 3, 1, 4], [(1, 2, 2)])
    >>> layout.span_columns(0).tolist(), layout.span_columns(2).tolist()
    ([1, 3], [2, 4])
    """

    def __init__(self, spans: Sequence[Any], *, level_major: bool = False) -> None:
        tanh: list[int] = []
        linear: list[int] = []
        by_width: dict[int, list[int]] = {}
        starts: list[int] = []
        start = 0
        for i, span in enumerate(spans):
            starts.append(start)
            if span.activation == "tanh":
                tanh.append(i)
            elif span.activation == "linear":
                linear.append(i)
            elif span.activation == "softmax":
                by_width.setdefault(span.dim, []).append(i)
            else:
                raise ValueError(
                    f"Neural synthesizers need tanh/linear/softmax spans; got a "
                    f"{span.activation!r} span. Use numerical='mode', categorical='onehot'."
                )
            start += span.dim
        self.dim = start
        self.level_major = level_major
        self.spans = list(spans)
        self.n_tanh, self.n_linear = len(tanh), len(linear)
        # Permuted position of every column of every span, in the span's own column order.
        self._columns: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(spans)
        order = [starts[i] for i in tanh + linear]
        for pos, i in enumerate(tanh + linear):
            self._columns[i] = np.array([pos], dtype=np.int64)
        self.groups: list[tuple[int, int, int]] = []
        for width in sorted(by_width):
            members = by_width[width]
            first, count = len(order), len(members)
            self.groups.append((first, count, width))
            for j, i in enumerate(members):
                levels = np.arange(width)
                self._columns[i] = (
                    (first + levels * count + j) if level_major else (first + j * width + levels)
                )
            block = np.empty(count * width, dtype=np.int64)
            for i in members:
                block[self._columns[i] - first] = starts[i] + np.arange(width)
            order.extend(block.tolist())
        self.order = np.asarray(order, dtype=np.int64)
        self.inverse = np.argsort(self.order)

    @property
    def n_scalar(self) -> int:
        return self.n_tanh + self.n_linear

    def span_columns(self, index: int) -> np.ndarray:
        """Permuted positions of the columns of span ``index`` (level 0, 1, ... of a one-hot)."""
        return self._columns[index]

    def permuted_columns(self, span_indices: Sequence[int]) -> np.ndarray:
        """Permuted positions of every column of the given spans (in span order)."""
        cols = [self._columns[i] for i in span_indices]
        return np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)

    def block_view(
        self, piece: torch.Tensor, count: int, width: int, transposed: bool = False
    ) -> tuple[torch.Tensor, int]:
        """A one-hot block (``rows x count*width``, or its transpose) as a 3-D tensor, and the
        axis of its levels."""
        if transposed:
            n = piece.shape[1]
            if self.level_major:
                return piece.view(width, count, n), 0
            return piece.view(count, width, n), 1
        n = piece.shape[0]
        if self.level_major:
            return piece.reshape(n, width, count), 1
        return piece.reshape(n, count, width), 2

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[tanh part, linear part, block 1, block 2, ...]`` of ``(rows, permuted columns)``.

        One ``torch.split``: its gradient is a single concatenation, where slicing piece by
        piece would allocate and fill a full-width gradient for every piece.
        """
        sizes = [self.n_tanh, self.n_linear, *(c * w for _, c, w in self.groups)]
        return list(torch.split(x, sizes, dim=1))

    def blocks(
        self, x: torch.Tensor, *, transposed: bool = False
    ) -> list[tuple[torch.Tensor, int]]:
        """3-D views of the one-hot blocks of ``x`` and the axis of their levels.

        ``x`` is ``(rows, permuted columns)``, or ``(permuted columns, rows)`` when
        ``transposed``; views share its memory.
        """
        out = []
        for first, count, width in self.groups:
            end = first + count * width
            piece = x[first:end] if transposed else x[:, first:end]
            out.append(self.block_view(piece, count, width, transposed))
        return out


# --------------------------------------------------------------------------- activations
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


# --------------------------------------------------------------------------- losses
def reconstruction_loss(
    raw: torch.Tensor, target: torch.Tensor, layout: SpanLayout, sigma: torch.Tensor | None
) -> torch.Tensor:
    """Negative log-likelihood of ``target`` under the decoder output, summed over the batch.

    Scalars: Gaussian with a learned scale ``sigma`` per column (around ``tanh(raw)`` for tanh
    spans); one-hot groups: cross-entropy of the softmax, one ``log_softmax`` per width group.
    """
    s = layout.n_scalar
    n = raw.shape[0]
    pieces = layout.split(raw)
    loss = raw.new_zeros(())
    if s:
        pred = torch.tanh(pieces[0])
        if layout.n_linear:
            pred = torch.cat([pred, pieces[1]], dim=1)
        if sigma is None:
            loss = loss + ((target[:, :s] - pred) ** 2).sum() / 2
        else:
            loss = loss + (((target[:, :s] - pred) / sigma) ** 2).sum() / 2
            loss = loss + torch.log(sigma).sum() * n
    for (_, count, width), logits, (block, _) in zip(
        layout.groups, pieces[2:], layout.blocks(target), strict=True
    ):
        view, axis = layout.block_view(logits, count, width)
        loss = loss - (block * torch.log_softmax(view, dim=axis)).sum()
    return loss


def gaussian_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || prior)`` summed over all entries; prior N(0, I) by default."""
    if prior_mu is None or prior_logvar is None:
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return 0.5 * torch.sum(
        prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1
    )


class ChoiceLoss:
    """Cross-entropy of one chosen one-hot span per row (CTGAN's conditional-vector loss).

    Parameters
    ----------
    columns : sequence of int arrays
        Permuted positions of the levels of each candidate span.
    device : torch.device
    """

    def __init__(self, columns: Sequence[np.ndarray], device: torch.device) -> None:
        width = max((len(c) for c in columns), default=1)
        index = np.zeros((len(columns), width), dtype=np.int64)
        pad = np.ones((len(columns), width), dtype=bool)
        for j, cols in enumerate(columns):
            index[j, : len(cols)] = cols
            pad[j, : len(cols)] = False
        self.index = torch.as_tensor(index, device=device)
        self.pad = torch.as_tensor(pad, device=device)

    def __call__(self, raw: torch.Tensor, span: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Mean over rows of the cross-entropy of span ``span[i]`` against ``level[i]``."""
        logits = raw.gather(1, self.index[span]).masked_fill(self.pad[span], _PAD_LOGIT)
        return F.cross_entropy(logits, level)


# --------------------------------------------------------------------------- layers
class Residual(nn.Module):
    """``[relu(bn(linear(x))), x]``: the residual block of the CTGAN generator."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class ResidualGenerator(nn.Module):
    """Stack of :class:`Residual` blocks and a linear output (CTGAN's generator)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        blocks, dim = [], in_dim
        for h in hidden:
            blocks.append(Residual(dim, h))
            dim += h
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(dim, out_dim)
        #: Dtype of the training pass's matrix products (``training_precision``).
        self.matmul_dtype = torch.float32
        self._cast: dict[int, torch.Tensor] = {}  # weights in matmul_dtype, reused buffers

    def _cast_weight(self, weight: torch.Tensor) -> torch.Tensor:
        buf = self._cast.get(id(weight))
        if (
            buf is None
            or buf.shape != weight.shape
            or buf.dtype != self.matmul_dtype
            or buf.device != weight.device
        ):
            buf = self._cast[id(weight)] = torch.empty_like(weight, dtype=self.matmul_dtype)
        return buf.copy_(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fusable(x):
            return _ResidualTraining.apply(x, self, *self.parameters())
        return self.out(self.blocks(x))

    def _fusable(self, x: torch.Tensor) -> bool:
        """Training forward with a gradient to compute: the hand-written one can run."""
        return (
            self.training
            and torch.is_grad_enabled()
            and not x.requires_grad
            and not torch.is_autocast_enabled(x.device.type)
            and all(
                b.bn.track_running_stats and b.bn.momentum is not None and b.bn.affine
                for b in self.blocks
            )
        )

    def output_t(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inference: ``forward(cat(inputs))`` transposed, ``(out_features, rows)``.

        No concatenation: each block's input ``[h_k, ..., h_1, x]`` stays a list of pieces
        that the block's weight meets column slice by column slice, and batch normalization
        (running statistics, eval mode) is folded into the block's weights. At a million rows
        the concatenations would copy more bytes than the matrix products read.
        """
        pieces = list(inputs)
        for block in self.blocks:
            fc, bn = block.fc, block.bn
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            weight = fc.weight * scale.unsqueeze(1)
            h = ((fc.bias - bn.running_mean) * scale + bn.bias).expand(len(pieces[0]), -1)
            start = 0
            for piece in pieces:
                end = start + piece.shape[1]
                h = torch.addmm(h, piece, weight[:, start:end].T)
                start = end
            pieces.insert(0, h.relu_())
        out = self.out.bias.unsqueeze(1).expand(-1, len(pieces[0]))
        start = 0
        for piece in pieces:
            end = start + piece.shape[1]
            out = torch.addmm(out, self.out.weight[:, start:end], piece.T)
            start = end
        return out


class _ResidualTraining(torch.autograd.Function):
    """:class:`ResidualGenerator`'s training forward (batch statistics) and its backward.

    Forward: one buffer ``u`` holds the output layer's input ``[h_K, ..., h_1, x]``; each block
    reads its input as a column slice of it (``[h_{k-1}, ..., x]``) and writes ``h_k`` into
    its own slice, where the module's concatenations copy ``x`` and every ``h`` again at each
    block. Backward: the gradient of ``x`` (noise and condition, no gradient needed) is never
    formed, nor is any other gradient of ``x``'s columns: the output layer's and the blocks'
    input gradients stop at the hidden columns. Batch normalization and its running
    statistics go through the same ATen kernels as ``nn.BatchNorm1d``; the result equals the
    module's to float rounding (``tests/synthesizers/test_critic_step.py``).

    With ``net.matmul_dtype`` bfloat16, ``u`` and the weights (cast once per step) are
    bfloat16 for the products; batch normalization, gradients and outputs stay float32.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, net: ResidualGenerator, *params: torch.Tensor) -> Any:
        dt = net.matmul_dtype
        low = dt != x.dtype
        n, total = x.shape[0], net.out.in_features
        # Zeros, not empty: a product over a column slice of u may read (and multiply by 0)
        # the columns left of it, which must not hold NaN bit patterns (bfloat16 kernels do).
        u = torch.zeros(n, total, device=x.device, dtype=dt)
        start = total - x.shape[1]
        u[:, start:].copy_(x)
        weights = [net._cast_weight(b.fc.weight) if low else b.fc.weight for b in net.blocks]
        out_w = net._cast_weight(net.out.weight) if low else net.out.weight
        saved = []
        for block, w in zip(net.blocks, weights, strict=True):
            fc, bn = block.fc, block.bn
            if low:
                pre = torch.mm(u[:, start:], w.t()).float().add_(fc.bias)
            else:
                pre = torch.addmm(fc.bias, u[:, start:], w.t())
            y, mean, invstd = torch.ops.aten.native_batch_norm(
                pre, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, bn.momentum, bn.eps
            )
            bn.num_batches_tracked.add_(1)
            start -= fc.out_features
            h = u[:, start : start + fc.out_features]
            if low:
                h.copy_(y.clamp_min_(0.0))
            else:
                torch.clamp_min(y, 0.0, out=h)
            saved.append((pre, mean, invstd))
        ctx.net, ctx.u, ctx.saved, ctx.weights = net, u, saved, (weights, out_w)
        if low:
            return torch.mm(u, out_w.t()).float().add_(net.out.bias)
        return torch.addmm(net.out.bias, u, out_w.t())

    @staticmethod
    def backward(ctx: Any, d_raw: torch.Tensor) -> Any:
        net, u, saved = ctx.net, ctx.u, ctx.saved
        weights, out_w = ctx.weights
        low = u.dtype != d_raw.dtype

        def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.mm(a.to(u.dtype), b).float() if low else torch.mm(a, b)

        blocks = list(net.blocks)
        hidden = sum(b.fc.out_features for b in blocks)
        grads: dict[int, torch.Tensor] = {
            id(net.out.weight): mm(d_raw.t(), u),
            id(net.out.bias): d_raw.sum(0),
        }
        d_h = mm(d_raw, out_w[:, :hidden])  # [h_K, ..., h_1] only
        start = 0
        for k in range(len(blocks) - 1, -1, -1):
            fc, bn = blocks[k].fc, blocks[k].bn
            width = fc.out_features
            pre, mean, invstd = saved[k]
            d_y = torch.ops.aten.threshold_backward(
                d_h[:, start : start + width], u[:, start : start + width], 0.0
            )
            d_pre, d_gamma, d_beta = torch.ops.aten.native_batch_norm_backward(
                d_y,
                pre,
                bn.weight,
                bn.running_mean,
                bn.running_var,
                mean,
                invstd,
                True,
                bn.eps,
                [True, True, True],
            )
            grads[id(fc.weight)] = mm(d_pre.t(), u[:, start + width :])
            grads[id(fc.bias)] = d_pre.sum(0)
            grads[id(bn.weight)], grads[id(bn.bias)] = d_gamma, d_beta
            if start + width < hidden:  # into the earlier blocks' outputs
                w = weights[k][:, : hidden - start - width]
                if low:
                    d_h[:, start + width : hidden].add_(mm(d_pre, w))
                else:
                    d_h[:, start + width : hidden].addmm_(d_pre, w)
            start += width
        ctx.net = ctx.u = ctx.saved = ctx.weights = None
        return (None, None, *(grads.get(id(p)) for p in net.parameters()))


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear-ReLU stack ending in a linear layer."""
    layers: list[nn.Module] = []
    dim = in_dim
    for h in hidden:
        layers += [nn.Linear(dim, h), nn.ReLU()]
        dim = h
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class Critic(nn.Module):
    """Discriminator/critic over packs of ``pac`` rows (PacGAN), LeakyReLU and dropout.

    Dropout draws its masks from the generator passed to ``forward`` (``torch.nn.Dropout`` would
    use the global random state, which breaks reproducibility).
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], pac: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pac, self.in_dim, self.dropout = pac, in_dim, dropout
        dims = [in_dim * pac, *hidden]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.out = nn.Linear(dims[-1], 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = x.reshape(-1, self.pac * self.in_dim)
        if not self.hidden:
            return self.out(h)
        return self.head(self.hidden[0](h), generator)

    def head(self, pre: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The critic from its first layer's pre-activation ``pre`` on."""
        keep = 1.0 - self.dropout
        h = pre
        for i, layer in enumerate(self.hidden):
            h = F.leaky_relu(layer(h) if i else pre, 0.2)
            if self.training and self.dropout > 0:
                mask = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
                h = h * (mask < keep).to(h.dtype) / keep
        return self.out(h)


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    weight: float = 10.0,
    first: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad D(x_hat)|| - 1)^2]`` on interpolates of each pack.

    The critic is piecewise linear in its input (LeakyReLU, dropout, linear layers), so its
    input gradient is a product of matrices: ``w_out`` scaled by each layer's slopes (1 or
    0.2, times the dropout mask) and multiplied back through each weight. The slopes and masks
    come from a forward pass without a graph; the product is then built with autograd on the
    weights only. This is the penalty autograd's double backward computes (the same masks
    from the same random draws), without differentiating through the forward pass, whose
    contribution is zero almost everywhere.

    ``first``: the first layer's pre-activations of the real and the fake packs, when the
    caller has them. The first layer is affine, so an interpolate's pre-activation is the same
    interpolate of those: the largest product of the forward pass is not computed again.
    """
    pac = critic.pac
    packs, dim = real.shape[0] // pac, real.shape[1]
    alpha = torch.rand(packs, 1, 1, generator=generator, device=real.device, dtype=real.dtype)
    scales = []
    keep = 1.0 - critic.dropout
    with torch.no_grad():
        if first is None or not critic.hidden:
            mixed = alpha * real.reshape(packs, pac, dim) + (1 - alpha) * fake.reshape(
                packs, pac, dim
            )
            h = mixed.reshape(packs, pac * dim)
            pre = critic.hidden[0](h) if critic.hidden else h
        else:
            a = alpha.reshape(packs, 1).to(first[0].dtype)
            pre = torch.lerp(first[1], first[0], a)  # a * real + (1 - a) * fake
        for i, layer in enumerate(critic.hidden):
            if i:
                pre = layer(h)
            scale = torch.where(pre > 0, 1.0, 0.2).to(pre.dtype)
            h = F.leaky_relu(pre, 0.2)
            if critic.training and critic.dropout > 0:
                u = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
                mask = (u < keep).to(h.dtype) / keep
                h = h * mask
                scale = scale * mask
            scales.append(scale)
    grad = critic.out.weight.expand(packs, -1)
    for layer, scale in zip(reversed(critic.hidden), reversed(scales), strict=True):
        grad = (grad * scale) @ layer.weight
    norm = grad.norm(2, dim=1)
    return weight * ((norm - 1) ** 2).mean()


def critic_losses(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    penalty_weight: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[D(fake)] - E[D(real)], gradient penalty)`` for one critic update.

    Real and fake rows go through the critic in one pass: one large matrix product (and one
    weight gradient) instead of two small ones. The penalty reuses that pass's first-layer
    pre-activations for its interpolates (see :func:`gradient_penalty`).
    """
    packs = real.shape[0] // critic.pac
    if not critic.hidden:
        scores = critic(torch.cat([real, fake], dim=0), generator)
        first = None
    else:
        x = torch.cat([real, fake], dim=0).reshape(-1, critic.pac * critic.in_dim)
        pre = critic.hidden[0](x)
        scores = critic.head(pre, generator)
        first = (pre[:packs].detach(), pre[packs:].detach())
    loss = scores[packs:].mean() - scores[:packs].mean()
    return loss, gradient_penalty(critic, real, fake, generator, penalty_weight, first)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (block-diagonal encoders)."""

    def __init__(self, in_dim: int, out_dim: int, mask: np.ndarray) -> None:
        super().__init__(in_dim, out_dim)
        self._mask_values = np.asarray(mask, dtype=np.float32)
        self.register_buffer("mask", torch.as_tensor(self._mask_values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    def init_parameters(self, generator: torch.Generator) -> None:
        """Uniform init with the fan-in each output unit really has (its mask row)."""
        with torch.no_grad():
            self.mask.copy_(torch.as_tensor(self._mask_values))
            bound = 1.0 / torch.sqrt(self.mask.sum(dim=1, keepdim=True).clamp_min(1.0))
            self.weight.uniform_(-1.0, 1.0, generator=generator).mul_(bound)
            self.bias.uniform_(-1.0, 1.0, generator=generator).mul_(bound[:, 0])


# --------------------------------------------------------------------------- construction
def build_module(
    factory: Callable[[], nn.Module], generator: torch.Generator, device: torch.device
) -> nn.Module:
    """Build a module with weights drawn from ``generator`` (on the CPU, then moved).

    The module's own initialization runs inside ``fork_rng``, so building it leaves torch's
    global random state as it was; every parameter and buffer is then drawn from
    ``generator``, so the same seed gives the same weights on every device. (Building on the
    meta device would skip the throw-away initialization, a few milliseconds for these
    networks, but its first use imports sympy: 0.2-0.4 s of every process's first fit.)
    """
    with torch.random.fork_rng(devices=[]):
        module = factory()
    init_parameters(module, generator)
    return module.to(device)


def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Initialize every parameter and buffer of ``module`` from ``generator``.

    Linear layers get PyTorch's default distribution, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
    normalization layers their identity; a module with ``init_parameters(generator)``
    initializes its own (non-recursive) parameters and buffers.
    """
    done: set[int] = set()
    for m in module.modules():
        if hasattr(m, "init_parameters"):
            m.init_parameters(generator)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features) if m.in_features else 0.0
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(m, nn.BatchNorm1d | nn.LayerNorm):
            m.reset_parameters()
        else:
            continue
        done.update(id(p) for p in m.parameters(recurse=False))
    missing = [n for n, p in module.named_parameters() if id(p) not in done]
    if missing:
        raise TypeError(f"No initializer for parameters {missing}.")
