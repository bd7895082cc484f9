"""Conditions on models that generate from Gaussian noise (TVAE, HVAE-GAN, CTGAN), by
sampling-importance-resampling in the model's own noise space.

A sampled row is a function of standard normal noise: the network's input ``z`` and the output
noise (the jitter of every scalar and, through ``u = Phi(g)``, the uniform that draws every one-hot
group from its softmax). All of it is the model's noise space ``p = N(0, I)``: the output noise
matters as much as ``z`` (a barely trained decoder meets "age >= 80" through the jitter and the
mixture component it draws, not through ``z``). The rows meeting a rare condition come from a
small region of that space, so plain rejection wastes almost every draw. Here the accepted noise
of each round fits a proposal ``q`` (a Gaussian that differs from ``N(0, I)`` only where the
accepted noise does: its mean and a few directions of its covariance, mixed with ``N(0, I)``
itself so the weights stay bounded); the next round draws from ``q`` and weighs every accepted
row by ``p(z) / q(z)``. A weighted accepted row then follows ``p(z) [row meets the condition]``:
the model's own conditional distribution.

The ``num_rows`` output rows are then chosen without replacement with inclusion probabilities
``min(1, w / M)`` (systematic sampling, summing to ``num_rows``): no row is repeated, and the only
distortion is the weight mass above ``M``, kept below ``TRUNCATION`` (2%) of the total before the
rows are chosen (more rounds are drawn until it is). A round that accepts nothing from ``N(0, I)``
only makes the next one larger, as rejection does.

Only the model is used: no training row is read or kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from clinsynth._utils import derive_seed
from clinsynth.synthesizers._conditioning import ConditionedRows
from clinsynth.synthesizers._conditions import draw_budget, mask_for
from clinsynth.synthesizers.nn._activations import sample_rows_t

if TYPE_CHECKING:
    from clinsynth.synthesizers._deep import DeepSynthesizer

logger = logging.getLogger(__name__)

#: Largest share of the importance-weight mass that the final choice may cut off.
TRUNCATION = 0.02
#: Share of the proposal's draws taken from ``N(0, I)`` itself (bounds the weights by 1/0.1).
DEFENSIVE = 0.1
#: Accepted draws needed before a proposal is fitted to them.
MIN_FIT = 10
#: Share of a round's rows, closest to the condition, that guide the proposal while too few
#: rows meet it (the cross-entropy method for rare events).
ELITE = 0.02
#: Variance inflation of the fitted proposal where it is narrower than N(0, 1): the tails of
#: the target must not be under-sampled (they would get the heaviest weights).
WIDEN = 1.5
#: Rows drawn per round: at least, and at most.
MIN_BATCH, MAX_BATCH = 1_000, 500_000

#: ``decode(z, generator)``: the network's raw output (transposed, permuted span order: what
#: ``_generate`` hands to ``sample_rows_t``) for the input noise rows ``z``; ``generator`` serves
#: any other draw the model makes on the way (CTGAN's conditional vector).
Decode = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: Largest float32 below 1: a uniform must stay below 1 to pick a level (see sample_rows_t).
_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))


class NoiseProposal:
    """``q(z) = a N(0, I) + (1 - a) N(mean, diag(scale^2))``, ``mean`` sparse.

    A condition depends on few coordinates of the noise (the jitter and the level draws of its
    own columns, a few inputs of the network) and on the rest little, so ``q`` moves only the
    coordinates where the accepted noise differs clearly from ``N(0, 1)``; on the others it is
    ``N(0, 1)`` exactly and they add nothing to the variance of the weights. (Full or low-rank
    covariances and mixtures were tried: fitted to the few hundred rows of the first rounds
    they over-fit and made the weights far worse.)

    Parameters
    ----------
    dim : int
    mean, scale : arrays ``(dim,)``, optional
        Zeros and ones (``q`` is ``N(0, I)``) when omitted.
    defensive : float
        ``a``.
    """

    def __init__(
        self,
        dim: int,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        defensive: float = DEFENSIVE,
    ) -> None:
        self.dim = dim
        self.mean = np.zeros(dim) if mean is None else mean
        self.scale = np.ones(dim) if scale is None else scale
        self.defensive = defensive
        self.coords = np.flatnonzero((self.mean != 0) | (self.scale != 1))

    @property
    def is_prior(self) -> bool:
        return len(self.coords) == 0

    @classmethod
    def fit(cls, z: np.ndarray, weights: np.ndarray, defensive: float = DEFENSIVE) -> NoiseProposal:
        """Fit ``q`` to weighted accepted noise: each coordinate's mean and log-variance are
        soft-thresholded at the universal threshold ``sqrt(2 log(dim) / n)`` of their
        standard errors (a sparse estimate: pure noise rarely passes it), and variances below
        1 are widened by ``WIDEN`` so that the tails of the target are not under-sampled."""
        z = np.asarray(z, dtype=np.float64)
        dim = z.shape[1]
        w = weights / weights.sum()
        n_eff = 1.0 / float(np.sum(w**2))
        threshold = np.sqrt(2.0 * np.log(max(dim, 2)) / n_eff)
        raw_mean = w @ z
        mean = np.sign(raw_mean) * np.maximum(np.abs(raw_mean) - threshold, 0.0)
        log_var = np.log(np.maximum(w @ (z - raw_mean) ** 2, 1e-6))
        # The standard error of a log-variance is about sqrt(2 / n).
        log_var = np.sign(log_var) * np.maximum(np.abs(log_var) - np.sqrt(2) * threshold, 0.0)
        # A shift spread thinly over many coordinates (the network's input, when the condition
        # depends on it along some direction) passes no coordinate's threshold; kept as a
        # whole, shrunk (positive-part James-Stein), when its length is significant.
        rest = np.flatnonzero(mean == 0)
        stat = n_eff * float(raw_mean[rest] @ raw_mean[rest])
        if len(rest) > 2 and stat > len(rest) + 3 * np.sqrt(2 * len(rest)):
            mean[rest] = raw_mean[rest] * (1 - (len(rest) - 2) / stat)
        log_var = np.where(log_var < 0, np.minimum(log_var + np.log(WIDEN), 0.0), log_var)
        scale = np.exp(0.5 * np.clip(log_var, np.log(0.01), np.log(4.0)))
        return cls(dim, mean, scale, defensive)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.dim), dtype=np.float32)
        if self.is_prior:
            return z
        rows = np.flatnonzero(rng.random(n) >= self.defensive)
        c = self.coords
        z[np.ix_(rows, c)] = self.mean[c] + self.scale[c] * z[np.ix_(rows, c)]
        return z

    def log_weight(self, z: np.ndarray) -> np.ndarray:
        """``log p(z) - log q(z)``: only the moved coordinates count, the others cancel."""
        if self.is_prior:
            return np.zeros(len(z))
        c = self.coords
        x = z[:, c].astype(np.float64)
        log_p = -0.5 * np.einsum("ij,ij->i", x, x)
        u = (x - self.mean[c]) / self.scale[c]
        log_g = -0.5 * np.einsum("ij,ij->i", u, u) - float(np.log(self.scale[c]).sum())
        log_q = np.logaddexp(np.log(self.defensive) + log_p, np.log1p(-self.defensive) + log_g)
        return log_p - log_q


def _sorted(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights from the largest, their order, and ``tail[k]``: the sum of all but the k largest."""
    order = np.argsort(-weights, kind="stable")
    ws = weights[order]
    return ws, order, float(ws.sum()) - np.concatenate([[0.0], np.cumsum(ws)])


