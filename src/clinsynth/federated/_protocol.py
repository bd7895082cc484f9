"""The federation as two state machines that exchange messages: :class:`Federation` at the
server and :class:`Site` at each hospital. Neither knows the network: Flower carries their
messages (``_flower.py``), and :func:`simulate` drives them in one process (tests, benchmarks).

A message is ``(payload, arrays)``: a JSON-able dict and a list of numpy arrays (the model's
weights). The exchanges, one Flower round each:

=============  ===============================================  ================================
phase          server -> site                                   site -> server
=============  ===============================================  ================================
join           metadata, minimum rows, the plan                 token, column names and dtypes,
                                                                epsilon (or the site's refusal)
ranges         (nothing)                                        noisy ranges, units, levels
histograms     the agreed ranges                                noisy histograms, noisy size
train (xR)     the transformer (first time), global weights     new weights (DP-SGD), epsilon
                                                                spent
=============  ===============================================  ================================

The train rounds are those of ``Plan(kind="tvae")``. With ``kind="dp_marginal"`` (the
default) they are replaced by two exchanges
(``_marginal.py``): *select* (the transformer and the attributes -> every pair's noisy
dependence score) and *measure* (the tree's edges -> their noisy 2-way tables); the server fits
the ``dp_marginal`` model's generator from the sums.

A site that is refused gets ``refused`` with the reason instead; one that stops (budget spent)
or drops out is left out of the average, and the round completes with the others.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import FederationError
from clinsynth.federated import _marginal as MG
from clinsynth.federated import _model as M
from clinsynth.federated import _schema as C
from clinsynth.federated import _statistics as ST
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.privacy import PrivacyAccountant, rho_for_epsilon
from clinsynth.transform import TableTransformer

logger = logging.getLogger(__name__)

Message = tuple[dict[str, Any], list[np.ndarray]]

SETUP_ROUNDS = 3
#: The federation's model families: TVAE by FedAvg of DP-SGD, or noisy marginals.
KINDS = ("tvae", "dp_marginal")
#: Share of a site's budget (zCDP rho) spent on the statistics, and of delta on naming levels.
STATISTICS_SHARE, RELEASE_DELTA_SHARE = 0.1, 0.1


@dataclass
class Plan:
    """What the server decides and every site follows."""

    rounds: int = 20
    local_steps: int = 10
    min_rows: int = C.DEFAULT_MIN_ROWS
    rare_threshold: int = 5
    n_bins: int = 32
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)
    #: Public knowledge (free): ``[low, high]`` of a number, the levels of a category.
    public: dict[str, Any] = field(default_factory=dict)
    #: A column that says which site a row comes from (each site's name), learned with the
    #: rest: synthetic rows say which site they resemble. None: no such column.
    site_column: str | None = None
    #: The model family (:data:`KINDS`); ``dp_marginal`` ignores rounds and local steps.
    kind: str = "dp_marginal"
    #: ``dp_marginal``: relative shares of a site's budget for (statistics, selection,
    #: measurement).
    budget_split: tuple[float, float, float] = MG.SHARES

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "local_steps": self.local_steps,
            "min_rows": self.min_rows,
            "rare_threshold": self.rare_threshold,
            "n_bins": self.n_bins,
            "seed": self.seed,
            "model": dict(self.model),
            "public": {k: list(v) for k, v in self.public.items()},
            "site_column": self.site_column,
            "kind": self.kind,
            "budget_split": list(self.budget_split),
        }


def steps(kind: str) -> tuple[str, ...]:
    """The exchanges before training (all of them for ``dp_marginal``, which has none)."""
    marginal = ("select", "measure") if kind == "dp_marginal" else ()
    return ("join", "ranges", "histograms", *marginal)


def _phase(server_round: int, kind: str = "tvae") -> str:
    names = steps(kind)
    return names[server_round - 1] if server_round <= len(names) else "train"


def _table(metadata: Metadata | TableMetadata) -> TableMetadata:
    if isinstance(metadata, TableMetadata):
        return metadata
    names = list(metadata.tables)
    if len(names) != 1:
        raise FederationError(
            f"A federation learns one table; the metadata has {len(names)} ({names[:5]}). "
            "Give the metadata of one table."
        )
    return metadata.get_table(names[0])


# =========================================================================== server
class Federation:
    """The server's side (see the module docstring).

    Parameters
    ----------
    metadata : Metadata or TableMetadata
        The federation's one table; every site's columns must match it.
    tokens : list of str
        The tokens the server issued; a site joins with one of them, once.
    plan : Plan
    min_sites : int
        Sites that must be accepted for training to start.
    """

    def __init__(
        self,
        metadata: Metadata | TableMetadata,
        tokens: list[str],
        plan: Plan,
        min_sites: int = 2,
    ) -> None:
        if plan.kind not in KINDS:
            raise FederationError(
                f"The federation's model must be one of {', '.join(KINDS)}. Got {plan.kind!r}."
            )
        MG.shares(plan.budget_split)  # checked when the server starts
        self.table = C.with_site_column(_table(metadata), plan.site_column)
        C.check_federation_metadata(self.table)
        C.check_public(self.table, plan.public)
        self.tokens = list(tokens)
        self.plan = dataclasses.replace(plan, public=dict(plan.public))
        self.min_sites = int(min_sites)
        self.accepted: dict[str, dict[str, Any]] = {}  # site id -> what the server knows of it
        self.refused: dict[str, str] = {}
        self.notified: set[str] = set()
        self.model: Any = None
        self.weights: list[np.ndarray] | None = None
        self.rounds_done = 0
        self.start = time.perf_counter()

    @property
    def total_rounds(self) -> int:
        if self.plan.kind == "dp_marginal":
            return len(steps(self.plan.kind))
        return SETUP_ROUNDS + int(self.plan.rounds)

    def phase(self, server_round: int) -> str:
        return _phase(server_round, self.plan.kind)

    # ------------------------------------------------------------------ instructions
    def instructions(self, server_round: int, site_ids: list[str]) -> dict[str, Message]:
        """What each site gets in ``server_round`` (sites not listed get nothing)."""
        phase = self.phase(server_round)
        out: dict[str, Message] = {}
        for sid in site_ids:
            if sid in self.refused:
                if sid not in self.notified:
                    out[sid] = ({"phase": "refused", "reason": self.refused[sid]}, [])
                continue
            if phase == "join":
                payload = {
                    "phase": "join",
                    "metadata": self.table.to_dict(),
                    "plan": self.plan.to_dict(),
                }
                out[sid] = (payload, [])
            elif sid not in self.accepted or not self.accepted[sid].get("active", True):
                continue  # joined after the join round, or dropped out: not asked again
            elif phase == "ranges":
                out[sid] = ({"phase": "ranges", "public": self.plan.public}, [])
            elif phase == "histograms":
                out[sid] = ({"phase": "histograms", "agreed": self.agreed}, [])
            elif phase == "select":
                payload = {
                    "phase": "select",
                    "transformer": self.transformer.to_dict(),
                    "attributes": MG.to_json(self.attrs),
                }
                out[sid] = (payload, [])
            elif phase == "measure":
                out[sid] = ({"phase": "measure", "edges": [list(e) for e in self.edges]}, [])
            else:
                payload: dict[str, Any] = {"phase": "train", "round": server_round - SETUP_ROUNDS}
                if not self.accepted[sid].get("has_transformer"):
                    payload["transformer"] = self.transformer.to_dict()
                out[sid] = (payload, list(self.weights))
        return out

    def mark_notified(self, site_ids: list[str]) -> None:
        self.notified.update(s for s in site_ids if s in self.refused)

    # ------------------------------------------------------------------ replies
    def receive(self, server_round: int, replies: dict[str, Message], failed: int = 0) -> list[str]:
        """Take the sites' replies of ``server_round``; returns the sites refused in it."""
        phase = self.phase(server_round)
        if phase == "join":
            return self._join(replies)
        replies = {s: r for s, r in replies.items() if s in self.accepted}
        if failed or len(replies) < len(self._active()):
            lost = [s for s in self._active() if s not in replies]
            for sid in lost:
                logger.warning("Site %s did not answer round %d: left out.", sid, server_round)
                self.accepted[sid]["active"] = False
        if phase == "ranges":
            self._need(replies, "ranges")
            self.ranges = {s: r[0]["ranges"] for s, r in replies.items()}
            self.agreed = ST.merge_ranges(
                self.table,
                list(self.ranges.values()),
                self.plan.rare_threshold,
                self.plan.to_dict()["public"],
            )
        elif phase == "histograms":
            self._need(replies, "histograms")
            self._fit_transformer(replies)
        elif phase == "select":
            self._need(replies, "select")
            self._spent(replies)
            ones = [self._released_ones(sid) for sid in replies]
            sizes = [self.accepted[sid]["rows"] for sid in replies]
            self.edges, self.scores_sigma = MG.plan_tree(
                len(self.attrs),
                [r[0] for r in replies.values()],
                MG.between_sites(ones, sizes),
            )
        elif phase == "measure":
            self._need(replies, "measure")
            self._spent(replies)
            self.tree = MG.fit_generator(self.attrs, self.edges, [r[1] for r in replies.values()])
            self.tables_sigma = float(np.sqrt(sum(r[0]["sigma"] ** 2 for r in replies.values())))
            for sid in replies:
                self.accepted[sid]["rounds"] = 1
            self.rounds_done = 1
        else:
            self._average(server_round, replies)
        return []

    def _active(self) -> list[str]:
        return [s for s, a in self.accepted.items() if a.get("active", True)]

    def _need(self, replies: dict[str, Message], what: str) -> None:
        if not replies:
            raise FederationError(
                f"No site answered the {what} step: every site dropped out. Start the "
                "federation again."
            )

    def _join(self, replies: dict[str, Message]) -> list[str]:
        newly: list[str] = []
        used = {a["token"] for a in self.accepted.values()}
        for sid, (payload, _) in sorted(replies.items()):
            index = C.token_index(payload.get("token"), self.tokens)
            if index is None:
                problems = ["its token is not one this server issued (wrong or expired token)"]
            elif index in used:
                problems = [f"token {index + 1} is already used by another site"]
            elif payload.get("status") != "ok":
                problems = [str(p) for p in payload.get("problems", [])][:20] or ["unknown"]
            else:
                problems = C.schema_problems(self.table, payload.get("schema") or {})
                problems += self._name_problems(payload.get("site_name"))
            if problems:
                logger.warning("%s", C.refusal(problems, f"Site {sid}"))
                self.refused[sid] = str(C.refusal(problems, "This site"))
                newly.append(sid)
                continue
            used.add(index)
            self.accepted[sid] = {
                "name": payload.get("site_name"),
                "token": index,
                "schema": payload["schema"],
                "epsilon": float(payload["epsilon"]),
                "delta": float(payload["delta"]),
            }
            logger.info("Site %s joined with token %d.", sid, index + 1)
        column = self.plan.site_column
        if column is not None:  # the sites' names are the levels of the site column: public
            self.plan.public = {**self.plan.public, column: self._names()}
        if len(self.accepted) < self.min_sites:
            raise FederationError(
                f"Only {len(self.accepted)} of the {self.min_sites} sites needed were accepted "
                f"({len(self.refused)} refused: see the log). Fix the refused sites and start "
                "the federation again."
            )
        return newly

    def _names(self) -> list[str]:
        return [str(a["name"]) for a in self.accepted.values() if a.get("name") is not None]

    def _name_problems(self, name: Any) -> list[str]:
        column = self.plan.site_column
        if column is None:
            return []
        if not isinstance(name, str) or not name.strip():
            return [
                f"the federation keeps a site column '{column}': the site must give its name "
                "(--site-name)"
            ]
        if name in self._names():
            return [f"the site name {name!r} is already used by another site"]
        return []

    def _fit_transformer(self, replies: dict[str, Message]) -> None:
        self.histograms = {s: r[0]["histograms"] for s, r in replies.items()}
        reports = list(self.histograms.values())
        for sid, (payload, _) in replies.items():
            self.accepted[sid]["rows"] = float(payload["rows"])
        merged = ST.merge_histograms(
            self.table, self.agreed, reports, self.plan.n_bins, self.plan.public
        )
        self.dtypes = _merge_dtypes([self.accepted[s]["schema"] for s in replies])
        marginal = self.plan.kind == "dp_marginal"
        self.transformer, _ = ST.fit_transformer(
            self.table,
            merged,
            self.dtypes,
            rare_threshold=self.plan.rare_threshold,
            seed=self.plan.seed,
            **(MG.TRANSFORMER_OPTIONS if marginal else {}),
        )
        if marginal:
            self.attrs = MG.attributes(self.transformer, merged)
            return
        self.model = M.build_model(self.table, self.transformer, self.plan.model, self.plan.seed)
        self.weights = M.get_weights(self.model)

    def _released_ones(self, sid: str) -> list[np.ndarray]:
        """What site ``sid`` released in the statistics steps, as 1-way counts."""
        return MG.released_ones(
            self.transformer,
            self.attrs,
            self.agreed,
            self.ranges[sid],
            self.histograms[sid],
            self.plan.n_bins,
        )

    def _spent(self, replies: dict[str, Message]) -> None:
        for sid, (payload, _) in replies.items():
            self.accepted[sid]["epsilon_spent"] = float(payload.get("epsilon_spent", 0.0))

    def _average(self, server_round: int, replies: dict[str, Message]) -> None:
        updates = []
        for sid, (payload, arrays) in replies.items():
            site = self.accepted[sid]
            site["has_transformer"] = True
            site["epsilon_spent"] = float(payload.get("epsilon_spent", 0.0))
            if payload.get("stopped"):
                site["active"] = False
                logger.info("Site %s stopped: its privacy budget is spent.", sid)
                continue
            site["rounds"] = site.get("rounds", 0) + 1
            updates.append((arrays, M.rows_weight(site["rows"])))
        if not updates:
            raise FederationError(
                f"No site trained in round {server_round - SETUP_ROUNDS}: every site stopped or "
                "dropped out."
            )
        self.weights = M.fedavg(updates)
        self.rounds_done = server_round - SETUP_ROUNDS

    # ------------------------------------------------------------------ result
    def result(self) -> Any:
        """The trained model (a normal TVAE, ready to ``save``)."""
        if self.rounds_done == 0 or (self.model is None and self.plan.kind == "tvae"):
            raise FederationError("The federation ended before any training round completed.")
        sites = [
            {
                "site": int(a["token"]) + 1,
                "epsilon": a["epsilon"],
                "epsilon_spent": a.get("epsilon_spent", 0.0),
                "delta": a["delta"],
                "rows_noisy": int(round(a.get("rows", 0.0))),
                "rounds": int(a.get("rounds", 0)),
                "dropped_out": not a.get("active", True) and a.get("rounds", 0) < self.rounds_done,
            }
            for a in self.accepted.values()
        ]
        if self.plan.kind == "dp_marginal":
            d = len(self.attrs)
            model = MG.build_model(
                self.table,
                self.transformer,
                self.attrs,
                self.tree,
                self.plan.seed,
                MG.shares(self.plan.budget_split),
            )
            return M.finish(
                model,
                sites=sites,
                rounds=1,
                dtypes=self.dtypes,
                num_rows=sum(s["rows_noisy"] for s in sites),
                seconds=M.elapsed(self.start),
                mechanism=(
                    "noisy column statistics merged by the server; every pair's noisy "
                    "dependence score summed over the sites, their maximum spanning tree, the "
                    "tree's noisy 2-way marginals summed over the sites (Gaussian noise at each "
                    "site; the sum's noise is the root-sum-square of the sites')"
                ),
                attributes=d,
                edges=[[self.attrs[i]["column"], self.attrs[j]["column"]] for i, j in self.edges],
                scores_sigma=self.scores_sigma,
                measurement_sigma=self.tables_sigma,
            )
        return M.federated_model(
            self.model,
            self.weights,
            sites=sites,
            rounds=self.rounds_done,
            dtypes=self.dtypes,
            num_rows=sum(s["rows_noisy"] for s in sites),
            seconds=M.elapsed(self.start),
        )


