"""``clinsynth federate``: the command line, and one federation of a server and two sites run as
processes on loopback (Flower over gRPC)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinsynth import load
from clinsynth.cli import main
from clinsynth.simulate import simulate_cohort

pytest.importorskip("flwr", reason="needs the [federated] extra (Flower)")

COLUMNS = ["age", "sex", "bmi", "smoking", "family_history", "condition"]
CLI = "import sys; from clinsynth.cli import main; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_site_needs_exactly_one_token_option(tmp_path, capsys):
    data = tmp_path / "a.csv"
    data.write_text("age\n1\n")
    code = main(["federate", "site", str(data), "--server", "127.0.0.1:1", "--epsilon", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--token or --token-file" in err[0]


def test_tokens_command_writes_a_private_file(tmp_path, capsys):
    path = tmp_path / "tokens.txt"
    assert main(["federate", "tokens", "3", "-o", str(path)]) == 0
    lines = [x for x in path.read_text().splitlines() if not x.startswith("#")]
    assert len(set(lines)) == 3
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.slow
def test_server_and_two_sites_on_loopback(tmp_path):
    df, md = simulate_cohort(400, seed=5)
    spec = md.get_table("cohort").to_dict()["columns"]
    md.get_table("cohort").columns = {c: spec[c] for c in COLUMNS}
    md.save_to_json(tmp_path / "meta.json")
    df = df[COLUMNS]
    df.iloc[:200].to_csv(tmp_path / "a.csv", index=False)
    df.iloc[200:].to_csv(tmp_path / "b.csv", index=False)
    assert main(["federate", "tokens", "2", "-o", str(tmp_path / "tokens.txt")]) == 0
    tokens = [x for x in (tmp_path / "tokens.txt").read_text().splitlines() if x[0] != "#"]
    (tmp_path / "b.token").write_text(tokens[1] + "\n")
    port = _free_port()
    env = dict(os.environ)
    server = [
        *("federate", "server", "-m", "meta.json", "--token-file", "tokens.txt"),
        *("-o", "model.zip", "--rounds", "2", "--local-steps", "2", "--batch-size", "64"),
        *("--host", "127.0.0.1", "--port", str(port), "--join-timeout", "60"),
    ]
    sites = [
        ["a.csv", "--token", tokens[0]],
        ["b.csv", "--token-file", "b.token", "--report", "b.json"],
    ]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(server, tmp_path, env, "server.log"))
        for i, args in enumerate(sites):
            site = ["federate", "site", *args, "--server", f"127.0.0.1:{port}", "--epsilon", "3"]
            procs.append(_start(site, tmp_path, env, f"site{i}.log"))
        deadline = time.monotonic() + 150
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:  # our own processes only, by their ids
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait()
    logs = {n: (tmp_path / n).read_text() for n in ("server.log", "site0.log", "site1.log")}
    assert [p.returncode for p in procs] == [0, 0, 0], logs
    assert "Training round 2/2: 2 sites answered, 0 failed." in logs["server.log"]
    assert "Traceback" not in "".join(logs.values())
    for name in ("site0.log", "site1.log"):
        assert "This site spent epsilon" in logs[name] and "of 3" in logs[name]
    assert '"rounds_trained": 2' in (tmp_path / "b.json").read_text()
    model = load(tmp_path / "model.zip")
    rows = model.sample(100)
    assert list(rows.columns) == COLUMNS and len(rows) == 100
    assert len(model.get_privacy_report()["federated"]["sites"]) == 2


def _start(args: list[str], cwd: Path, env: dict, log: str) -> subprocess.Popen:
    out = open(cwd / log, "w")  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, *args], cwd=cwd, env=env, stdout=out, stderr=out
        )
    finally:
        out.close()
