"""The WGAN-GP critic's update and its input gradient, with a hand-written backward pass.

The critic (:class:`~clinsynth.synthesizers.nn.Critic`: linear layers, LeakyReLU 0.2 and
dropout over packs of ``pac`` rows) is piecewise linear, so everything a GAN step asks of it is
a short chain of matrix products:

* the critic loss ``E[D(fake)] - E[D(real)]``: a forward pass over real and fake packs together,
  then ``dW = d^T h``, ``db = sum d``, ``d = (d W) * s`` back through the layers, where ``s`` is
  each layer's slope (1 or 0.2) times its dropout mask;
* the gradient penalty ``w * E[(||grad_x D(x_hat)|| - 1)^2]``: the input gradient of the critic
  at the interpolates is ``g = q_0 W_0`` with ``q_{L-1} = w_out * s_{L-1}`` and
  ``q_{l-1} = (q_l W_l) * s_{l-1}``; the interpolates' first layer is interpolated from the main
  pass (the layer is affine). Its gradient with respect to the weights follows the same chain
  backwards (the slopes are constant almost everywhere);
* the generator's gradient: ``-E[D(fake)]`` back to the fake rows, ``d = (d W) * s`` down to the
  input, no weight gradient.

The first layer (``pac * columns`` inputs: 4,290 x 256 on RHC with SDV's sizes) holds nearly all
the work. Its two weight gradients, the loss's (``d^T x`` over the real and fake packs) and the
penalty's (``q_0^T c g``), are one product over stacked rows: the packs and the scaled input
gradients share one buffer, written in place. Gradients go into buffers reused from step to
step. The dropout masks and interpolation weights are drawn from the generator in the order
the autograd version draws them (:func:`~clinsynth.synthesizers.nn.critic_losses`), so both give
the same numbers to float rounding (``tests/synthesizers/test_critic_step.py``).
Differential privacy (per-row gradients) and ``training_precision="bfloat16"`` (autocast) keep
the autograd path.
"""

from __future__ import annotations

import torch
from torch import nn

from clinsynth.synthesizers.nn._critic import Critic

#: LeakyReLU's slope below zero.
_LEAK = 0.2


def _grad(p: torch.Tensor) -> torch.Tensor:
    """The parameter's gradient buffer, reused from step to step."""
    if p.grad is None or p.grad.shape != p.shape:
        p.grad = torch.empty_like(p)
    return p.grad


