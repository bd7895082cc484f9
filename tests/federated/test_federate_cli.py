"""``clinsynth federate``: the command line, and federations of a server and two sites run as
processes on loopback (Flower over gRPC): TVAE without TLS; the marginal-based model over TLS,
with a private CA and a server certificate for localhost made at test time (``cryptography``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
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
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

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
        *("-o", "model.zip", "--model", "tvae", "--rounds", "2", "--local-steps", "2"),
        *("--batch-size", "64"),
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


# --------------------------------------------------------------------------- TLS
def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(folder: Path, stem: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed certificate authority, written to ``<stem>.crt``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{stem} CA"))
        .issuer_name(_name(f"{stem} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_server_certificate(folder: Path, ca_key, ca_cert) -> None:
    """``server.crt``/``server.key`` for localhost and 127.0.0.1, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(_pem(key))


@pytest.mark.slow
def test_marginal_federation_over_tls_on_loopback(tmp_path):
    df, md = simulate_cohort(400, seed=7)
    spec = md.get_table("cohort").to_dict()["columns"]
    md.get_table("cohort").columns = {c: spec[c] for c in COLUMNS}
    md.save_to_json(tmp_path / "meta.json")
    df = df[COLUMNS]
    df.iloc[:250].to_csv(tmp_path / "a.csv", index=False)
    df.iloc[250:].to_csv(tmp_path / "b.csv", index=False)
    ca_key, ca_cert = make_ca(tmp_path, "ca")
    make_server_certificate(tmp_path, ca_key, ca_cert)
    make_ca(tmp_path, "stranger")  # a CA the server's certificate does not come from
    assert main(["federate", "tokens", "3", "-o", str(tmp_path / "tokens.txt")]) == 0
    tokens = [x for x in (tmp_path / "tokens.txt").read_text().splitlines() if x[0] != "#"]
    port = _free_port()
    server = [
        *("federate", "server", "-m", "meta.json", "--token-file", "tokens.txt"),
        *("-o", "model.zip", "--model", "dp_marginal", "--min-sites", "2"),
        *("--host", "127.0.0.1", "--port", str(port), "--join-timeout", "60"),
        *("--ca-cert", "ca.crt", "--cert", "server.crt", "--key", "server.key"),
    ]
    sites = [
        ["a.csv", "--token", tokens[0], "--ca-cert", "ca.crt", "--server", f"localhost:{port}"],
        ["b.csv", "--token", tokens[1], "--ca-cert", "ca.crt", "--server", f"127.0.0.1:{port}"],
        [  # trusts another CA: TLS refuses the server's certificate, no data is sent
            *("b.csv", "--token", tokens[2], "--ca-cert", "stranger.crt"),
            *("--server", f"localhost:{port}", "--connect-timeout", "10"),
        ],
    ]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(server, tmp_path, dict(os.environ), "server.log"))
        for i, args in enumerate(sites):
            site = ["federate", "site", *args, "--epsilon", "3", "--report", f"site{i}.json"]
            procs.append(_start(site, tmp_path, dict(os.environ), f"site{i}.log"))
        deadline = time.monotonic() + 150
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:  # our own processes only, by their ids
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait()
    names = ("server.log", "site0.log", "site1.log", "site2.log")
    logs = {n: (tmp_path / n).read_text() for n in names}
    assert [p.returncode for p in procs] == [0, 0, 0, 2], logs
    assert (
        "(TLS)" in logs["server.log"]
        and "Step 5/5 (measure): 2 sites answered" in (logs["server.log"])
    )
    assert "Traceback" not in "".join(logs.values())
    for name in ("site0.log", "site1.log"):
        assert "This site spent epsilon" in logs[name] and "with its noisy marginals" in logs[name]
        assert "Assumption: secure aggregation" in logs[name]  # the default: masked sums
    error = [line for line in logs["site2.log"].splitlines() if line.startswith("Error")]
    assert len(error) == 1 and "could not be reached" in error[0], logs["site2.log"]
    assert not (tmp_path / "site2.json").exists()
    model = load(tmp_path / "model.zip")
    rows = model.sample(100)
    assert list(rows.columns) == COLUMNS and len(rows) == 100
    report = model.get_privacy_report()
    assert len(report["federated"]["sites"]) == 2 and len(report["edges"]) == len(COLUMNS) - 1
    assert report["secure_aggregation"] is True


def test_unreadable_certificate_files_are_named_in_one_line(tmp_path, capsys):
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "tokens.txt").write_text("x" * 43 + "\n")
    code = main(
        [
            *("federate", "server", "-m", str(tmp_path / "meta.json")),
            *("--token-file", str(tmp_path / "tokens.txt"), "-o", str(tmp_path / "m.zip")),
            *("--ca-cert", str(tmp_path / "absent.crt"), "--cert", str(tmp_path / "s.crt")),
            *("--key", str(tmp_path / "s.key")),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "absent.crt" in err[0]
    data = tmp_path / "a.csv"
    data.write_text("age\n1\n")
    code = main(
        [
            *("federate", "site", str(data), "--server", "127.0.0.1:1", "--token", "t" * 43),
            *("--epsilon", "3", "--ca-cert", str(tmp_path / "missing-ca.crt")),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "missing-ca.crt" in err[0] and "Cannot read the certificate file" in err[0]
