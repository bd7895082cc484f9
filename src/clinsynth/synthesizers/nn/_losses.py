"""Losses over the spans of an encoded table: reconstruction, the Gaussian KL of the VAEs and
the choice loss of a conditional vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from clinsynth.synthesizers.nn._spans import _PAD_LOGIT, SpanLayout


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
