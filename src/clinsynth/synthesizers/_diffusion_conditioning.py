"""Rare conditions on TabDDPM: splitting the reverse diffusion at an intermediate step.

A row of TabDDPM is the end of a Markov chain ``x_T -> ... -> x_s -> ... -> x_0`` (the reverse
process, with the class label fixed by an equality on ``condition_column``). For a condition
``A`` on the other columns (a range on ``age``, a level of another column), the rows the model
should give are ``p(x_0 | A)``. Plain rejection draws whole chains and keeps the few that end in
``A``. Splitting (one level of multilevel splitting for rare events) reuses the chains that did:

1. **Pilot.** Ordinary draws; each row's state ``x_s`` at the split step ``s`` is kept. The rows
   that meet ``A`` (and every rule) are output rows, and their states are a sample of
   ``p(x_s | A)``: the states from which the model reaches the condition. The pilot aims at one
   such state per ``SIBLINGS`` rows asked for (``PILOT_MIN_ROWS`` to ``PILOT_ROWS``; past
   ``PILOT_MAX_DRAWS`` draws it stops once it has ``PILOT_MIN_ROWS``).
2. **Branches.** From each such state, the rest of the chain (steps ``s`` to ``0``, fresh noise)
   is run again until it has given ``c`` rows meeting ``A``, the same ``c`` for every state;
   branches that miss ``A`` are dropped. A kept branch follows ``p(x_0 | x_s, A)``, and since
   every state contributes the same number of rows, the state of a kept row follows
   ``p(x_s | A)``: each row follows ``p(x_s, x_0 | A)``, exactly the model's conditional
   distribution (rows that share a state are dependent, as siblings, but each one is
   distributed exactly). Taking ``c`` rows from every state, not as many as a state happens to
   give, is what keeps it exact: states from which ``A`` is easy would otherwise be
   over-represented.
3. **The hardest states.** A state from which ``A`` has probability ``f`` costs ``c / f``
   branches, so the few hardest states would take most of the draws. The rounds stop once the
   quotas still unmet are at most ``CAPPED_SHARE`` of all quotas, and those rows are taken from
   the rows other states gave beyond their quota: at most that share of rows is distorted.
4. Every row is checked against the condition and the rules, and a random subset of
   ``num_rows`` of the pilot's and the branches' rows is returned.

The split step is the most noisy sampling step whose signal share ``a_s`` is at least the
model's ``condition_split`` (default 0.8). A branch runs only
the steps after it (a fifth of a draw there) and meets the condition far more often than a
fresh chain; the noise still to come is what sets siblings apart, so an earlier split gives
more independent rows for more draws (the trade-off is measured in docs/CONDITIONS.md). When
at least ``SPLIT_BELOW`` of the pilot's rows meet the condition, plain rejection goes on instead
(it is then cheap, and its rows are independent).

An alternative, inpainting the condition columns (RePaint's replacement: the known value,
forward-noised, overwrites those columns at every reverse step), was measured first on the
benchmark's cohort (10k rows, ``condition == heart_disease`` and ``age >= 81``): it is fast but
not the model's conditional distribution, because the denoiser sees the known value only
through the noise of each step: eGFR, which falls with age, came out at a mean of 60.6 against
54.4 by rejection from the same model (KS 0.17), still 57.3 with three resampling passes per
step; splitting gives the same rows as rejection in distribution (docs/CONDITIONS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from clinsynth.synthesizers._conditioning import ConditionedRows
from clinsynth.synthesizers._conditions import draw_budget, mask_for

if TYPE_CHECKING:
    from clinsynth.synthesizers._tabddpm import TabDDPMSynthesizer

#: The pilot aims at one row meeting the condition (a state to branch from) for every
#: ``SIBLINGS`` rows asked for, at most ``PILOT_ROWS`` ...
SIBLINGS = 10
PILOT_ROWS = 500
#: ... or stops at this many draws when it has at least ``PILOT_MIN_ROWS`` of them.
PILOT_MAX_DRAWS = 50_000
PILOT_MIN_ROWS = 20
#: Rows of the first pilot round, before the acceptance rate is known.
FIRST_PILOT_ROWS = 10_000
#: Splitting is used when fewer than this share of the pilot's rows meet the condition; above
#: it, plain rejection (independent rows) costs at most ``1 / SPLIT_BELOW`` draws per row.
SPLIT_BELOW = 0.5
#: Branch rounds stop when the quotas still unmet are at most this share of all quotas.
CAPPED_SHARE = 0.02
#: Most rows drawn in one round (memory).
MAX_BATCH_ROWS = 2_000_000


class Branches:
    """States at the split step, handed to the sampler chunk by chunk (in order)."""

    def __init__(self, states: torch.Tensor, step: int) -> None:
        self.states, self.step, self._next = states, step, 0

    def take(self, n: int) -> tuple[torch.Tensor, int]:
        """The next ``n`` states and their step, as ``TabularDiffusion.sample(start=...)``."""
        rows = self.states[self._next : self._next + n]
        self._next += n
        return rows, self.step


def sample_by_splitting(
    model: TabDDPMSynthesizer,
    num_rows: int,
    parsed: dict[str, Any],
    rng: np.random.Generator,
    *,
    draw: dict[str, Any],
    max_rounds: int,
    split: bool = True,
) -> ConditionedRows:
    """Rows of ``model`` meeting ``parsed`` (and every rule): a pilot, then branches from the
    split step of its rows that met the condition (module docstring). ``draw`` holds the
    sampler's keyword arguments (the class label); ``split=False`` (the label meets the whole
    condition) leaves only the check of the rules."""
    steps = int(model.sampling_steps or model.num_timesteps)
    step = model._diffusion_.split_step(steps, float(model.condition_split))
    states_wanted = min(PILOT_ROWS, max(PILOT_MIN_ROWS, num_rows // SIBLINGS))
    pilot_target = min(num_rows, states_wanted) if split else num_rows
    kept: list[pd.DataFrame] = []
    states: list[torch.Tensor] = []
    have = rounds = pilot_draws = pilot_have = 0
    branches: _Branching | None = None
    budget = draw_budget(num_rows)  # a condition too rare for the model: give up, say so
    while (
        rounds < max_rounds
        and pilot_draws + (0 if branches is None else branches.draws) < budget
        and (have < num_rows if branches is None else not branches.done(num_rows - pilot_have))
    ):
        rounds += 1
        if branches is not None:
            branches.round(model, rng, draw, parsed)
            continue
        if pilot_draws == 0:
            batch = max(100, min(num_rows, FIRST_PILOT_ROWS) if split else num_rows)
        else:
            rate = max(pilot_have / pilot_draws, 1.0 / pilot_draws)
            batch = int(min(max((pilot_target - pilot_have) / rate * 1.2, 100), MAX_BATCH_ROWS))
            if split and pilot_have >= PILOT_MIN_ROWS:
                batch = min(batch, max(100, PILOT_MAX_DRAWS - pilot_draws))
            batch = max(1, min(batch, budget - pilot_draws))
        trace: list[torch.Tensor] = []
        record = (trace, step) if split else None
        encoded = model._generate_encoded(batch, rng, record=record, **draw)
        df = model._decode(encoded, rng)
        ok = mask_for(df, parsed, model) & model._valid(df)
        kept.append(df[ok])
        have += int(ok.sum())
        pilot_draws, pilot_have = pilot_draws + batch, pilot_have + int(ok.sum())
        if split:
            states.append(torch.cat(trace)[torch.as_tensor(ok, device=trace[0].device)])
        pilot_done = pilot_have >= pilot_target or (
            pilot_have >= PILOT_MIN_ROWS and pilot_draws >= PILOT_MAX_DRAWS
        )
        if split and pilot_done and have < num_rows:
            if pilot_have / pilot_draws < SPLIT_BELOW:
                branches = _Branching(torch.cat(states), step, num_rows - have, rng)
            else:  # common enough: go on with exact rejection
                split, pilot_target, states = False, num_rows, []
    if branches is not None:
        kept.extend(branches.rows(num_rows - pilot_have, rng))
    rows = pd.concat(kept, ignore_index=True)
    rows = rows.iloc[rng.permutation(len(rows))[:num_rows]].reset_index(drop=True)
    branch_draws = 0 if branches is None else branches.draws
    if branch_draws:
        method = "splitting the reverse diffusion"
        if draw:
            method = "class label, then splitting the reverse diffusion"
    elif draw:
        method = "native conditioning" if rounds == 1 else "native conditioning, then rejection"
    else:
        method = "rejection"
    details = {
        "pilot_draws": pilot_draws,
        "pilot_rows": pilot_have,
        "branch_draws": branch_draws,
        "branch_rows": 0 if branches is None else int(branches.accepted.sum()),
        "branch_states": 0 if branches is None else len(branches.states),
        "split_step": step,
    }
    return ConditionedRows(rows, pilot_draws + branch_draws, rounds, method, details)


class _Branching:
    """The branch rounds: ``per_state`` accepted rows from every pilot state.

    Accepted rows beyond a state's quota are kept in reserve. The rounds stop once the quotas
    still unmet are at most ``CAPPED_SHARE`` of all quotas (the states from which the
    condition is hardest to reach, which would cost most of the draws) and the reserve can fill
    them; those few rows then come from other states (a bound on the distortion: at most that
    share of rows, as the capped weight mass of ``_latent_conditioning``).
    """

    def __init__(
        self, states: torch.Tensor, step: int, missing: int, rng: np.random.Generator
    ) -> None:
        self.per_state = -(-missing // len(states))  # ceil
        # Only as many states as the quotas need (a uniform subset is still from p(x_s | A)).
        keep = np.sort(rng.permutation(len(states))[: -(-missing // self.per_state)])
        self.states, self.step = states[torch.as_tensor(keep, device=states.device)], step
        self.accepted = np.zeros(len(keep), dtype=np.int64)
        self.tried = np.zeros(len(keep), dtype=np.int64)
        self.draws = 0
        self._quota: list[pd.DataFrame] = []
        self._reserve: list[pd.DataFrame] = []

    def done(self, missing: int) -> bool:
        """Enough rows for ``missing`` more, with at most ``CAPPED_SHARE`` of quotas unmet."""
        short = int(np.maximum(self.per_state - self.accepted, 0).sum())
        quota = self.per_state * len(self.states)
        spare = sum(len(r) for r in self._reserve)
        return short <= CAPPED_SHARE * quota and self.accepted.sum() + spare >= missing

    def rows(self, missing: int, rng: np.random.Generator) -> list[pd.DataFrame]:
        """The quota rows and, for what they lack, rows drawn from the reserve."""
        have = int(self.accepted.sum())
        out = list(self._quota)
        if have < missing and self._reserve:
            spare = pd.concat(self._reserve, ignore_index=True)
            out.append(spare.iloc[rng.permutation(len(spare))[: missing - have]])
        return out

    def round(
        self,
        model: TabDDPMSynthesizer,
        rng: np.random.Generator,
        draw: dict[str, Any],
        parsed: dict[str, Any],
    ) -> None:
        """Branches for every state short of its quota, sized by its own acceptance rate so
        far (0.5 before any draw)."""
        need = np.maximum(self.per_state - self.accepted, 0)
        rate = np.maximum((self.accepted + 0.5) / (self.tried + 1.0), 0.01)
        count = np.where(need > 0, np.ceil(need / rate * 1.2), 0).astype(np.int64)
        if count.sum() > MAX_BATCH_ROWS:
            count = np.ceil(count * MAX_BATCH_ROWS / count.sum()).astype(np.int64)
        parent = np.repeat(np.arange(len(need)), count)
        index = torch.as_tensor(parent, device=self.states.device)
        start = Branches(self.states[index], self.step)
        encoded = model._generate_encoded(len(parent), rng, start=start, **draw)
        df = model._decode(encoded, rng)
        ok = mask_for(df, parsed, model) & model._valid(df)
        self.draws += len(parent)
        self.tried += count
        # Each state's first accepted rows up to its quota (rank within the state); the rest
        # go to the reserve.
        hits = np.flatnonzero(ok)
        owner = parent[hits]
        first = np.searchsorted(owner, owner, side="left")  # parent is sorted
        in_quota = np.arange(len(hits)) - first < need[owner]
        self.accepted += np.bincount(owner[in_quota], minlength=len(need))
        self._quota.append(df.iloc[hits[in_quota]])
        self._reserve.append(df.iloc[hits[~in_quota]])