class FusedCriticStep:
    """Critic update and generator input gradient of a WGAN-GP, without autograd.

    Parameters
    ----------
    critic : Critic
        With at least one hidden layer (see :meth:`supports`).
    penalty_weight : float
        Weight of the gradient penalty.
    matmul_dtype : torch.dtype
        Dtype of the matrix products' inputs (``torch.bfloat16`` for
        ``training_precision="bfloat16"``: weights cast once per call, the rows stored in
        it); slopes, losses and the gradient buffers the optimizer reads stay float32.
    """

    def __init__(
        self,
        critic: Critic,
        penalty_weight: float = 10.0,
        matmul_dtype: torch.dtype = torch.float32,
    ) -> None:
        if not self.supports(critic):
            raise ValueError("FusedCriticStep needs a Critic with hidden layers.")
        self.critic = critic
        self.penalty_weight = float(penalty_weight)
        self.matmul_dtype = matmul_dtype
        self._low = matmul_dtype != torch.float32
        self._buffers: dict[str, torch.Tensor] = {}
        self._w: list[torch.Tensor] = []

    @staticmethod
    def supports(critic: nn.Module) -> bool:
        return isinstance(critic, Critic) and len(critic.hidden) > 0

    def _buffer(
        self, name: str, shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.device != like.device or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(shape, device=like.device, dtype=dtype)
        return buf

    # ------------------------------------------------------------------ products
    def _cast_weights(self) -> None:
        """The hidden layers' weights in the matmul dtype (they change at every update), in
        buffers reused from call to call."""
        self._w = [
            self._buffer(f"w{i}", tuple(layer.weight.shape), layer.weight, self.matmul_dtype).copy_(
                layer.weight
            )
            for i, layer in enumerate(self.critic.hidden)
        ]

    def _weight(self, i: int) -> torch.Tensor:
        return self._w[i] if self._low else self.critic.hidden[i].weight

    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.matmul_dtype) if self._low else t

    def _mm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a @ b`` in float32 (inputs cast to the matmul dtype)."""
        if self._low:
            return torch.mm(self._cast(a), self._cast(b)).float()
        return torch.mm(a, b)

    def _mm_into(self, out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        if self._low:
            out.copy_(torch.mm(self._cast(a), self._cast(b)))
        else:
            torch.mm(a, b, out=out)

    def _linear(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Pre-activation of hidden layer ``i`` (float32)."""
        layer = self.critic.hidden[i]
        if self._low:
            return torch.mm(self._cast(h), self._w[i].t()).float().add_(layer.bias)
        return torch.addmm(layer.bias, h, layer.weight.t())

    def _slopes(self, pre: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """LeakyReLU's slope at ``pre`` times the dropout mask (drawn as ``Critic.head`` does)."""
        c = self.critic
        if c.training and c.dropout > 0:
            keep = 1.0 - c.dropout
            u = torch.rand(pre.shape, generator=generator, device=pre.device, dtype=pre.dtype)
            mask = u.lt_(keep).div_(keep)  # in place: 1/keep where kept, else 0
        else:
            mask = torch.ones_like(pre)
        # leaky_relu's backward of ``mask``: mask where pre > 0, 0.2 * mask elsewhere.
        return torch.ops.aten.leaky_relu_backward(mask, pre, _LEAK, False)

    def _pass(
        self, x: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """The critic on packs ``x`` (dropout masks drawn as ``Critic.head`` does):
        ``(scores, [x, h_1, ..., h_L], slopes of each layer, first layer's pre-activation)``."""
        inputs, slopes = [x], []
        first = None
        for i in range(len(self.critic.hidden)):
            pre = self._linear(i, inputs[-1])
            if i == 0:
                first = pre.clone()
            s = self._slopes(pre, generator)
            slopes.append(s)
            inputs.append(pre.mul_(s))
        out = self.critic.out
        scores = torch.addmm(out.bias, inputs[-1], out.weight.t())
        return scores, inputs, slopes, first

    # ------------------------------------------------------------------ critic update
    @torch.no_grad()
    def critic_step(
        self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set the ``.grad`` of every critic parameter for the loss
        ``E[D(fake)] - E[D(real)] + penalty``; return ``(that loss without the penalty,
        penalty)``. ``real`` and ``fake``: ``(rows, in_dim)``, rows a multiple of ``pac``."""
        c = self.critic
        layers = list(c.hidden)
        n_layers = len(layers)
        width = c.pac * c.in_dim
        packs = real.shape[0] // c.pac
        both = 2 * packs
        if self._low:
            self._cast_weights()
        # Rows [0, both): real then fake packs; rows [both, both + packs): the penalty's
        # scaled input gradients. One weight-gradient product for the first layer reads both.
        dt = self.matmul_dtype
        stacked = self._buffer("stacked", (both + packs, width), real, dt)
        stacked[:packs].view(-1, c.in_dim).copy_(real)
        stacked[packs:both].view(-1, c.in_dim).copy_(fake)
        x = stacked[:both]

        # Main pass. The first layer's pre-activations are kept for the interpolates.
        scores, inputs, slopes, first = self._pass(x, generator)
        h = inputs[-1]
        loss = scores[packs:].mean() - scores[:packs].mean()

        # Penalty: interpolates' slopes (first layer interpolated from the main pass).
        alpha = torch.rand(packs, 1, 1, generator=generator, device=x.device, dtype=first.dtype)
        pre = torch.lerp(first[packs:], first[:packs], alpha.reshape(packs, 1))
        t_slopes = []
        for i in range(n_layers):
            if i:  # pre holds the previous layer's output
                pre = self._linear(i, pre)
            t = self._slopes(pre, generator)
            t_slopes.append(t)
            if i < n_layers - 1:
                pre.mul_(t)
        # Input gradient: q_{L-1} = w_out * t_{L-1}, q_{l-1} = (q_l W_l) * t_{l-1}, g = q_0 W_0.
        h0 = layers[0].out_features
        dpq = self._buffer("dpq", (both + packs, h0), real, dt)  # [main d of layer 0; q_0]
        q = [None] * n_layers
        q[-1] = c.out.weight * t_slopes[-1]
        for i in range(n_layers - 1, 0, -1):
            q[i - 1] = self._mm(q[i], self._weight(i)).mul_(t_slopes[i - 1])
        q0 = dpq[both:]
        q0.copy_(q[0])
        g = stacked[both:]
        torch.mm(q0, self._weight(0), out=g)
        norm = g.float().norm(2, dim=1) if self._low else g.norm(2, dim=1)
        penalty = self.penalty_weight * (norm - 1).square().mean()
        # d penalty / d g = 2 w (|g| - 1) / |g| * g / packs (0 where |g| = 0, as autograd).
        coef = (norm - 1).div_(norm).nan_to_num_(0.0, 0.0, 0.0)
        coef.mul_(2 * self.penalty_weight / packs)
        g.mul_(coef.unsqueeze(1).to(g.dtype))  # now the gradient of the penalty in g

        # Backward of the loss: d scores = -1/packs (real), +1/packs (fake).
        sign = torch.full((both, 1), 1.0 / packs, device=x.device, dtype=h.dtype)
        sign[:packs] = -1.0 / packs
        out_w = _grad(c.out.weight)
        torch.mm(sign.t(), h, out=out_w)
        _grad(c.out.bias).zero_()
        d = sign * c.out.weight
        for i in range(n_layers - 1, -1, -1):
            layer = layers[i]
            if i == 0:
                d = d.mul_(slopes[0])
                dpq[:both].copy_(d)
                torch.sum(d, dim=0, out=_grad(layer.bias))
                break
            d = d.mul_(slopes[i])
            self._mm_into(_grad(layer.weight), d.t(), inputs[i])
            torch.sum(d, dim=0, out=_grad(layer.bias))
            d = self._mm(d, self._weight(i))
        # The first layer's weight gradient: loss and penalty in one product (bfloat16
        # kernels want the small factor contiguous).
        self._mm_into(
            _grad(layers[0].weight), dpq.t().contiguous() if self._low else dpq.t(), stacked
        )

        # Backward of the penalty through the weights (biases do not enter it).
        dq = self._mm(g, self._weight(0).t())  # d q_0
        for i in range(1, n_layers):
            dg = dq.mul_(t_slopes[i - 1])  # d (q_i W_i)
            if self._low:
                layers[i].weight.grad.add_(self._mm(q[i].t(), dg))
            else:
                layers[i].weight.grad.addmm_(q[i].t(), dg)
            dq = self._mm(dg, self._weight(i).t())  # d q_i
        out_w.add_((dq * t_slopes[-1]).sum(dim=0, keepdim=True))
        self._w = []
        return loss.detach(), penalty.detach()

    # ------------------------------------------------------------------ generator
    @torch.no_grad()
    def generator_grad(
        self, fake: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(-E[D(fake)], its gradient with respect to fake)`` (no weight gradient)."""
        c = self.critic
        layers = list(c.hidden)
        if self._low:
            self._cast_weights()
        x = fake.detach().reshape(-1, c.pac * c.in_dim)
        packs = x.shape[0]
        scores, _, slopes, _ = self._pass(x, generator)
        d = c.out.weight.expand(packs, -1) * (-1.0 / packs)
        for i in range(len(layers) - 1, -1, -1):
            d = self._mm(d * slopes[i], self._weight(i))
        self._w = []
        return -scores.mean(), d.view_as(fake)
