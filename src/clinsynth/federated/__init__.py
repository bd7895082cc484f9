"""Federated synthesis: hospitals that may not share records build one synthetic population.

Each site keeps its rows. The server holds the federation's metadata; the sites agree the
transformer's statistics with differential privacy (noisy histograms summed by the server,
:mod:`~clinsynth.federated._statistics`), then either send noisy marginals from which the server
fits the ``dp_marginal`` model (:mod:`~clinsynth.federated._marginal`, the default; by secure
aggregation, :mod:`~clinsynth.federated._secagg`, so the server sees only their sums) or train one
TVAE by federated averaging of DP-SGD updates (:mod:`~clinsynth.federated._model`), each site
accounting its own epsilon. The result is
a normal clinsynth bundle. :class:`Federation` and :class:`Site` are the two sides of the
protocol; Flower carries their messages (:func:`run_server`, :func:`run_site`, the
``[federated]`` extra), and :func:`simulate` runs them in one process. See docs/FEDERATED.md.
"""

from clinsynth.federated._protocol import Plan, simulate
from clinsynth.federated._schema import new_tokens, read_tokens
from clinsynth.federated._server import Federation
from clinsynth.federated._site import Site


def run_server(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - forwards to the Flower layer
    """Serve a federation over Flower (see :func:`clinsynth.federated._flower.run_server`)."""
    from clinsynth.federated._flower import run_server as run

    return run(*args, **kwargs)


def run_site(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """Join a federation over Flower (see :func:`clinsynth.federated._flower.run_site`)."""
    from clinsynth.federated._flower import run_site as run

    return run(*args, **kwargs)


__all__ = [
    "Federation",
    "Plan",
    "Site",
    "new_tokens",
    "read_tokens",
    "run_server",
    "run_site",
    "simulate",
]
