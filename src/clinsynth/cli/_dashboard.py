"""``clinsynth dashboard``: start the Streamlit app on this machine (127.0.0.1)."""

from __future__ import annotations

import typer

from clinsynth.cli._app import app


@app.command("dashboard")
def dashboard(
    port: int = typer.Option(8501, "--port", "-p", help="Port of the local web server."),
) -> None:
    """Start the dashboard: synthetic data in the browser, step by step, without programming.

    Open the address it prints (http://127.0.0.1:PORT) in a browser; stop it with Ctrl+C. The
    server listens on this machine only and sends no usage statistics.

    Example: clinsynth dashboard --port 8502
    """
    from clinsynth.dashboard import run
    from clinsynth.errors import ParameterError

    if not 1 <= port <= 65535:
        raise ParameterError(f"The '--port' option must be between 1 and 65535. Got {port}.")
    typer.echo(f"clinsynth dashboard: open http://127.0.0.1:{port} (Ctrl+C stops it)")
    code = run(port)
    if code:
        raise typer.Exit(code)