def _cap(ws: np.ndarray, tail: np.ndarray, n: int) -> tuple[float, float]:
    """The cap ``M`` at which ``sum min(1, w / M) = n``, and the share of the mass above it."""
    k = np.arange(min(n, len(ws)))
    caps = tail[k] / (n - k)
    fits = ws[k] <= caps * (1 + 1e-12)
    capped = int(np.argmax(fits)) if fits.any() else len(k)
    cap = float(caps[capped]) if capped < len(k) else float(ws[n - 1])
    cut = float(ws[:capped].sum() - capped * cap) / float(tail[0])
    return cap, max(cut, 0.0)


def inclusion(weights: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """Inclusion probabilities ``min(1, w / M)`` summing to ``n`` and the share of the weight
    mass above ``M`` (what choosing ``n`` rows cuts off). Needs ``n <= len(weights)``."""
    if n <= 0 or float(weights.sum()) <= 0:
        return np.zeros(len(weights)), 0.0
    ws, order, tail = _sorted(weights)
    cap, cut = _cap(ws, tail, n)
    probabilities = np.empty(len(weights))
    probabilities[order] = np.minimum(1.0, ws / cap)
    return probabilities, cut


def capacity(weights: np.ndarray, truncation: float = TRUNCATION) -> int:
    """The most rows that can be chosen from the pool while cutting off at most ``truncation``
    of its weight mass."""
    if len(weights) == 0 or float(weights.sum()) <= 0:
        return 0
    ws, _, tail = _sorted(weights)
    low, high = 0, len(weights)
    while low < high:  # the cut grows with the number of rows chosen
        mid = (low + high + 1) // 2
        if _cap(ws, tail, mid)[1] <= truncation:
            low = mid
        else:
            high = mid - 1
    return low


def choose(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct indices, index ``i`` with probability ``min(1, w_i / M)`` (systematic
    sampling over a random order)."""
    probabilities, _ = inclusion(weights, n)
    order = rng.permutation(len(weights))
    cum = np.cumsum(probabilities[order])
    start = rng.random()
    hits = np.floor(cum - start + 1.0) > np.floor(np.concatenate([[0.0], cum[:-1]]) - start + 1.0)
    chosen = order[hits]
    if len(chosen) < n:  # rounding: top up with the most likely rows left out
        left = order[~hits]
        chosen = np.concatenate(
            [chosen, left[np.argsort(-probabilities[left], kind="stable")[: n - len(chosen)]]]
        )
    return chosen[:n]


class OutputNoise:
    """Where the output noise of a model sits in its noise vector, and how it is applied.

    The row of noise is ``[input noise | scalar jitter (if sigma) | one Gaussian per one-hot
    span]``, the spans in the order of the layout's blocks (as ``sample_rows_t`` draws them).
    """

    def __init__(self, layout: Any, input_dim: int, sigma: torch.Tensor | None) -> None:
        self.layout, self.input_dim, self.sigma = layout, input_dim, sigma
        self.n_jitter = layout.n_scalar if sigma is not None else 0
        self.counts = [count for _, count, _ in layout.groups]
        self.dim = input_dim + self.n_jitter + sum(self.counts)

    def uniform_shapes(self, n: int) -> list[tuple[int, ...]]:
        """Shape of each block's uniforms, as ``sample_rows_t`` draws them."""
        shapes = []
        for _, count, width in self.layout.groups:
            block, axis = self.layout.block_view(
                torch.empty(count * width, n), count, width, transposed=True
            )
            shapes.append(tuple(block.narrow(axis, width - 1, 1).shape))
        return shapes

    def apply(
        self, raw_t: torch.Tensor, jitter_t: torch.Tensor | None, uniforms: list[torch.Tensor]
    ) -> torch.Tensor:
        """``sample_rows_t`` with given noise: ``jitter_t`` ``(scalars, rows)`` and one uniform
        tensor per block (any shape holding ``(spans, rows)`` in order)."""
        return sample_rows_t(
            raw_t,
            self.layout,
            None,
            self.sigma if self.n_jitter else None,
            jitter_t=jitter_t,
            uniforms=uniforms,
        )

    def rows(self, noise: torch.Tensor, decode: Decode, generator: torch.Generator) -> torch.Tensor:
        """Sampled rows (transposed, permuted) for noise rows ``(rows, dim)``."""
        raw_t = decode(noise[:, : self.input_dim], generator)
        start = self.input_dim + self.n_jitter
        jitter_t = noise[:, self.input_dim : start].T if self.n_jitter else None
        uniforms = []
        for count in self.counts:
            g = noise[:, start : start + count].T
            uniforms.append(torch.special.ndtr(g).clamp_(0.0, _BELOW_ONE))
            start += count
        return self.apply(raw_t, jitter_t, uniforms)


def decode_noise(
    model: DeepSynthesizer,
    z: np.ndarray,
    decode: Decode,
    output: OutputNoise,
    generator: torch.Generator,
) -> np.ndarray:
    """Encoded rows (transformer column order) for noise rows ``z``, like ``_generate_encoded``."""
    device = model._torch_device()
    out_t = torch.empty((model._layout_.dim, len(z)), dtype=torch.float32)
    order = torch.as_tensor(model._layout_.order)
    for net in model._networks().values():
        net.eval()
    step = model._sample_batch_size
    with torch.inference_mode():
        for start in range(0, len(z), step):
            chunk = torch.as_tensor(z[start : start + step], dtype=torch.float32, device=device)
            rows_t = output.rows(chunk, decode, generator).float().cpu()
            # Row j of the permuted space is column order[j] of the transformer's layout.
            out_t[:, start : start + len(chunk)].index_copy_(0, order, rows_t)
    return out_t.numpy().T


def decode_matches_sampling(
    model: DeepSynthesizer,
    decode: Decode,
    output: OutputNoise,
    noise_dims: Sequence[int],
    reference: Callable[[int, torch.Generator], torch.Tensor],
) -> bool:
    """Whether sampling from given noise reproduces the model's own sampling.

    The check replays one random stream: ``reference(n, g)`` (the model's ``_generate``) draws
    its input noise blocks first, in ``noise_dims`` order, then (in ``sample_rows_t``) the
    scalar jitter and the uniforms of the one-hot blocks.
    """
    device, n = model._torch_device(), 64
    for net in model._networks().values():
        net.eval()
    with torch.inference_mode():
        g = torch.Generator(device=device).manual_seed(20_241_124)
        z = torch.cat([torch.randn(n, d, generator=g, device=device) for d in noise_dims], 1)
        raw_t = decode(z, g)
        jitter = (
            torch.randn(output.n_jitter, n, generator=g, device=device) if output.n_jitter else None
        )
        uniforms = [
            torch.rand(shape, generator=g, device=device) for shape in output.uniform_shapes(n)
        ]
        mine = output.apply(raw_t, jitter, uniforms)
        theirs = reference(n, torch.Generator(device=device).manual_seed(20_241_124))
    return mine.shape == theirs.shape and bool(torch.allclose(mine, theirs, atol=1e-5))


def distance(
    df: pd.DataFrame, parsed: dict[str, Any], valid: np.ndarray, model: Any = None
) -> np.ndarray:
    """How far each row is from meeting the condition: 1 per missed level, a broken rule or a
    missing value, and a range missed by ``d`` standard deviations (of this batch) adds ``d``."""
    out = (~valid).astype(np.float64)
    for column, cond in parsed.items():
        met = mask_for(df, {column: cond}, model)
        values = df[column]
        if cond[0] != "range" or (
            not pd.api.types.is_numeric_dtype(values)
            and not pd.api.types.is_datetime64_any_dtype(values)
        ):
            out += ~met
            continue
        x = (
            values.to_numpy(dtype=np.float64, na_value=np.nan)
            if pd.api.types.is_numeric_dtype(values)
            else values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        )
        missing = np.isnan(x) | (values.isna().to_numpy())
        spread = float(np.nanstd(x)) or 1.0
        gap = np.zeros(len(x))
        _, low, high = cond
        as_number = (
            (lambda v: pd.Timestamp(v).value)
            if not pd.api.types.is_numeric_dtype(values)
            else float
        )
        if low is not None:
            gap = np.maximum(gap, as_number(low) - x)
        if high is not None:
            gap = np.maximum(gap, x - as_number(high))
        out += np.where(missing, 5.0, np.where(met, 0.0, np.maximum(gap, 0) / spread))
    return out


def sample_in_noise_space(
    model: DeepSynthesizer,
    num_rows: int,
    parsed: dict[str, Any],
    rng: np.random.Generator,
    *,
    noise_dims: Sequence[int],
    decode: Decode,
    reference: Callable[[int, torch.Generator], torch.Tensor],
    sigma: torch.Tensor | None = None,
    max_rounds: int = 100,
) -> ConditionedRows | None:
    """Up to ``num_rows`` decoded rows meeting ``parsed`` and the model's rules, following the
    model's conditional distribution (importance resampling in its noise space).

    Parameters
    ----------
    model : DeepSynthesizer
    num_rows : int
    parsed : dict
        Conditions as :func:`~clinsynth.synthesizers._conditions.parse_conditions` gives them.
    rng : numpy Generator
        The sampling stream (the noise, the choice, the seed of the output noise).
    noise_dims : sequence of int
        Sizes of the standard-normal input noise blocks the model draws per row, in drawing
        order.
    decode : callable
        ``decode(z, generator)``: the network's raw output for given input noise.
    reference : callable
        ``reference(n, generator)``: the model's own sampling, against which ``decode`` is
        checked; when they differ (the model changed) the result is None, so the caller falls
        back to rejection rather than to a wrong distribution.
    sigma : tensor, optional
        The learned scale of the scalar jitter (VAE decoders); None when there is none.
    max_rounds : int
        Most rounds of drawing, decoding and reweighting.
    """
    output = OutputNoise(model._layout_, int(sum(noise_dims)), sigma)
    if not decode_matches_sampling(model, decode, output, noise_dims, reference):
        logger.warning(
            "%s: sampling from given noise does not reproduce the model's sampling; "
            "conditions fall back to rejection.",
            type(model).__name__,
        )
        return None
    dim = output.dim
    generator = torch.Generator(device=model._torch_device()).manual_seed(derive_seed(rng))
    proposal = NoiseProposal(dim)
    # Every proposal used, with its number of draws; the weights of all accepted rows follow the
    # balance heuristic (multiple importance sampling): w = p / sum_r (n_r / N) q_r, as if all
    # draws came from the mixture of the proposals. Plain per-round weights p / q_r would leave
    # the few rows accepted from N(0, I) in the first rounds with weights far above the rest.
    proposals: list[NoiseProposal] = []
    counts: list[int] = []
    log_q_over_p: list[np.ndarray] = []  # per proposal: log q_r - log p at every accepted row
    frames: list[pd.DataFrame] = []
    accepted = np.zeros((0, dim), dtype=np.float64)
    draws = rounds = fitted_on = 0
    batch, weights, ready = max(int(1.25 * num_rows), MIN_BATCH), np.zeros(0), 0
    budget = draw_budget(num_rows)  # a condition too rare for the model: give up, say so
    while rounds < max_rounds and draws < budget:
        rounds += 1
        batch = max(1, min(batch, budget - draws))
        z = proposal.draw(batch, rng)
        df = model._decode(decode_noise(model, z, decode, output, generator), rng)
        valid = model._valid(df)
        ok = mask_for(df, parsed, model) & valid
        draws += batch
        frames.append(df[ok])
        new = z[ok]
        if not proposals or proposals[-1] is not proposal:
            proposals.append(proposal)
            counts.append(0)
            log_q_over_p.append(-proposal.log_weight(accepted))
        counts[-1] += batch
        log_q_over_p = [
            np.concatenate([lq, -q.log_weight(new)])
            for lq, q in zip(log_q_over_p, proposals, strict=True)
        ]
        accepted = np.concatenate([accepted, new.astype(np.float64)])
        if len(accepted):
            share = np.log(np.asarray(counts, dtype=np.float64) / draws)[:, None]
            log_w = -np.logaddexp.reduce(np.stack(log_q_over_p) + share, axis=0)
            weights = np.exp(log_w - log_w.max())
        before, ready = ready, capacity(weights) if len(accepted) else 0
        logger.debug(
            "round %d: %d of %d draws accepted (%d in all), %d rows ready",
            rounds,
            len(new),
            batch,
            len(accepted),
            ready,
        )
        if ready >= num_rows:
            break
        # Usable rows per draw in this round.
        rate = max(ready - before, 0) / batch
        if len(accepted) >= MIN_FIT:
            if len(accepted) >= 2 * fitted_on:  # refit as the pool doubles
                proposal, fitted_on = NoiseProposal.fit(accepted, weights), len(accepted)
        else:
            # Too few rows meet the condition to fit to: fit to the rows of this round that
            # come closest to it (weighted by p/q), and move on from there.
            elite = np.argsort(distance(df, parsed, valid, model), kind="stable")[
                : max(MIN_FIT, int(ELITE * batch))
            ]
            proposal = NoiseProposal.fit(z[elite], np.exp(proposal.log_weight(z[elite])))
        wanted = (num_rows - ready) / rate * 1.3 if rate else 10 * batch
        # A new proposal is first tried on a batch of moderate size.
        largest = MAX_BATCH if proposal is proposals[-1] else max(2 * num_rows, MIN_BATCH)
        batch = int(np.clip(wanted, MIN_BATCH, min(largest, 10 * batch)))
    if len(accepted) == 0:
        rows = df.iloc[:0]
    else:
        pool = pd.concat(frames, ignore_index=True)
        n = min(num_rows, capacity(weights))
        rows = pool.iloc[choose(weights, n, rng)].reset_index(drop=True)
    return ConditionedRows(
        rows=rows, draws=draws, rounds=rounds, method="importance resampling in the noise space"
    )
