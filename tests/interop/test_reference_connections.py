"""Connection deadlines and limits next to Apache Kafka 4.3.1's answers (README table).

Both brokers run with the same short settings; raw sockets probe them the same way:
an idle connection, a frame trickled a byte at a time, one connection over
max.connections.per.ip, one over max.connections. Where we differ from Kafka on purpose
(a read deadline Kafka lacks; closing instead of blocking accept), the test says so.
"""
from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame
from peers.kafka_broker import KafkaBroker
from tests.interop.conftest import require_kafka
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop

IDLE_MS, READ_MS, PER_IP, MAX = 5000, 2000, 3, 5  # the limits test ends inside IDLE_MS
API_VERSIONS = frame(codec.encode_request(
    build(codec.request_schema(18, 3), {"client_software_name": "p", "client_software_version": "1"}),
    1, "probe", api_key=18, api_version=3))


@pytest.fixture(scope="module")
def brokers(tmp_path_factory) -> Iterator[dict[str, int]]:
    require_kafka()
    kafka = KafkaBroker(extra_config={"connections.max.idle.ms": str(IDLE_MS),
                                      "max.connections.per.ip": str(PER_IP),
                                      "max.connections": str(MAX)})
    ours = ClusterProcess("conn", tmp_path_factory.mktemp("conn"), extra_args=[
        "--connections-max-idle-ms", str(IDLE_MS), "--request-read-timeout-ms", str(READ_MS),
        "--max-connections-per-ip", str(PER_IP), "--max-connections", str(MAX)])
    with kafka:
        ours.start()
        try:
            yield {"kafka": kafka.port, "dcmirror": ours.port}
        finally:
            ours.stop()


def connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def answer(sock: socket.socket, wait: float) -> str:
    """'answered', 'closed' or 'nothing' (within `wait` seconds) for one ApiVersions."""
    sock.settimeout(wait)
    try:
        sock.sendall(API_VERSIONS)
        data = sock.recv(65536)
    except socket.timeout:
        return "nothing"
    except OSError:
        return "closed"
    return "answered" if data else "closed"


def seconds_until_closed(sock: socket.socket, limit: float) -> float | None:
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(1)
    except socket.timeout:
        return None
    except OSError:
        data = b""
    assert data == b""
    return time.monotonic() - start


@pytest.mark.parametrize("name", ["kafka", "dcmirror"])
def test_idle_connection_closed_at_the_deadline(brokers, name: str) -> None:
    with connect(brokers[name], "127.0.0.4") as sock:
        assert answer(sock, 10) == "answered"
        closed = seconds_until_closed(sock, IDLE_MS / 1000 + 5)
    assert closed is not None and IDLE_MS / 1000 - 0.2 <= closed < IDLE_MS / 1000 + 1.5, closed


@pytest.mark.parametrize("name, expected", [
    ("kafka", "open"),  # every byte is activity to Kafka: a trickler outlives any deadline
    ("dcmirror", "closed"),  # dcmirror.connections.request.read.timeout.ms
])
def test_trickled_frame(brokers, name: str, expected: str) -> None:
    with connect(brokers[name], "127.0.0.5") as sock:
        sock.sendall((100).to_bytes(4, "big") + b"\x00\x12")
        start, outcome = time.monotonic(), "open"
        while time.monotonic() - start < READ_MS / 1000 + 3:  # one byte every 300 ms
            try:
                sock.sendall(b"\x00")
            except OSError:
                outcome = "closed"
                break
            if seconds_until_closed(sock, 0.3) is not None:
                outcome = "closed"
                break
    assert outcome == expected


@pytest.mark.parametrize("name, over_max", [
    ("kafka", "nothing"),  # Kafka stops accepting until a connection closes
    ("dcmirror", "closed"),  # we close it at once, with a log line
])
def test_connection_limits(brokers, name: str, over_max: str) -> None:
    port = brokers[name]
    held = [connect(port, "127.0.0.1") for _ in range(PER_IP)]
    try:
        assert [answer(s, 10) for s in held] == ["answered"] * PER_IP
        with connect(port, "127.0.0.1") as extra:  # over max.connections.per.ip: both close
            assert answer(extra, 5) == "closed"
        more = [connect(port, "127.0.0.2") for _ in range(MAX - PER_IP)]
        held += more
        assert [answer(s, 10) for s in more] == ["answered"] * (MAX - PER_IP)
        with connect(port, "127.0.0.3") as extra:  # over max.connections
            assert answer(extra, 2) == over_max
        # Neither made room by closing a connection it held.
        assert [seconds_until_closed(s, 0.1) for s in held] == [None] * MAX
    finally:
        for s in held:
            s.close()
