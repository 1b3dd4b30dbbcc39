"""`dcmirror cluster start --listener ...` as users run it: several listeners, one ready
line naming them all, and one-sentence refusals for contradictory or unsafe flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import clients
from tests.processes import ListenerClusterProcess, free_port, wait_until


def _start(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "x",
                           "--data-dir", str(tmp_path / "x"), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, sentence", [
    (["--port", "0", "--listener", "A=PLAINTEXT://127.0.0.1:0"],
     "--port and --listener both say where to listen"),
    (["--host", "127.0.0.1", "--listener", "A=PLAINTEXT://127.0.0.1:0"],
     "--host and --listener both say where to listen"),
    (["--listener", "A=HTTP://127.0.0.1:0"], "use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    (["--port", "0", "--advertised", "A=h:1"], "names listener 'A', which is not defined"),
    (["--port", "0", "--advertised-host", "h", "--advertised", "PLAINTEXT=h:1"],
     "--advertised-host and --advertised both say what clients are told"),
    (["--listener", "A=PLAINTEXT://127.0.0.1:0", "--advertised", "B=h:1"], "names listener 'B', which is not defined"),
    ([], "say where to listen"),
    (["--host", "10.20.30.40", "--port", "0"], "listener PLAINTEXT would let anyone who can reach 10.20.30.40 in"),
    (["--listener", "EXT=PLAINTEXT://0.0.0.0:0", "--advertised", "EXT=h.example:9092"],
     "--allow-unauthenticated"),
    (["--listener", "EXT=PLAINTEXT://0.0.0.0:0", "--allow-unauthenticated"], "clients cannot connect to"),
    (["--listener", "S=SSL://127.0.0.1:0"], "needs the broker's certificate and key"),
])
def test_refusals_are_one_sentence(tmp_path, args: list[str], sentence: str) -> None:
    res = _start(tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert sentence in res.stderr and "Traceback" not in res.stderr


def test_two_listeners_one_ready_line(tmp_path) -> None:
    # Relies on --super-users: with a SASL listener ACLs apply everywhere, so the PLAINTEXT
    # listener's anonymous producer needs to be a super user (or granted ACLs).
    c = ListenerClusterProcess("two", tmp_path / "two", {"INSIDE": "PLAINTEXT", "AUTH": "SASL_PLAINTEXT"},
                               extra_args=["--super-users", "User:ANONYMOUS"]).start()
    try:
        wait_until(lambda: "cluster two ready" in c.log_text(), what="ready line")
        ready = [line for line in c.log_text().splitlines() if "cluster two ready" in line]
        assert len(ready) == 1
        assert f"INSIDE=PLAINTEXT://127.0.0.1:{c.ports['INSIDE']}" in ready[0]
        assert f"AUTH=SASL_PLAINTEXT://127.0.0.1:{c.ports['AUTH']}" in ready[0]
        clients.produce_confluent(c.bootstrap("INSIDE"), "t", clients.make_records("k", 3), "none")
    finally:
        c.stop()
    assert "Traceback" not in c.log_text()


def test_free_port_listener_reports_its_bound_port(tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "z",
                             "--data-dir", str(tmp_path / "z"), "--listener", f"A=PLAINTEXT://127.0.0.1:{port}",
                             "--listener", "B=PLAINTEXT://127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while "ready" not in line:
            line = proc.stdout.readline()
            assert line, "exited before the ready line"
        assert f"A=PLAINTEXT://127.0.0.1:{port}" in line
        assert "B=PLAINTEXT://127.0.0.1:0" not in line and "B=PLAINTEXT://127.0.0.1:" in line
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_the_port_shorthand_takes_an_advertised_port(tmp_path) -> None:
    """Behind NAT or a port-forward: bind one port, tell clients another."""
    from confluent_kafka.admin import AdminClient

    from tests.processes import ClusterProcess, free_port

    told = free_port()
    c = ClusterProcess("nat", tmp_path / "nat", extra_args=["--advertised", f"PLAINTEXT=127.0.0.1:{told}"]).start()
    try:
        md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics(timeout=10)
        assert [(b.host, b.port) for b in md.brokers.values()] == [("127.0.0.1", told)]
        assert f"(advertised 127.0.0.1:{told})" in c.log_text()
    finally:
        c.stop()
