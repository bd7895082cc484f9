"""Flower carries the federation's messages: a Flower strategy around :class:`Federation` at
the server, a Flower client around :class:`Site` at each hospital (gRPC, TLS when certificates
are given).

Flower's server and client entry points (``start_server``/``start_client``, the gRPC transport
that needs no Flower app project) are the ones Flower 1.13+ marks deprecated in favour of the
SuperLink/SuperNode deployment; they are what lets one command run a site. Flower's usage
telemetry is switched off before Flower is imported: nothing leaves a hospital but the
federation's messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinsynth._extras import require
from clinsynth.errors import FederationError
from clinsynth.federated._protocol import Plan, steps
from clinsynth.federated._server import Federation
from clinsynth.federated._site import Site

logger = logging.getLogger(__name__)

#: Seconds a site waits for the server (connection and reconnections) before it gives up.
CONNECT_TIMEOUT = 60.0


def _flwr() -> Any:
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # read by Flower at import: never phone home
    flwr = require("flwr", "Federated synthesis (clinsynth federate)")
    flower_logger = logging.getLogger("flwr")
    if not any(isinstance(f, _QuietFlower) for f in flower_logger.filters):
        flower_logger.addFilter(_QuietFlower())
    return flwr


class _QuietFlower(logging.Filter):
    """Keep Flower's warnings and errors, drop its per-message chatter and the notice that
    ``start_server``/``start_client`` are deprecated (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "DEPRECATED FEATURE" in str(record.msg):
            return False
        return record.levelno >= logging.WARNING or _VERBOSE


_VERBOSE = False


def _encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _decode(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise FederationError("A federation message could not be read (not JSON).") from None
    if not isinstance(value, dict):
        raise FederationError("A federation message could not be read (not a JSON object).")
    return value


# =========================================================================== server
def _strategy(federation: Federation, join_timeout: float) -> Any:
    from flwr.common import (
        FitIns,
        Parameters,
        ReconnectIns,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )
    from flwr.server.strategy import Strategy

    class FederationStrategy(Strategy):
        """Every round: the federation's instructions out, the sites' replies in."""

        def __init__(self) -> None:
            self.error: FederationError | None = None

        def initialize_parameters(self, client_manager: Any) -> Any:
            return Parameters(tensors=[], tensor_type="numpy.ndarray")

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            if self.error is not None:
                return []
            if server_round == 1:
                logger.info("Waiting for %d sites to connect...", federation.min_sites)
                if not client_manager.wait_for(federation.min_sites, timeout=int(join_timeout)):
                    self.error = FederationError(
                        f"Only {client_manager.num_available()} of the {federation.min_sites} "
                        f"sites connected within {join_timeout:g} s. Start the missing sites "
                        "(or lower --min-sites) and start the server again."
                    )
                    return []
            clients = client_manager.all()
            try:
                out = federation.instructions(server_round, sorted(clients))
            except FederationError as exc:
                self.error = exc
                return []
            return [
                (clients[cid], FitIns(ndarrays_to_parameters(arrays), {"m": _encode(payload)}))
                for cid, (payload, arrays) in out.items()
            ]

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            if self.error is not None:
                return None, {}
            replies = {
                proxy.cid: (_decode(res.metrics.get("m")), parameters_to_ndarrays(res.parameters))
                for proxy, res in results
            }
            by_cid = {proxy.cid: proxy for proxy, _ in results}
            try:
                federation.receive(server_round, replies, failed=len(failures))
                logger.info(_progress(federation, server_round, len(replies), len(failures)))
            except FederationError as exc:
                self.error = exc
            for cid, reason in federation.refused.items():
                if cid in by_cid and cid not in federation.notified:
                    self._tell(by_cid[cid], server_round, {"phase": "refused", "reason": reason})
            federation.mark_notified(list(by_cid))
            if self.error is not None:
                stop = {"phase": "refused", "reason": f"The federation stopped: {self.error}"}
                for cid, proxy in by_cid.items():
                    if cid not in federation.refused:
                        self._tell(proxy, server_round, stop)
            return None, {}

        def _tell(self, proxy: Any, server_round: int, payload: dict[str, Any]) -> None:
            """Send one last message to a site, then disconnect it."""
            try:
                ins = FitIns(ndarrays_to_parameters([]), {"m": _encode(payload)})
                proxy.fit(ins, timeout=30, group_id=server_round)
            except Exception as exc:  # noqa: BLE001 - a site gone already is not an error here
                logger.info("Could not notify site %s: %r", proxy.cid, exc)
                return
            with contextlib.suppress(Exception):  # the site hangs up as it reads the message
                proxy.reconnect(ReconnectIns(seconds=None), timeout=30, group_id=None)

        def configure_evaluate(
            self, server_round: int, parameters: Any, client_manager: Any
        ) -> Any:
            return []

        def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
            return None, {}

        def evaluate(self, server_round: int, parameters: Any) -> Any:
            return None

    return FederationStrategy()


def _progress(federation: Federation, server_round: int, answered: int, failed: int) -> str:
    names = steps(federation.plan.kind)
    if server_round <= len(names):
        return (
            f"Step {server_round}/{len(names)} ({names[server_round - 1]}): {answered} sites "
            f"answered, {failed} failed; "
            f"{len(federation.accepted)} accepted, {len(federation.refused)} refused."
        )
    return (
        f"Training round {federation.rounds_done_}/{federation.plan.rounds}: {answered} sites "
        f"answered, {failed} failed."
    )


def run_server(
    metadata: Any,
    tokens: list[str],
    output: str | os.PathLike,
    *,
    plan: Plan,
    min_sites: int = 2,
    address: str = "0.0.0.0:8080",
    certificates: tuple[str, str, str] | None = None,
    join_timeout: float = 600.0,
    round_timeout: float | None = 3600.0,
    verbose: bool = False,
) -> Path:
    """Serve a federation until its last round; save the model at ``output``.

    Parameters
    ----------
    metadata : Metadata
        The federation's table.
    tokens : list of str
        The tokens issued to the sites.
    output : path
        Where the model bundle is written (a folder, or ``.zip``).
    plan : Plan
    min_sites : int
        Sites that must connect (within ``join_timeout`` seconds) and be accepted.
    address : str
        ``host:port`` to listen on.
    certificates : (ca, certificate, key), optional
        PEM file paths: TLS. None serves without TLS (loopback or a private network only).
    round_timeout : float, optional
        Seconds a round waits for a site before leaving it out.
    """
    global _VERBOSE
    _VERBOSE = verbose
    _flwr()
    from flwr.server import ServerConfig, start_server

    federation = Federation(metadata, tokens, plan, min_sites=min_sites)
    certs = None
    if certificates is not None:
        certs = tuple(_read_pem(p) for p in certificates)
    strategy = _strategy(federation, join_timeout)
    logger.info("Serving the federation on %s (%s).", address, "TLS" if certs else "no TLS")
    start_server(
        server_address=address,
        config=ServerConfig(num_rounds=federation.total_rounds, round_timeout=round_timeout),
        strategy=strategy,
        certificates=certs,
    )
    if strategy.error is not None:
        raise strategy.error
    model = federation.result()
    return model.save(output)


def _read_pem(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FederationError(
            f"Cannot read the certificate file '{path}': {exc.strerror or exc}. See "
            "docs/FEDERATED.md for making them with openssl."
        ) from None


# =========================================================================== site
def run_site(
    data: pd.DataFrame,
    server: str,
    token: str,
    *,
    epsilon: float,
    delta: float = 1e-6,
    root_certificate: str | os.PathLike | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    seed: int | None = None,
    name: str | None = None,
    local_noise: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Take part in a federation with ``data`` (which never leaves this process except as the
    noisy statistics, DP-SGD weights or noisy marginals the protocol sends). Returns this site's
    privacy report, from its own ledger (with the assumption its epsilon holds under when the
    marginals were securely aggregated). ``local_noise``: add this site's full noise even under
    secure aggregation (see :class:`~clinsynth.federated.Site`).

    Raises
    ------
    FederationError
        When the server refused the site (the reason is in the message), stopped the
        federation, or could not be reached.
    """
    global _VERBOSE
    _VERBOSE = verbose
    _flwr()
    from flwr.client import NumPyClient, start_client

    site = Site(
        data, token, epsilon=epsilon, delta=delta, seed=seed, name=name, local_noise=local_noise
    )

    class SiteClient(NumPyClient):
        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return []

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            payload = _decode(config.get("m"))
            reply, arrays = site.handle(payload, list(parameters))
            if payload.get("phase") in ("train", "select", "measure") and "epsilon_spent" in reply:
                logger.info(
                    "%s: epsilon spent %.3f of %g.",
                    f"Round {payload.get('round')}"
                    if payload["phase"] == "train"
                    else f"Step {payload['phase']}",
                    reply["epsilon_spent"],
                    epsilon,
                )
            return arrays, 1, {"m": _encode(reply)}

        def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            return 0.0, 0, {}

    certificate = _read_pem(root_certificate) if root_certificate is not None else None
    logger.info("Joining the federation at %s (%s).", server, "TLS" if certificate else "no TLS")
    try:
        start_client(
            server_address=server,
            client=SiteClient().to_client(),
            root_certificates=certificate,
            insecure=certificate is None,
            max_wait_time=connect_timeout,
        )
    except FederationError:
        raise
    except Exception as exc:  # noqa: BLE001 - gRPC's errors become one clear line
        if site.refused is not None:
            raise site.refused from None
        detail = str(exc)
        if "UNAVAILABLE" in detail or "failed to connect" in detail.lower():
            raise FederationError(
                f"The federation server {server} could not be reached within "
                f"{connect_timeout:g} s: check that it runs, the address and port, and that "
                "both sides use TLS (--ca-cert) or neither."
            ) from None
        raise FederationError(
            f"The connection to the federation server {server} failed: "
            f"{type(exc).__name__}: {' '.join(detail.split())[:200]}"
        ) from None
    if site.refused is not None:
        raise site.refused
    if not site.contributed:
        raise FederationError(
            f"The federation server {server} could not be reached, or ended before this site "
            "took part (check the address, the port, the certificates, and the server's log)."
        )
    return site.report()
