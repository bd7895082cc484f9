"""DP-SGD: per-row gradients, clipping, noise, Poisson batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clinsynth.errors import ParameterError, PrivacyError
from clinsynth.privacy import DPSGD, functional, poisson_batch


def _net(seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


def _dp(net, noise=0.0, clip=1.0, rate=1.0, rows=8, chunk=3):
    return DPSGD(
        net,
        noise_multiplier=noise,
        max_grad_norm=clip,
        sample_rate=rate,
        num_rows=rows,
        generator=torch.Generator().manual_seed(1),
        chunk_size=chunk,
    )


def _row_loss(net):
    def loss(params, x, y):
        return ((functional(net, params, x) - y) ** 2).sum()

    return loss


def test_per_row_gradients_are_clipped_then_averaged():
    net = _net()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 3, generator=g), 5 * torch.randn(8, 1, generator=g)
    clip = 0.5
    expected = [torch.zeros_like(p) for p in net.parameters()]
    for i in range(8):  # the definition, one row at a time
        net.zero_grad()
        ((net(x[i : i + 1]) - y[i : i + 1]) ** 2).sum().backward()
        grads = [p.grad.clone() for p in net.parameters()]
        norm = torch.sqrt(sum((gr**2).sum() for gr in grads))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        for e, gr in zip(expected, grads, strict=True):
            e += factor * gr / 8
    dp = _dp(net, clip=clip)
    stats = dp.step(_row_loss(net), x, y)
    for p, e in zip(net.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-6)
    assert stats["clipped_share"] > 0  # the targets are large: most rows were clipped


def test_noise_has_the_calibrated_scale():
    net = nn.Linear(50, 40)
    dp = _dp(net, noise=2.0, clip=0.5, rate=0.1, rows=100)
    grads = dp.clip_and_noise([torch.zeros(0, 40, 50)])  # an empty Poisson batch: noise only
    # std of the noise on the mean: noise * clip / (rate * rows) = 2 * 0.5 / 10.
    assert float(grads[0].std()) == pytest.approx(0.1, rel=0.05)


def test_one_row_moves_the_sum_by_at_most_the_clipping_norm():
    per_row = [torch.randn(6, 4, 4) * 100, torch.randn(6, 4) * 100]
    dp = _dp(nn.Linear(4, 4), clip=1.0, rate=1.0, rows=1)
    with_all = dp.clip_and_noise(per_row)
    without = dp.clip_and_noise([g[1:] for g in per_row])
    diff = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(with_all, without, strict=True)))
    assert float(diff) <= 1.0 + 1e-5


def test_several_networks_are_clipped_together():
    enc, dec = nn.Linear(3, 2), nn.Linear(2, 3)
    dp = DPSGD(
        {"encoder": enc, "decoder": dec},
        noise_multiplier=0.0,
        max_grad_norm=1e-3,
        sample_rate=1.0,
        num_rows=4,
        generator=torch.Generator(),
    )

    def loss(params, x):
        z = functional(enc, params["encoder"], x)
        return ((functional(dec, params["decoder"], z) - x) ** 2).sum()

    dp.step(loss, torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 10)
    total = torch.sqrt(sum((p.grad**2).sum() for p in [*enc.parameters(), *dec.parameters()]))
    assert float(total) <= 1e-3 + 1e-7  # the joint gradient of each row has norm <= C


def test_poisson_batches_and_refusals():
    g = torch.Generator().manual_seed(0)
    sizes = [len(poisson_batch(1000, 0.05, g)) for _ in range(200)]
    assert sum(sizes) / 200 == pytest.approx(50, rel=0.05)
    assert len(set(sizes)) > 5  # sizes vary: Poisson sampling, not fixed batches
    with pytest.raises(PrivacyError, match="BatchNorm"):
        _dp(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    with pytest.raises(ParameterError, match="max_grad_norm"):
        _dp(nn.Linear(2, 2), clip=0.0)
