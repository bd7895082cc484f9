"""Torch layers of the deep synthesizers: residual blocks, the residual generator (its training
forward and backward fused), MLPs, masked linear layers, and a module built and initialized on
a device from a local generator. The span layout is in ``_spans``, the activations in
``_activations``, the losses in ``_losses`` and the critic in ``_critic``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Kept importable here for the tests that reach it by its old place.
from clinsynth.synthesizers.nn._activations import _activate  # noqa: F401


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
