"""``clinsynth federate``: tokens, the server, a site (docs/FEDERATED.md)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from clinsynth.cli._app import _Group, _Typer, app
from clinsynth.errors import ParameterError

federate_app = _Typer(
    name="federate",
    help="Federated synthesis: sites keep their rows and train one model together (Flower).",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(federate_app, name="federate")


def _show_progress(verbose: bool) -> None:
    """The federation's progress lines on stderr (the library only logs)."""
    from clinsynth.cli import _StderrHandler

    log = logging.getLogger("clinsynth.federated")
    if not any(getattr(h, "_federate", False) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(logging.INFO)
        handler._federate = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False  # its warnings are shown once, here
    log.setLevel(logging.INFO if verbose else logging.WARNING)


def _check_readable(option: str, path: Path | None) -> None:
    """A certificate file must exist and be readable before anything starts."""
    if path is None:
        return
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise ParameterError(
            f"Cannot read the certificate file '{path}' ({option}): {exc.strerror or exc}. "
            "See docs/FEDERATED.md for making the certificates."
        ) from None


@federate_app.command("tokens")
def tokens(
    count: int = typer.Argument(..., help="How many sites (one token each)."),
    output: Path = typer.Option(..., "--output", "-o", help="Token file to write (server side)."),
) -> None:
    """Write one fresh token per site: the server reads the file, each site gets its line."""
    from clinsynth.federated import new_tokens
    from clinsynth.io._atomic import atomic_write_text

    if count < 1:
        raise ParameterError(f"The number of tokens must be >= 1. Got {count}.")
    issued = new_tokens(count)
    lines = "".join(f"{t}\n" for t in issued)
    atomic_write_text(output, "# clinsynth federation tokens: one line per site\n" + lines)
    output.chmod(0o600)
    print(f"Wrote {count} site tokens to {output} (give line k to site k, privately).")


@federate_app.command("server")
def server(
    metadata: Path = typer.Option(..., "--metadata", "-m", help="The federation's metadata."),
    token_file: Path = typer.Option(..., "--token-file", help="Tokens the sites may join with."),
    output: Path = typer.Option(..., "--output", "-o", help="Model bundle to write."),
    model: str = typer.Option(
        "dp_marginal",
        "--model",
        help="dp_marginal (noisy marginals, no training rounds) or tvae (FedAvg of DP-SGD).",
    ),
    rounds: int = typer.Option(20, "--rounds", help="Training rounds (FedAvg; tvae)."),
    min_sites: int = typer.Option(2, "--min-sites", help="Sites needed to start."),
    local_steps: int = typer.Option(10, "--local-steps", help="DP-SGD steps per site a round."),
    min_rows: int = typer.Option(50, "--min-rows", help="Fewest rows a site may bring."),
    batch_size: int = typer.Option(256, "--batch-size", help="Expected DP-SGD batch per site."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    ca_cert: Path | None = typer.Option(None, "--ca-cert", help="TLS: CA certificate (PEM)."),
    cert: Path | None = typer.Option(None, "--cert", help="TLS: server certificate (PEM)."),
    key: Path | None = typer.Option(None, "--key", help="TLS: server private key (PEM)."),
    join_timeout: float = typer.Option(600, "--join-timeout", help="Seconds to wait for sites."),
    round_timeout: float = typer.Option(3600, "--round-timeout", help="Seconds a round waits."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model's initial weights."),
    site_column: str | None = typer.Option(
        None, "--site-column", help="Keep a column naming the site each row resembles."
    ),
    public_bounds: Path | None = typer.Option(
        None,
        "--public-bounds",
        help='Public knowledge (JSON): {"age": [0, 110], "sex": ["F", "M"]}; costs no budget.',
    ),
    secure_aggregation: bool = typer.Option(
        True,
        "--secure-aggregation/--no-secure-aggregation",
        help="dp_marginal: the server sees only the sum of the sites' masked marginals, which "
        "carries one central mechanism's noise (docs/FEDERATED.md: the trust model).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    """Serve a federation: wait for the sites, agree the statistics, train, save the model."""
    from clinsynth import Metadata
    from clinsynth.federated import Plan, read_tokens, run_server
    from clinsynth.federated._protocol import KINDS

    if model not in KINDS:
        raise ParameterError(f"--model must be one of {', '.join(KINDS)}. Got {model!r}.")
    tls = [ca_cert, cert, key]
    if any(p is not None for p in tls) and not all(p is not None for p in tls):
        raise ParameterError("TLS needs all three of --ca-cert, --cert and --key.")
    for option, path in zip(("--ca-cert", "--cert", "--key"), tls, strict=True):
        _check_readable(option, path)
    for name, value, low in (
        ("--rounds", rounds, 1),
        ("--min-sites", min_sites, 1),
        ("--local-steps", local_steps, 1),
        ("--min-rows", min_rows, 1),
        ("--batch-size", batch_size, 1),
    ):
        if value < low:
            raise ParameterError(f"{name} must be an int >= {low}. Got {value}.")
    public = {}
    if public_bounds is not None:
        try:
            public = json.loads(public_bounds.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ParameterError(f"Cannot read --public-bounds '{public_bounds}': {exc}.") from None
        if not isinstance(public, dict):
            raise ParameterError("--public-bounds must hold a JSON object of column: bounds.")
    _show_progress(not quiet)
    plan = Plan(
        rounds=rounds,
        local_steps=local_steps,
        min_rows=min_rows,
        seed=seed,
        model={"batch_size": batch_size},
        public=public,
        site_column=site_column,
        kind=model,
        secure_aggregation=secure_aggregation,
    )
    path = run_server(
        Metadata.load_from_json(metadata),
        read_tokens(token_file),
        output,
        plan=plan,
        min_sites=min_sites,
        address=f"{host}:{port}",
        certificates=(str(ca_cert), str(cert), str(key)) if ca_cert is not None else None,
        join_timeout=join_timeout,
        round_timeout=round_timeout,
    )
    print(f"Federated model written to {path}. Sample it with: clinsynth sample {path} -n 1000")


@federate_app.command("site")
def site(
    data: Path = typer.Argument(..., help="This site's table (its rows never leave the site)."),
    server_address: str = typer.Option(..., "--server", help="host:port of the server."),
    token: str | None = typer.Option(None, "--token", help="The token the server issued."),
    token_file: Path | None = typer.Option(None, "--token-file", help="File holding the token."),
    epsilon: float = typer.Option(..., "--epsilon", help="This site's privacy budget."),
    delta: float = typer.Option(1e-6, "--delta", help="Delta of this site's guarantee."),
    ca_cert: Path | None = typer.Option(None, "--ca-cert", help="TLS: the server's CA (PEM)."),
    site_name: str | None = typer.Option(
        None, "--site-name", help="This site's name, when the server keeps a site column."
    ),
    connect_timeout: float = typer.Option(60, "--connect-timeout", help="Seconds to wait."),
    report: Path | None = typer.Option(None, "--report", help="Write the privacy report (JSON)."),
    local_noise: bool = typer.Option(
        False,
        "--local-noise",
        help="Under secure aggregation, add this site's own full noise anyway: its epsilon then "
        "holds without trusting the server and the other sites.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    """Join a federation with this site's table; print what this site's privacy cost."""
    from clinsynth.federated import run_site
    from clinsynth.io import read_table

    _check_readable("--ca-cert", ca_cert)
    if (token is None) == (token_file is None):
        raise ParameterError("Give the site's token with --token or --token-file (one of them).")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ParameterError(f"Cannot read --token-file '{token_file}': {exc}.") from None
    if not (epsilon > 0) or not (0 < delta < 1):
        raise ParameterError(
            f"--epsilon must be > 0 and --delta in (0, 1). Got {epsilon} and {delta}."
        )
    _show_progress(not quiet)
    table = read_table(data)
    result = run_site(
        table,
        server_address,
        str(token),
        epsilon=epsilon,
        delta=delta,
        root_certificate=ca_cert,
        connect_timeout=connect_timeout,
        name=site_name,
        local_noise=local_noise,
    )
    text = json.dumps(result, indent=2)
    if report is not None:
        from clinsynth.io._atomic import atomic_write_text

        atomic_write_text(report, text + "\n")
    how = (
        "with its noisy marginals"
        if result.get("model") == "dp_marginal"
        else f"over {result['rounds_trained']} rounds"
    )
    print(
        f"This site spent epsilon {result['epsilon_spent']:.3f} of {result['epsilon']:g} "
        f"(delta {result['delta']:g}) {how}; its rows never left the site.",
        file=sys.stdout,
    )
    if result.get("assumption"):
        print(f"Assumption: {result['assumption']}.", file=sys.stdout)
