"""The server's side of the federation: :class:`Federation` (see ``_protocol.py`` for the
exchanges). It knows each site's released statistics and the sums of what the sites measure;
never a row.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from clinsynth.errors import FederationError
from clinsynth.federated import _marginal as MG
from clinsynth.federated import _model as M
from clinsynth.federated import _schema as C
from clinsynth.federated import _secagg as SA
from clinsynth.federated import _statistics as ST
from clinsynth.federated._protocol import KINDS, SETUP_ROUNDS, Message, Plan, _phase, _table, steps
from clinsynth.metadata import Metadata, TableMetadata

logger = logging.getLogger(__name__)


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
        self.model_: Any = None
        self.weights_: list[np.ndarray] | None = None
        self.rounds_done_ = 0
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
        secure = self._secure_payload(phase, site_ids)
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
                out[sid] = ({"phase": "histograms", "agreed": self.agreed_}, [])
            elif phase == "select":
                payload = {
                    "phase": "select",
                    "transformer": self.transformer_.to_dict(),
                    "attributes": MG.to_json(self.attrs_),
                    **secure,
                }
                out[sid] = (payload, [])
            elif phase == "measure":
                edges = [list(e) for e in self.edges_]
                out[sid] = ({"phase": "measure", "edges": edges, **secure}, [])
            else:
                payload: dict[str, Any] = {"phase": "train", "round": server_round - SETUP_ROUNDS}
                if not self.accepted[sid].get("has_transformer"):
                    payload["transformer"] = self.transformer_.to_dict()
                out[sid] = (payload, list(self.weights_))
        return out

    @property
    def secure(self) -> bool:
        """Whether the marginal steps run by secure aggregation (``_secagg.py``)."""
        return self.plan.kind == "dp_marginal" and bool(self.plan.secure_aggregation)

    def _secure_payload(self, phase: str, site_ids: list[str]) -> dict[str, Any]:
        """The participants of a secure marginal step (the accepted, active sites that are
        connected now), in order: their public keys and budgets. Remembered, so that the
        server unmasks only when every one of them answered."""
        if not self.secure or phase not in ("select", "measure"):
            return {}
        sites = [
            s
            for s in site_ids
            if s in self.accepted and self.accepted[s].get("active", True) and s not in self.refused
        ]
        self.participants_ = {**getattr(self, "participants_", {}), phase: sites}
        info = [self.accepted[s] for s in sites]
        if not all(isinstance(a.get("key"), str) for a in info):
            raise FederationError(
                "A site sent no public key for secure aggregation: it runs another clinsynth "
                "version. Update it, or run the federation without secure aggregation."
            )
        return {
            "secure": {
                "keys": [a["key"] for a in info],
                "budgets": [[a["epsilon"], a["delta"]] for a in info],
            }
        }

    def mark_notified(self, site_ids: list[str]) -> None:
        self.notified.update(s for s in site_ids if s in self.refused)

    # ------------------------------------------------------------------ replies
    def receive(self, server_round: int, replies: dict[str, Message], failed: int = 0) -> list[str]:
        """Take the sites' replies of ``server_round``; returns the sites refused in it."""
        phase = self.phase(server_round)
        if phase == "join":
            return self._join(replies)
        replies = {s: r for s, r in replies.items() if s in self.accepted}
        answered = list(replies)
        if self.secure and phase in ("select", "measure"):
            replies = self._unmask(phase, replies)  # one reply: the sum
        if failed or len(answered) < len(self._active()):
            lost = [s for s in self._active() if s not in answered]
            for sid in lost:
                logger.warning("Site %s did not answer round %d: left out.", sid, server_round)
                self.accepted[sid]["active"] = False
        if phase == "ranges":
            self._need(replies, "ranges")
            self.ranges_ = {s: r[0]["ranges"] for s, r in replies.items()}
            self.agreed_ = ST.merge_ranges(
                self.table,
                list(self.ranges_.values()),
                self.plan.rare_threshold,
                self.plan.to_dict()["public"],
            )
        elif phase == "histograms":
            self._need(replies, "histograms")
            self._fit_transformer(replies)
        elif phase == "select":
            self._need(replies, "select")
            self._spent(replies)
            ones = [self._released_ones(sid) for sid in answered]
            sizes = [self.accepted[sid]["rows"] for sid in answered]
            self.edges_, self.scores_sigma_ = MG.plan_tree(
                len(self.attrs_),
                [r[0] for r in replies.values()],
                MG.between_sites(ones, sizes),
            )
        elif phase == "measure":
            self._need(replies, "measure")
            self._spent(replies)
            ones = None
            if sorted(answered) != sorted(self.histograms_):  # a site dropped before measuring
                released = [self._released_ones(sid) for sid in answered]
                ones = [sum(parts) for parts in zip(*released, strict=True)]
            self.tree_ = MG.fit_generator(
                self.attrs_, self.edges_, [r[1] for r in replies.values()], ones
            )
            self.tables_sigma_ = float(np.sqrt(sum(r[0]["sigma"] ** 2 for r in replies.values())))
            for sid in answered:
                self.accepted[sid]["rounds"] = 1
            self.rounds_done_ = 1
        else:
            self._average(server_round, replies)
        return []

    def _unmask(self, phase: str, replies: dict[str, Message]) -> dict[str, Message]:
        """The sum of a secure step's masked vectors, as one reply (``"sites"``: who is in
        it). Every participant must have answered: the masks of a site that dropped out after
        masking do not cancel, so the step fails and nothing of it is used."""
        expected = self.participants_.get(phase, [])
        missing = [s for s in expected if s not in replies]
        if missing or not expected or set(replies) - set(expected):
            raise FederationError(
                f"Secure aggregation of the '{phase}' step failed: {len(missing)} of the "
                f"{len(expected)} sites that masked their values did not answer (dropped out "
                "after masking; the masks of their pairs do not cancel), so the sum cannot be "
                "unmasked and nothing of this step is used. Start the federation again with the "
                "sites that can stay connected, or without secure aggregation "
                "(--no-secure-aggregation), where a site that drops out is left out."
            )
        if phase == "select":
            size = len(MG.T.pairs(len(self.attrs_)))
        else:
            size = sum(self.attrs_[i]["size"] * self.attrs_[j]["size"] for i, j in self.edges_)
        vectors = []
        for sid, (_, arrays) in replies.items():
            if len(arrays) != 1:
                raise FederationError(f"Site {sid} sent {len(arrays)} arrays; 1 was expected.")
            vectors.append(arrays[0])
        total = SA.unmask_sum(vectors, size)
        sigma = float(np.sqrt(sum(float(r[0]["sigma"]) ** 2 for r in replies.values())))
        self._spent(replies)
        if phase == "select":
            return {"sum": ({"sigma": sigma, "scores": total}, [])}
        return {"sum": ({"sigma": sigma}, MG.split_tables(total, self.attrs_, self.edges_))}

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
        self.histograms_ = {s: r[0]["histograms"] for s, r in replies.items()}
        reports = list(self.histograms_.values())
        for sid, (payload, _) in replies.items():
            self.accepted[sid]["rows"] = float(payload["rows"])
            if self.secure:
                self.accepted[sid]["key"] = payload.get("public_key")
        merged = ST.merge_histograms(
            self.table, self.agreed_, reports, self.plan.n_bins, self.plan.public
        )
        self.dtypes_ = _merge_dtypes([self.accepted[s]["schema"] for s in replies])
        marginal = self.plan.kind == "dp_marginal"
        self.transformer_, _ = ST.fit_transformer(
            self.table,
            merged,
            self.dtypes_,
            rare_threshold=self.plan.rare_threshold,
            seed=self.plan.seed,
            **(MG.TRANSFORMER_OPTIONS if marginal else {}),
        )
        if marginal:
            self.attrs_ = MG.attributes(self.transformer_, merged)
            return
        self.model_ = M.build_model(self.table, self.transformer_, self.plan.model, self.plan.seed)
        self.weights_ = M.get_weights(self.model_)

    def _released_ones(self, sid: str) -> list[np.ndarray]:
        """What site ``sid`` released in the statistics steps, as 1-way counts."""
        return MG.released_ones(
            self.transformer_,
            self.attrs_,
            self.agreed_,
            self.ranges_[sid],
            self.histograms_[sid],
            self.plan.n_bins,
        )

    def _spent(self, replies: dict[str, Message]) -> None:
        for sid, (payload, _) in replies.items():
            if sid in self.accepted:  # not the sum of a secure step (its sites are counted)
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
        self.weights_ = M.fedavg(updates)
        self.rounds_done_ = server_round - SETUP_ROUNDS

    # ------------------------------------------------------------------ result
    def result(self) -> Any:
        """The trained model (a normal TVAE, ready to ``save``)."""
        if self.rounds_done_ == 0 or (self.model_ is None and self.plan.kind == "tvae"):
            raise FederationError("The federation ended before any training round completed.")
        sites = [
            {
                "site": int(a["token"]) + 1,
                "epsilon": a["epsilon"],
                "epsilon_spent": a.get("epsilon_spent", 0.0),
                "delta": a["delta"],
                "rows_noisy": int(round(a.get("rows", 0.0))),
                "rounds": int(a.get("rounds", 0)),
                "dropped_out": not a.get("active", True) and a.get("rounds", 0) < self.rounds_done_,
            }
            for a in self.accepted.values()
        ]
        if self.plan.kind == "dp_marginal":
            d = len(self.attrs_)
            model = MG.build_model(
                self.table,
                self.transformer_,
                self.attrs_,
                self.tree_,
                self.plan.seed,
                MG.shares(self.plan.budget_split),
            )
            return M.finish(
                model,
                sites=sites,
                rounds=1,
                dtypes=self.dtypes_,
                num_rows=sum(s["rows_noisy"] for s in sites),
                seconds=M.elapsed(self.start),
                mechanism=(
                    "noisy column statistics merged by the server; every pair's noisy "
                    "dependence score summed over the sites, their maximum spanning tree, the "
                    "tree's noisy 2-way marginals summed over the sites ("
                    + (
                        "secure aggregation: the server saw only the sums of the sites' masked "
                        "values, each site adding its share of one central mechanism's "
                        "Gaussian noise; each site's epsilon holds for an honest-but-curious "
                        "server and no collusion between the server and the other sites)"
                        if self.secure
                        else "Gaussian noise at each site; the sum's noise is the "
                        "root-sum-square of the sites')"
                    )
                ),
                secure_aggregation=self.secure,
                attributes=d,
                edges=[
                    [self.attrs_[i]["column"], self.attrs_[j]["column"]] for i, j in self.edges_
                ],
                scores_sigma=self.scores_sigma_,
                measurement_sigma=self.tables_sigma_,
            )
        return M.federated_model(
            self.model_,
            self.weights_,
            sites=sites,
            rounds=self.rounds_done_,
            dtypes=self.dtypes_,
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
