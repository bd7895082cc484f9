"""``clinsynth dashboard`` and the server settings: local address, no usage statistics."""

from __future__ import annotations

import tomllib

import pytest

from clinsynth.cli import main
from clinsynth.dashboard import APP_PATH, MAX_UPLOAD_MB, streamlit_command


def test_dashboard_command_is_registered(capsys) -> None:  # noqa: ANN001
    assert main(["dashboard", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "127.0.0.1" in out


def test_bad_port_is_one_clear_line(capsys) -> None:  # noqa: ANN001
    assert main(["dashboard", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "between 1 and 65535" in err and "Traceback" not in err


def test_server_flags_keep_data_on_this_machine() -> None:
    command = streamlit_command(8765)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_PATH)]
    for flag in (
        "--server.port=8765",
        "--server.address=127.0.0.1",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        f"--server.maxUploadSize={MAX_UPLOAD_MB}",
        "--client.showErrorDetails=none",
    ):
        assert flag in command


def test_config_beside_the_app_has_the_same_settings() -> None:
    # Read by `streamlit run <path to app.py>` (the script-level config of Streamlit).
    config = tomllib.loads((APP_PATH.parent / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["headless"] is True
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    assert config["client"]["showErrorDetails"] == "none"


@pytest.mark.parametrize("usage_statistics", [False, True])
def test_app_warns_when_usage_statistics_are_on(usage_statistics: bool) -> None:
    from dashdata import new_app
    from streamlit import config

    previous = config.get_option("browser.gatherUsageStats")
    config.set_option("browser.gatherUsageStats", usage_statistics)
    try:
        at = new_app()
    finally:
        config.set_option("browser.gatherUsageStats", previous)
    warnings = [w.value for w in at.sidebar.warning]
    if usage_statistics:
        assert "usage statistics are switched on" in warnings[0]
    else:
        assert not warnings