def _merge_dtypes(schemas: list[dict[str, str]]) -> dict[str, str]:
    """One dtype per column: the sites' when they agree; float64 for mixed numbers, object for
    anything else mixed."""
    out = {}
    for column in schemas[0]:
        kinds = {s.get(column, "object") for s in schemas}
        if len(kinds) == 1:
            out[column] = kinds.pop()
        elif all(k.lower().startswith(("int", "uint", "float")) for k in kinds):
            out[column] = "float64"
        else:
            out[column] = "object"
    return out


# =========================================================================== site
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
            return {"histograms": self.histograms, "rows": self.noisy_rows}, []
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
        """The two marginal exchanges (``_marginal.py``) on the site's own budget."""
        select = payload["phase"] == "select"
        rng = np.random.default_rng([self.seed, 7 if select else 8])  # the site's own noise
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
            scores, sigma = MG.site_scores(
                self.codes,
                self.attrs,
                ones,
                self.noisy_rows,
                self.rho * self._split()[1],
                rng,
                self.accountant,
            )
            return {"scores": scores.tolist(), "sigma": sigma, "epsilon_spent": self._spent()}, []
        edges = MG.check_edges(payload.get("edges"), len(self.attrs))
        tables, sigma = MG.site_tables(
            self.codes, self.attrs, edges, self.rho * self._split()[2], rng, self.accountant
        )
        self.rounds, self.contributed = 1, True
        return {"sigma": sigma, "epsilon_spent": self._spent()}, tables

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
        }


# =========================================================================== in process
def simulate(federation: Federation, sites: dict[str, Site]) -> Any:
    """Run the whole protocol in one process (the messages Flower would carry, in order)."""
    for server_round in range(1, federation.total_rounds + 1):
        out = federation.instructions(server_round, list(sites))
        replies = {sid: sites[sid].handle(*msg) for sid, msg in out.items()}
        federation.mark_notified(list(out))
        replies = {s: r for s, r in replies.items() if s not in federation.refused}
        federation.receive(server_round, replies)
    return federation.result()
