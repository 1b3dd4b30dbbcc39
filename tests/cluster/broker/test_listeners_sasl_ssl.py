"""SASL over TLS (a SASL_SSL listener): real clients authenticate with SCRAM through our
TLS layer and produce and consume; the session says SASL_SSL and the SASL principal.

Relies on ACLs, not super users: alice is granted Create/Write/Read on topics prefixed `t-`
(a SASL listener makes the broker deny by default)."""

from __future__ import annotations

import asyncio

import pytest

from cluster.auth.acl import Operation, PatternType
from peers.certs import make_pki
from tests.cluster.broker.acl_helpers import grant
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.sasl_helpers import API_VERSIONS, PASSWORD, sasl_broker, scram_login
from tests.cluster.broker.tls_helpers import client_context
from tests.secure_clients import LIBRARIES, Sec, consume, produce


@pytest.fixture
async def broker_and_pki(tmp_path):
    pki = make_pki(tmp_path / "pki")
    b = await sasl_broker(tmp_path, "SASL_SSL", ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key)
    for op in (Operation.CREATE, Operation.WRITE, Operation.READ):
        grant(b, op, name="t-", pattern=PatternType.PREFIXED)
    yield b, pki
    await b.stop()


@pytest.mark.parametrize("lib", LIBRARIES)
async def test_real_clients_over_sasl_ssl(broker_and_pki, lib: str) -> None:
    b, pki = broker_and_pki
    bootstrap = f"127.0.0.1:{b.config.port}"
    sec = Sec("SASL_SSL", cafile=pki.ca, mechanism="SCRAM-SHA-512", username="alice", password=PASSWORD)
    values = [f"{lib}-{i}".encode() for i in range(10)]
    await asyncio.to_thread(produce, lib, bootstrap, f"t-{lib}", values, sec)
    assert await asyncio.to_thread(consume, lib, bootstrap, f"t-{lib}", 10, sec) == values


async def test_session_after_scram_over_tls(broker_and_pki) -> None:
    b, pki = broker_and_pki
    r, w = await asyncio.open_connection("127.0.0.1", b.config.port, ssl=client_context(pki.ca),
                                         server_hostname="127.0.0.1")
    conn = RawConn(r, w)
    await conn.call(18, 3, API_VERSIONS)
    assert (await scram_login(conn, "SCRAM-SHA-256", "alice", PASSWORD)).error_code == 0
    [s] = [c.session for c in b.connections.connections]
    assert (s.security_protocol, s.principal, s.authenticated) == ("SASL_SSL", "User:alice", True)
    conn.close()
