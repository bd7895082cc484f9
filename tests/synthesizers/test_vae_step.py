"""TVAE's hand-written training step against autograd."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from clinsynth import Metadata, TVAESynthesizer
from clinsynth.synthesizers.nn import FusedVAEStep, gaussian_kl, reconstruction_loss


@pytest.fixture(scope="module")
def fitted() -> tuple[TVAESynthesizer, torch.Tensor]:
    rng = np.random.default_rng(0)
    n = 300
    age = rng.normal(60, 12, n).round()
    df = pd.DataFrame(
        {
            "age": age,
            "bp": np.where(rng.random(n) < 0.1, np.nan, 80 + 0.5 * age + rng.normal(0, 5, n)),
            "sex": rng.choice(["F", "M"], n),
            "stage": rng.choice(["I", "II", "III", "IV", "V"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "smoker": rng.random(n) < 0.3,
        }
    )
    model = TVAESynthesizer(
        Metadata.detect_from_dataframe(df),
        epochs=2,
        batch_size=100,
        embedding_dim=8,
        compress_dims=(16, 12),
        decompress_dims=(12,),
        random_state=0,
    )
    model.fit(df)
    encoded = model._transformer_.transform(df, random_state=0)[:, model._layout_.order]
    return model, torch.as_tensor(np.ascontiguousarray(encoded), dtype=torch.float32)


def test_fused_step_matches_autograd(fitted) -> None:
    model, x = fitted
    x = x[:64]
    layout = model._layout_
    assert layout.n_scalar > 0 and len(layout.groups) > 1  # scalars and several block widths
    eps = torch.randn(len(x), model.embedding_dim, generator=torch.Generator().manual_seed(1))
    params = [*model.encoder_.parameters(), *model.decoder_.parameters()]
    with torch.no_grad():
        model.decoder_.sigma.uniform_(0.05, 0.5)  # unequal scales exercise their gradient

    # Autograd: the loss TVAESynthesizer._loss computes, with the same noise.
    for p in params:
        p.grad = None
    mu, logvar = model.encoder_(x).chunk(2, dim=1)
    z = mu + eps * torch.exp(0.5 * logvar)
    nll = reconstruction_loss(model.decoder_(z), x, layout, model.decoder_.sigma)
    expected_loss = (model.loss_factor * nll + gaussian_kl(mu, logvar)) / len(x)
    expected_loss.backward()
    expected = [p.grad.clone() for p in params]

    for p in params:
        p.grad = None
    step = FusedVAEStep(model.encoder_, model.decoder_.net, model.decoder_.sigma, layout, 2.0)
    loss = step(x, eps)
    assert float(loss) == pytest.approx(float(expected_loss.detach()), rel=1e-5)
    for p, want in zip(params, expected, strict=True):
        assert p.grad is not None and p.grad.shape == want.shape
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-6)


def test_fused_step_needs_plain_stacks() -> None:
    from torch import nn

    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert FusedVAEStep.supports(plain, plain)
    assert not FusedVAEStep.supports(
        nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), plain
    )
    assert not FusedVAEStep.supports(plain, nn.Linear(3, 2))


@pytest.mark.parametrize("far", [False, True])
def test_one_hot_loss_is_exact_when_spans_are_far_apart(fitted, far: bool) -> None:
    """A span whose logits all sit far below the row's largest (the one-pass softmax would
    floor them) still gets the exact softmax and cross-entropy."""
    model, x = fitted
    layout = model._layout_
    s = layout.n_scalar
    gen = torch.Generator().manual_seed(3)
    target = x[:32, s:]
    logits = torch.randn(target.shape, generator=gen) * 3
    if far:
        start, count, width = layout.groups[0]
        logits[:, start - s : start - s + count * width] -= 100.0
        logits[:, -1] += 30.0
    step = FusedVAEStep(model.encoder_, model.decoder_.net, model.decoder_.sigma, layout, 2.0)
    d_out = torch.empty_like(logits)
    nll = step._one_hot(logits, target, d_out, 0.5)

    leaf = logits.clone().requires_grad_(True)
    expected = logits.new_zeros(())
    for (block, axis), (t_block, _) in zip(
        layout.blocks(torch.cat([x[:32, :s], leaf], 1)), layout.blocks(x[:32]), strict=True
    ):
        expected = expected - (t_block * torch.log_softmax(block, dim=axis)).sum()
    expected.backward()
    assert float(nll) == pytest.approx(float(expected.detach()), rel=1e-5)
    torch.testing.assert_close(d_out, 0.5 * leaf.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dims", [((), ()), ((8,), ()), ((), (8, 6))])
def test_fused_step_without_hidden_layers_matches_autograd(dims) -> None:
    """Encoders/decoders with no hidden layer (``compress_dims=()``) take the same path."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=120),
            "c": rng.choice(["x", "y", "z"], 120),
            "d": rng.random(120) < 0.4,
        }
    )
    model = TVAESynthesizer(
        Metadata.detect_from_dataframe(df),
        epochs=1,
        batch_size=60,
        embedding_dim=4,
        compress_dims=dims[0],
        decompress_dims=dims[1],
        random_state=0,
    ).fit(df)
    encoded = model._transformer_.transform(df, random_state=0)[:, model._layout_.order]
    x = torch.as_tensor(np.ascontiguousarray(encoded), dtype=torch.float32)[:40]
    eps = torch.randn(len(x), 4, generator=torch.Generator().manual_seed(1))
    params = [*model.encoder_.parameters(), *model.decoder_.parameters()]
    for p in params:
        p.grad = None
    mu, logvar = model.encoder_(x).chunk(2, dim=1)
    z = mu + eps * torch.exp(0.5 * logvar)
    nll = reconstruction_loss(model.decoder_(z), x, model._layout_, model.decoder_.sigma)
    ((model.loss_factor * nll + gaussian_kl(mu, logvar)) / len(x)).backward()
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    FusedVAEStep(model.encoder_, model.decoder_.net, model.decoder_.sigma, model._layout_, 2.0)(
        x, eps
    )
    for p, want in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-6)
