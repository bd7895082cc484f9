"""The federation as two state machines that exchange messages: :class:`Federation` at the
server (``_server.py``) and :class:`Site` at each hospital (``_site.py``); this module holds
what both follow (the :class:`Plan`, the steps) and :func:`simulate`. Neither knows the
network: Flower carries their messages (``_flower.py``), and :func:`simulate` drives them in
one process (tests, benchmarks).

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
or drops out is left out of the average, and the round completes with the others. The marginal
steps run by secure aggregation by default (``_secagg.py``: the server sees only the sum of
the sites' masked vectors); a site that drops out after masking fails the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clinsynth.errors import FederationError
from clinsynth.federated import _marginal as MG
from clinsynth.federated import _schema as C
from clinsynth.metadata import Metadata, TableMetadata

if TYPE_CHECKING:
    from clinsynth.federated._server import Federation
    from clinsynth.federated._site import Site

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
    #: ``dp_marginal``: the select and measure steps by secure aggregation with distributed
    #: noise (``_secagg.py``): the server sees only the sum of the sites' masked vectors, which
    #: carries one central mechanism's noise. False: each site adds its own full noise and
    #: sends its values in the clear (no assumption on the server or the other sites).
    secure_aggregation: bool = True

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
            "secure_aggregation": bool(self.secure_aggregation),
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


def simulate(federation: Federation, sites: dict[str, Site]) -> Any:
    """Run the whole protocol in one process (the messages Flower would carry, in order)."""
    for server_round in range(1, federation.total_rounds + 1):
        out = federation.instructions(server_round, list(sites))
        replies = {sid: sites[sid].handle(*msg) for sid, msg in out.items()}
        federation.mark_notified(list(out))
        replies = {s: r for s, r in replies.items() if s not in federation.refused}
        federation.receive(server_round, replies)
    return federation.result()
