"""Several listeners on one broker: each client is told the advertised address of the
listener it came in on (Metadata, FindCoordinator, DescribeCluster), and each connection
carries a Session naming its listener, protocol and address."""

from __future__ import annotations

import pytest

from cluster.auth.listeners import parse_listener
from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from tests.cluster.broker.rawconn import RawConn


@pytest.fixture
async def two_listener_broker(tmp_path):
    a = parse_listener("INSIDE=PLAINTEXT://127.0.0.1:0")
    b = parse_listener("OUTSIDE=PLAINTEXT://127.0.0.1:0")
    b.advertised_host, b.advertised_port = "outside.example", 19092
    s = parse_listener("SECURE=SASL_PLAINTEXT://127.0.0.1:0")
    # Relies on a super user: the SASL listener makes ACLs apply on every listener (as in
    # Kafka), so the PLAINTEXT listeners' User:ANONYMOUS would be denied FindCoordinator and
    # DescribeCluster; these tests are about addresses, not authorization.
    broker = Broker(BrokerConfig(name="multi", data_dir=tmp_path / "d", listeners=[a, b, s],
                                 super_users=("User:ANONYMOUS",)))
    await broker.start()
    yield broker
    await broker.stop()


async def _answers(port: int) -> list[tuple[str, int]]:
    conn = await RawConn.open(port)
    try:
        md = await conn.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                     "include_topic_authorized_operations": False})
        fc = await conn.call(10, 4, {"key_type": 0, "coordinator_keys": ["g"]})
        dc = await conn.call(60, 0, {"include_cluster_authorized_operations": False})
        return [(md.brokers[0].host, md.brokers[0].port),
                (fc.coordinators[0].host, fc.coordinators[0].port),
                (dc.brokers[0].host, dc.brokers[0].port)]
    finally:
        conn.close()


async def test_each_listener_advertises_its_own_address(two_listener_broker) -> None:
    inside, outside, secure = two_listener_broker.config.listeners
    assert inside.port and outside.port and secure.port and len({inside.port, outside.port, secure.port}) == 3
    assert two_listener_broker.config.port == inside.port  # the primary listener
    assert await _answers(inside.port) == [("127.0.0.1", inside.port)] * 3
    assert await _answers(outside.port) == [("outside.example", 19092)] * 3


async def test_connections_carry_their_listener_session(two_listener_broker) -> None:
    inside, _, secure = two_listener_broker.config.listeners
    plain, sasl = await RawConn.open(inside.port), await RawConn.open(secure.port)
    try:
        for c in (plain, sasl):  # one round trip: the connection is registered and served
            await c.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
        sessions = {c.session.listener: c.session for c in two_listener_broker.connections.connections}
        assert set(sessions) == {"INSIDE", "SECURE"}
        assert sessions["INSIDE"].security_protocol == "PLAINTEXT" and sessions["INSIDE"].authenticated
        assert sessions["SECURE"].security_protocol == "SASL_PLAINTEXT"
        assert sessions["SECURE"].authenticated is False
        assert all(s.host == "127.0.0.1" and s.principal == "User:ANONYMOUS" for s in sessions.values())
        assert two_listener_broker.config.authenticates
    finally:
        plain.close()
        sasl.close()


def test_broker_config_refusals(tmp_path) -> None:
    with pytest.raises(ValueError, match="would let anyone who can reach 10.9.8.7 in"):
        BrokerConfig(name="x", data_dir=tmp_path, host="10.9.8.7", port=0)
    BrokerConfig(name="x", data_dir=tmp_path, host="10.9.8.7", port=0, allow_unauthenticated=True)
    assert not BrokerConfig(name="x", data_dir=tmp_path, port=0).authenticates
    with pytest.raises(ValueError, match="needs the broker's certificate and key"):
        BrokerConfig(name="x", data_dir=tmp_path, listeners=[parse_listener("S=SSL://127.0.0.1:0")])
