"""A hospital's side of the federation: :class:`Site` (see ``_protocol.py`` for the
exchanges). Its rows never leave it; it answers each measuring step once, on its own budget,
and keeps its own privacy ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import FederationError
from clinsynth.federated import _marginal as MG
from clinsynth.federated import _model as M
from clinsynth.federated import _schema as C
from clinsynth.federated import _secagg as SA
from clinsynth.federated import _statistics as ST
from clinsynth.federated._protocol import RELEASE_DELTA_SHARE, STATISTICS_SHARE, Message
from clinsynth.metadata import TableMetadata
from clinsynth.privacy import PrivacyAccountant, rho_for_epsilon
from clinsynth.transform import TableTransformer


class Site:
    """A hospital's side: its rows never leave it (see the module docstring).

    Parameters
    ----------
    data : DataFrame
        The site's rows.
    token : str
        The token the server issued to this site.
    epsilon : float
        The site's privacy budget for the whole federation (statistics and training).
    delta : float
        δ of the site's guarantee.
    seed : int, optional
        Seed of the site's noise; None draws it from the operating system (the server cannot
        predict the noise).
    name : str, optional
        The site's name, the level of the federation's site column (``Plan.site_column``).
    local_noise : bool
        Under secure aggregation (``Plan.secure_aggregation``), add this site's own full noise
        to its marginals anyway: its epsilon then holds without trusting the server and the
        other sites (``_secagg.py``), at the price of a noisier sum. Without secure
        aggregation every site adds its full noise.
    """

    def __init__(
        self,
        data: pd.DataFrame,
        token: str,
        *,
        epsilon: float,
        delta: float = 1e-6,
        seed: int | None = None,
        name: str | None = None,
        local_noise: bool = False,
    ) -> None:
        if not (epsilon > 0):
            raise FederationError(f"The site's epsilon must be > 0. Got {epsilon!r}.")
        self.data = data
        self.name = name
        self.token = token
        self.epsilon, self.delta = float(epsilon), float(delta)
        self.seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self.refused: FederationError | None = None
        self.trainer: M.SiteTrainer | None = None
        self.accountant = PrivacyAccountant()
        self.rounds = 0
        self.contributed = False
        self._recorded = False
        self.local_noise = bool(local_noise)
        self.key: SA.SiteKey | None = None
        #: Under which assumption the marginals' epsilon holds (None: no secure aggregation).
        self.assumption: str | None = None

    def handle(self, payload: dict[str, Any], arrays: list[np.ndarray]) -> Message:
        """Answer one instruction of the server."""
        phase = payload.get("phase")
        if phase == "refused":
            self.refused = FederationError(str(payload.get("reason", "refused")))
            return {"status": "refused"}, []
        if phase == "join":
            return self._join(payload)
        if self.refused is not None:
            raise self.refused
        self._once(phase)
        if phase == "ranges":
            self._budgets(payload.get("public") or {})
            self._ranges = ST.site_ranges(self.table, self.rows, self.budgets)
            return {"ranges": self._ranges}, []
        if phase == "histograms":
            self.agreed = payload["agreed"]
            self.histograms = ST.site_histograms(
                self.table, self.rows, self.budgets, payload["agreed"], self.plan["n_bins"]
            )
            self.noisy_rows = ST.noisy_rows(self.ranges_sent, self.histograms)
            reply = {"histograms": self.histograms, "rows": self.noisy_rows}
            if self.plan.get("kind") == "dp_marginal" and self.plan.get("secure_aggregation"):
                self.key = SA.SiteKey()  # this federation's key pair; the private half stays
                reply["public_key"] = self.key.public
            return reply, []
        if phase == "train":
            return self._train(payload, arrays)
        if phase in ("select", "measure"):
            return self._marginals(payload)
        raise FederationError(f"Unknown instruction {phase!r} from the server.")

    def _once(self, phase: Any) -> None:
        """Each measuring step is answered once and in order: the site's ledger cannot be
        made to spend twice, whatever the server asks."""
        order = ("ranges", "histograms", "select", "measure")
        if phase not in order:
            return
        done = getattr(self, "_done", [])
        if phase in done or any(p not in done for p in order[: order.index(phase)]):
            how = "again" if phase in done else "out of order"
            raise FederationError(
                f"The server asked for the '{phase}' step {how}: this site measures each step "
                "once, in order, so that it never spends more than its budget. Check the "
                "server's version and log."
            )
        self._done = [*done, phase]

    def _join(self, payload: dict[str, Any]) -> Message:
        self.table = TableMetadata.from_dict(payload["metadata"])
        self.plan = payload["plan"]
        data, problems = C.add_site_column(self.data, self.plan.get("site_column"), self.name)
        found, self.rows = C.site_problems(self.table, data, int(self.plan["min_rows"]))
        problems += found
        if problems:
            self.refused = C.refusal(problems)
            return {"status": "refused", "token": self.token, "problems": problems}, []
        summary = C.schema_summary(self.rows)
        return {
            "status": "ok",
            "token": self.token,
            "schema": summary,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "site_name": self.name,
        }, []

    def _budgets(self, public: dict[str, Any]) -> None:
        """The statistics' share of the budget, per column (public knowledge is free)."""
        self.rho = rho_for_epsilon(self.epsilon, self.delta * (1 - RELEASE_DELTA_SHARE))
        marginal = self.plan.get("kind") == "dp_marginal"
        self.budgets = ST.column_budgets(
            self.table,
            self.rho * (self._split()[0] if marginal else STATISTICS_SHARE),
            self.delta * RELEASE_DELTA_SHARE,
            self.accountant,
            self.seed,
            public,
        )

    @property
    def ranges_sent(self) -> dict[str, Any]:
        return getattr(self, "_ranges", {})

    def _train(self, payload: dict[str, Any], arrays: list[np.ndarray]) -> Message:
        if self.trainer is None:
            transformer = TableTransformer.from_dict(payload["transformer"], self.table)
            model = M.build_model(self.table, transformer, self.plan["model"], self.plan["seed"])
            self.trainer = M.SiteTrainer(
                model,
                self.rows,
                epsilon=self.epsilon,
                delta=self.delta,
                accountant=self.accountant,
                rounds=int(self.plan["rounds"]),
                local_steps=int(self.plan["local_steps"]),
                seed=self.seed,
            )
        if not self.trainer.can_train():
            return {"stopped": True, "epsilon_spent": self.trainer.spent()}, []
        weights = self.trainer.train_round(arrays)
        self.rounds += 1
        self.contributed = True
        return {"epsilon_spent": self.trainer.spent()}, weights

    def _marginals(self, payload: dict[str, Any]) -> Message:
        """The two marginal exchanges (``_marginal.py``) on the site's own budget; masked for
        secure aggregation (``_secagg.py``) when the server's instruction says so."""
        select = payload["phase"] == "select"
        rng = np.random.default_rng([self.seed, 7 if select else 8])  # the site's own noise
        split = self._split()
        if select:
            self.transformer = TableTransformer.from_dict(payload["transformer"], self.table)
            self.attrs = MG.from_json(payload.get("attributes"), self.transformer)
            self.codes = MG.site_codes(self.transformer, self.attrs, self.rows, self.seed)
            ones = MG.released_ones(
                self.transformer,
                self.attrs,
                self.agreed,
                self._ranges,
                self.histograms,
                int(self.plan["n_bins"]),
            )
            d = len(self.attrs)
            sigma, added, note, keys = self._noise(
                payload, lambda rho: MG.scores_sigma(d, rho * split[1])
            )
            scores = MG.site_scores(
                self.codes,
                self.attrs,
                ones,
                self.noisy_rows,
                sigma,
                rng,
                self.accountant,
                added=added,
                note=note,
            )
            reply = {"sigma": added, "epsilon_spent": self._spent()}
            if keys is None:
                return {**reply, "scores": scores.tolist()}, []
            return reply, [self.key.mask(scores, keys, "select")]
        edges = MG.check_edges(payload.get("edges"), len(self.attrs))
        sigma, added, note, keys = self._noise(
            payload, lambda rho: MG.tables_sigma(len(edges), rho * split[2])
        )
        tables = MG.site_tables(
            self.codes, self.attrs, edges, sigma, rng, self.accountant, added=added, note=note
        )
        self.rounds, self.contributed = 1, True
        reply = {"sigma": added, "epsilon_spent": self._spent()}
        if keys is None:
            return reply, tables
        flat = np.concatenate([t.ravel() for t in tables])
        return reply, [self.key.mask(flat, keys, "measure")]

    def _noise(
        self, payload: dict[str, Any], sigma_for: Callable[[float], float]
    ) -> tuple[float, float, str, list[str] | None]:
        """How much noise a marginal step adds: ``(σ that protects this site's rows, σ it
        adds, the ledger's note, the participants' keys or None)``. ``sigma_for`` gives a step's
        σ from a site's whole ρ.

        Without secure aggregation the site adds its own full σ. With it, the sum must carry
        the largest σ any participant needs (this site's included, whatever the server says
        of the others) and each of the ``K`` sites adds ``σ / sqrt(K)``; with
        ``local_noise`` this site adds at least its own full σ and relies on nothing else.
        """
        own = sigma_for(self.rho)
        secure = payload.get("secure")
        if secure is None:
            return own, own, "", None
        keys, budgets = secure.get("keys"), secure.get("budgets")
        if (
            self.key is None
            or not isinstance(keys, list)
            or not isinstance(budgets, list)
            or len(keys) != len(budgets)
            or not keys
        ):
            raise FederationError(
                "The server's secure aggregation instruction could not be read (malformed "
                "instruction): the server and the site run different clinsynth versions?"
            )
        try:
            needed = [
                sigma_for(rho_for_epsilon(float(e), float(d) * (1 - RELEASE_DELTA_SHARE)))
                for e, d in budgets
            ]
        except (TypeError, ValueError):
            needed = None
        if needed is None or not all(np.isfinite(needed)):
            raise FederationError(
                "The server's secure aggregation instruction could not be read (malformed "
                "instruction: the participants' budgets)."
            )
        total = SA.sum_sigma([*needed, own])
        added = SA.share(total, len(keys))
        if self.local_noise:
            added = max(added, own)
            self.assumption = "none: this site added its own full noise (local_noise)"
            return added, added, " (secure aggregation; this site's own full noise)", keys
        self.assumption = SA.ASSUMPTION
        note = f" (secure aggregation: the noise of the sum of {len(keys)} sites' shares)"
        return total, added, note, keys

    def _spent(self) -> float:
        return float(self.accountant.get_epsilon(self.delta))

    def _split(self) -> tuple[float, float, float]:
        return MG.shares(self.plan.get("budget_split", MG.SHARES))

    def report(self) -> dict[str, Any]:
        """What this site spent, from its own ledger (shown to the site at the end)."""
        if self.trainer is not None and not self._recorded:
            self.trainer.record()
            self._recorded = True
        summary = self.accountant.summary(self.delta) if self.accountant.mechanisms else {}
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "epsilon_spent": float(summary.get("epsilon", 0.0)),
            "model": (getattr(self, "plan", None) or {}).get("kind", "tvae"),
            "rounds_trained": self.rounds,
            "spent_by": {k: v["epsilon_alone"] for k, v in summary.get("consumers", {}).items()},
            "secure_aggregation": self.assumption is not None,
            "assumption": self.assumption,
        }
