"""The clinsynth dashboard: synthetic data for people who do not program.

A Streamlit app that walks through six steps (data, metadata, model, generate, compare,
download) with the public API only. Every piece of work lives in the browser session
(``st.session_state``): two tabs never see each other's data, and nothing leaves the machine
(no usage statistics; the server listens on 127.0.0.1 only).

Start it with ``clinsynth dashboard`` or :func:`run`, or with ``streamlit run`` on
:data:`APP_PATH`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["APP_PATH", "MAX_UPLOAD_MB", "run", "streamlit_command"]

#: The Streamlit script of the dashboard.
APP_PATH = Path(__file__).with_name("app.py")
#: Largest file (in megabytes) that the upload step accepts.
MAX_UPLOAD_MB = 200


def streamlit_command(port: int = 8501, *, address: str = "127.0.0.1") -> list[str]:
    """The command line that serves the dashboard (no telemetry, local address, headless).

    Parameters
    ----------
    port : int
        TCP port of the web server.
    address : str
        Address the server listens on; keep the default so that only this machine can connect.

    Returns
    -------
    list of str

    Examples
    --------
    >>> cmd = streamlit_command(8600)
    >>> cmd[3], "--server.port=8600" in cmd, "--browser.gatherUsageStats=false" in cmd
    ('run', True, True)
    """
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        f"--server.port={int(port)}",
        f"--server.address={address}",
        f"--browser.serverAddress={address}",
        "--server.headless=true",
        f"--server.maxUploadSize={MAX_UPLOAD_MB}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.showErrorDetails=none",
        "--client.toolbarMode=minimal",
        "--theme.base=light",
    ]


def run(port: int = 8501, *, address: str = "127.0.0.1") -> int:
    """Serve the dashboard until interrupted; returns the server's exit code.

    Parameters
    ----------
    port : int
        TCP port; open ``http://127.0.0.1:<port>`` in a browser.
    address : str
        Listening address (local only by default).

    Returns
    -------
    int
        The exit code of the Streamlit server.

    Examples
    --------
    >>> from clinsynth.dashboard import run
    >>> # run(8501)  # serves until Ctrl+C
    """
    from clinsynth._extras import require

    require("streamlit", "The dashboard")
    try:
        return subprocess.call(streamlit_command(port, address=address))
    except KeyboardInterrupt:
        return 0
