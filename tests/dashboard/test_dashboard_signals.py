"""`clinsynth dashboard` never leaves its Streamlit server behind: stopped with SIGTERM (as a
service manager stops it) or killed, the server stops too and the port is freed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

_CLI = "import sys; from clinsynth.cli import main; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_command_stops_its_server(stop):
    port = _free_port()
    command = subprocess.Popen(
        [sys.executable, "-c", _CLI, "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # everything it starts can be cleaned up below
    )
    server = None
    try:
        assert _wait(lambda: _listening(port), 120), "the dashboard did not start"
        servers = _children(command.pid)
        assert len(servers) == 1
        server = servers[0]
        os.kill(command.pid, stop)  # by process id, as a service manager does
        command.wait(timeout=60)
        assert _wait(lambda: not _alive(server), 30), "the Streamlit server outlived the command"
        assert _wait(lambda: not _listening(port), 10), "the port is still taken"
    finally:
        for pid in (command.pid, server):
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if command.poll() is None:
            command.kill()
            command.wait()
