"""``clinsynth dashboard``: start the Streamlit app on this machine (127.0.0.1).

The server runs as a child process that never outlives the command: SIGTERM and SIGHUP (a
service manager, a script, a closed terminal) are forwarded to it, Ctrl+C reaches it through the
terminal, and on Linux the kernel stops it if the command itself is killed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable

import typer

from clinsynth.cli._app import app

#: Seconds the server has to stop after a signal before it is killed.
STOP_TIMEOUT_S = 10.0


@app.command("dashboard")
def dashboard(
    port: int = typer.Option(8501, "--port", "-p", help="Port of the local web server."),
) -> None:
    """Start the dashboard: synthetic data in the browser, step by step, without programming.

    Open the address it prints (http://127.0.0.1:PORT) in a browser; stop it with Ctrl+C. The
    server listens on this machine only and sends no usage statistics.

    Example: clinsynth dashboard --port 8502
    """
    from clinsynth.errors import ParameterError

    if not 1 <= port <= 65535:
        raise ParameterError(f"The '--port' option must be between 1 and 65535. Got {port}.")
    typer.echo(f"clinsynth dashboard: open http://127.0.0.1:{port} (Ctrl+C stops it)")
    code = serve(port)
    if code:
        raise typer.Exit(code)


def serve(port: int) -> int:
    """Run the Streamlit server until it stops or this process is asked to stop; returns its
    exit code (0 when stopped by a signal)."""
    from clinsynth._extras import require

    require("streamlit", "The dashboard")
    from clinsynth.dashboard import streamlit_command

    server = subprocess.Popen(streamlit_command(port), preexec_fn=_die_with_parent())
    stopped: list[int] = []

    def forward(signum: int, frame: object) -> None:
        stopped.append(signum)
        if server.poll() is None:
            server.send_signal(signum)

    previous = _install(forward)
    try:
        while True:
            try:
                code = server.wait()
                break
            except KeyboardInterrupt:  # the terminal sent Ctrl+C to the server too
                stopped.append(signal.SIGINT)
                code = _stop(server)
                break
    finally:
        _restore(previous)
        if server.poll() is None:
            _stop(server)
    return 0 if stopped else code


def _install(handler: Callable[[int, object], None]) -> dict[int, object]:
    previous: dict[int, object] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        with contextlib.suppress(ValueError):  # not the main thread: leave the defaults
            previous[signum] = signal.signal(signum, handler)
    return previous


def _restore(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _stop(server: subprocess.Popen) -> int:
    """Wait for the server to stop (it got the signal); terminate, then kill it if it does not."""
    for action in (None, server.terminate, server.kill):
        if action is not None and server.poll() is None:
            action()
        try:
            return server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            continue
    return server.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a function that makes the child get SIGTERM when this process dies, even by
    SIGKILL (which cannot be forwarded)."""
    if not sys.platform.startswith("linux"):
        return None

    def set_death_signal() -> None:
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return set_death_signal
