"""A mirror link over TLS between two dcmirror clusters: `dcmirror up` runs both with a
plaintext listener on loopback and an SSL listener that requires client certificates;
the mirror (our own client) reaches each through its SSL listener with the `client:`
block's certificate, and `dcmirror status` does too.

Relies on super users (`local.super_users`): the SSL listener that requires certificates
makes ACLs apply, so the mirror's certificate (User:CN=mirror-client) and the test's own
plaintext clients on loopback (User:ANONYMOUS) are super users."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import yaml

from peers.certs import make_pki
from tests import clients
from tests.processes import free_port, wait_for_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp: Path) -> tuple[Path, dict[str, dict[str, int]]]:
    pki = make_pki(tmp / "pki")
    ports = {name: {"PLAIN": free_port(), "SECURE": free_port()} for name in ("east", "west")}
    client = {"security_protocol": "SSL", "ssl_cafile": str(pki.ca), "ssl_certfile": str(pki.client_cert),
              "ssl_keyfile": str(pki.client_key)}
    doc = {"clusters": {name: {
        "bootstrap": f"127.0.0.1:{p['SECURE']}",
        "local": {"data_dir": f"./data/{name}",
                  "listeners": [f"PLAIN=PLAINTEXT://127.0.0.1:{p['PLAIN']}", f"SECURE=SSL://127.0.0.1:{p['SECURE']}"],
                  "ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key),
                  "ssl_cafile": str(pki.ca), "ssl_client_auth": "required",
                  "super_users": ["User:CN=mirror-client", "User:ANONYMOUS"]},
        "client": client} for name, p in ports.items()},
        "links": [{"name": "east-to-west", "source": "east", "target": "west", "topics": ["orders.*"],
                   "sync_interval_s": 1}]}
    path = tmp / "tls.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, ports


def test_mirror_link_and_status_over_ssl_listeners(tmp_path) -> None:
    cfg, ports = _config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", "up", "--no-live", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    east, west = (f"127.0.0.1:{ports[n]['PLAIN']}" for n in ("east", "west"))
    try:
        for p in ports.values():
            wait_for_port(p["PLAIN"], proc=proc)
            wait_for_port(p["SECURE"], proc=proc)
        clients.create_topic(east, "orders.tls", 2)
        clients.produce_confluent(east, "orders.tls", clients.make_records("tls", 40), "none")
        wait_until(lambda: sum(clients.end_offsets(west, "orders.tls", 2).values()) == 40,
                   what="records mirrored over TLS")
        res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(cfg)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "east-to-west" in res.stdout and "Traceback" not in res.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    text = out.decode()
    assert proc.returncode == 0, text[-2000:]
    assert "Traceback" not in text
    assert "SECURE=SSL://127.0.0.1:" in text  # the ready lines name the TLS listener
    failed = [line for line in text.splitlines() if "TLS handshake failed" in line]
    assert all("closed the connection during the handshake" in line for line in failed), failed  # port probes
