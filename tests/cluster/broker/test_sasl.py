"""Broker SASL over raw connections: SCRAM and PLAIN right/wrong/unknown, gating before
authentication, pre-auth frame size, failed-auth delay and close, garbage tokens,
SaslHandshake v0 raw tokens, KIP-368 re-authentication and expiry; the password never logged.

Relies on neither ACLs nor super users: after logging in these tests only send Metadata for
no topics and ApiVersions, which need no ACL (the SASL listener makes the broker deny by default)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time

import pytest
from scramp import ScramClient

from cluster.auth.listeners import parse_listener
from cluster.auth.sasl_server import PLAIN_FAILED, scram_failed
from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.sasl_helpers import (
    PASSWORD,
    metadata_ok,
    plain_login,
    sasl_broker,
    scram_login,
    until,
)

SCRAMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]


@pytest.fixture(autouse=True)
def no_password_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    assert PASSWORD not in caplog.text
    assert "bad-pw-1" not in caplog.text


@pytest.mark.parametrize("mech", SCRAMS)
async def test_scram_right_wrong_unknown(tmp_path, mech) -> None:
    broker = await sasl_broker(tmp_path)
    try:
        ok = await RawConn.open(broker.config.port)
        resp = await scram_login(ok, mech, "alice", PASSWORD)
        assert resp.error_code == 0
        assert await metadata_ok(ok)
        messages = []
        for user, pw in (("alice", "bad-pw-1"), ("mallory", PASSWORD)):
            c = await RawConn.open(broker.config.port)
            resp = await scram_login(c, mech, user, pw)
            assert resp.error_code == 58
            messages.append(resp.error_message)
            assert await c.closed_by_peer()
        assert messages == [scram_failed(mech)] * 2
        assert await metadata_ok(ok)  # everyone else still served
    finally:
        await broker.stop()


async def test_plain_not_offered_over_plaintext_unless_allowed(tmp_path) -> None:
    broker = await sasl_broker(tmp_path, sasl_mechanisms=("PLAIN", "SCRAM-SHA-256"), sasl_plain_over_plaintext=True)
    # What a broker with a SASL_SSL listener too does on its SASL_PLAINTEXT one (load-time
    # refusal covers the all-plaintext case: test_sasl_config_refusals).
    broker.config.sasl_plain_over_plaintext = False
    try:
        c = await RawConn.open(broker.config.port)
        hs = await c.call(17, 1, {"mechanism": "PLAIN"})
        assert hs.error_code == 33 and list(hs.mechanisms) == ["SCRAM-SHA-256"]
        assert await c.closed_by_peer()
    finally:
        await broker.stop()


def test_sasl_config_refusals(tmp_path) -> None:
    sasl = lambda: [parse_listener("S=SASL_PLAINTEXT://127.0.0.1:0")]  # noqa: E731
    with pytest.raises(ValueError, match="unknown SASL mechanism 'GSSAPI'"):
        BrokerConfig(name="x", data_dir=tmp_path, listeners=sasl(), sasl_mechanisms="SCRAM-SHA-256,GSSAPI")
    with pytest.raises(ValueError, match="PLAIN would send passwords in the clear"):
        BrokerConfig(name="x", data_dir=tmp_path, listeners=sasl(), sasl_mechanisms=("PLAIN",))
    with pytest.raises(ValueError, match="no listener uses SASL"):
        BrokerConfig(name="x", data_dir=tmp_path, port=0, sasl_mechanisms=("SCRAM-SHA-256",))
    with pytest.raises(ValueError, match="sasl_plain_over_plaintext is set"):
        BrokerConfig(name="x", data_dir=tmp_path, listeners=sasl(), sasl_plain_over_plaintext=True)
    cfg = BrokerConfig(name="x", data_dir=tmp_path, listeners=sasl(), sasl_mechanisms="PLAIN, SCRAM-SHA-512",
                       sasl_plain_over_plaintext=True)
    assert cfg.sasl_mechanisms == ("PLAIN", "SCRAM-SHA-512") and cfg.sasl_offered("SASL_PLAINTEXT") == ["PLAIN", "SCRAM-SHA-512"]
    assert BrokerConfig(name="x", data_dir=tmp_path, listeners=sasl()).sasl_mechanisms == ("SCRAM-SHA-256", "SCRAM-SHA-512")


async def test_handshake_on_plaintext_listener_is_illegal(tmp_path) -> None:
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "p", port=0))
    await broker.start()
    try:
        c = await RawConn.open(broker.config.port)
        assert (await c.call(17, 1, {"mechanism": "SCRAM-SHA-256"})).error_code == 34
        assert await c.closed_by_peer()
    finally:
        await broker.stop()


async def test_plain_allowed_right_wrong_unknown(tmp_path) -> None:
    broker = await sasl_broker(tmp_path, sasl_mechanisms=("PLAIN",), sasl_plain_over_plaintext=True)
    try:
        ok = await RawConn.open(broker.config.port)
        assert (await plain_login(ok, "alice", PASSWORD)).error_code == 0
        assert await metadata_ok(ok)
        for user, pw in (("alice", "bad-pw-1"), ("mallory", PASSWORD)):
            c = await RawConn.open(broker.config.port)
            resp = await plain_login(c, user, pw)
            assert (resp.error_code, resp.error_message) == (58, PLAIN_FAILED)
            assert await c.closed_by_peer()
    finally:
        await broker.stop()


async def test_unknown_mechanism_lists_enabled(tmp_path) -> None:
    broker = await sasl_broker(tmp_path, sasl_mechanisms=("SCRAM-SHA-512",))
    try:
        c = await RawConn.open(broker.config.port)
        hs = await c.call(17, 1, {"mechanism": "SCRAM-SHA-256"})
        assert hs.error_code == 33 and list(hs.mechanisms) == ["SCRAM-SHA-512"]
        assert await c.closed_by_peer()
    finally:
        await broker.stop()


@pytest.mark.parametrize("api", ["metadata", "produce", "api_versions_then_metadata", "mid_exchange"])
async def test_gating_before_authentication(tmp_path, caplog, api) -> None:
    broker = await sasl_broker(tmp_path)
    try:
        c = await RawConn.open(broker.config.port)
        if api == "api_versions_then_metadata":
            assert (await c.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})).error_code == 0
        if api == "mid_exchange":
            assert (await c.call(17, 1, {"mechanism": "SCRAM-SHA-256"})).error_code == 0
            await c.call(36, 2, {"auth_bytes": ScramClient(["SCRAM-SHA-256"], "alice", "x").get_client_first().encode()})
        if api == "produce":
            req = build(codec.request_schema(0, 9), {"transactional_id": None, "acks": 1, "timeout": 1000,
                                                     "topic_data": []})
            await c.send_raw(frame(codec.encode_request(req, 9, "t", api_key=0, api_version=9)))
        else:
            req = build(codec.request_schema(3, 12), {"topics": [], "allow_auto_topic_creation": False,
                                                      "include_topic_authorized_operations": False})
            await c.send_raw(frame(codec.encode_request(req, 9, "t", api_key=3, api_version=12)))
        assert await c.closed_by_peer()
        assert sum("before SASL authentication" in r.getMessage() for r in caplog.records) == 1
        ok = await RawConn.open(broker.config.port)
        assert (await scram_login(ok, "SCRAM-SHA-256", "alice", PASSWORD)).error_code == 0
    finally:
        await broker.stop()


@pytest.mark.parametrize("size", [2**31 - 1, 600 * 1024])
async def test_large_frame_before_authentication_closed(tmp_path, caplog, size) -> None:
    broker = await sasl_broker(tmp_path)
    try:
        c = await RawConn.open(broker.config.port)
        await c.send_raw(struct.pack(">i", size) + b"\0" * 100)
        assert await c.closed_by_peer()
        assert sum("sasl.server.max.receive.size" in r.getMessage() for r in caplog.records) == 1
        # after authentication the same size is only bounded by socket.request.max.bytes
        ok = await RawConn.open(broker.config.port)
        assert (await scram_login(ok, "SCRAM-SHA-512", "alice", PASSWORD)).error_code == 0
        assert await metadata_ok(ok)
    finally:
        await broker.stop()


async def test_failed_authentication_answered_after_delay(tmp_path) -> None:
    delay_ms = 300
    broker = await sasl_broker(tmp_path, connection_failed_authentication_delay_ms=delay_ms)
    try:
        c = await RawConn.open(broker.config.port)
        assert (await c.call(17, 1, {"mechanism": "PLAIN"})).error_code == 33  # not a failed *authentication*
        c = await RawConn.open(broker.config.port)
        await c.call(17, 1, {"mechanism": "SCRAM-SHA-256"})
        client = ScramClient(["SCRAM-SHA-256"], "alice", "bad-pw-1")
        first = await c.call(36, 2, {"auth_bytes": client.get_client_first().encode()})
        client.set_server_first(first.auth_bytes.decode())
        t0 = time.monotonic()
        resp = await c.call(36, 2, {"auth_bytes": client.get_client_final().encode()})
        elapsed = time.monotonic() - t0
        assert resp.error_code == 58
        assert elapsed >= delay_ms / 1000  # a lower bound: the broker waited before answering
        assert await c.closed_by_peer()
    finally:
        await broker.stop()


@pytest.mark.parametrize("token", [b"", b"\xff\xfe\x00garbage", b"n,,n=alice,r=abc,tokenauth=true", b"x" * 4000])
async def test_garbage_tokens_close_one_connection(tmp_path, caplog, token) -> None:
    broker = await sasl_broker(tmp_path, connection_failed_authentication_delay_ms=0)
    try:
        other = await RawConn.open(broker.config.port)
        assert (await scram_login(other, "SCRAM-SHA-256", "alice", PASSWORD)).error_code == 0
        c = await RawConn.open(broker.config.port)
        assert (await c.call(17, 1, {"mechanism": "SCRAM-SHA-256"})).error_code == 0
        resp = await c.call(36, 2, {"auth_bytes": token})
        assert resp.error_code == 58
        assert await c.closed_by_peer()
        assert sum("SASL authentication failed" in r.getMessage() for r in caplog.records) == 1
        assert await metadata_ok(other)
    finally:
        await broker.stop()


async def test_authenticate_without_handshake_closed(tmp_path) -> None:
    broker = await sasl_broker(tmp_path)
    try:
        c = await RawConn.open(broker.config.port)
        resp = await c.call(36, 2, {"auth_bytes": b"n,,n=alice,r=abc"})
        assert resp.error_code == 34  # ILLEGAL_SASL_STATE
        assert await c.closed_by_peer()
    finally:
        await broker.stop()


async def raw_token(c: RawConn, token: bytes) -> bytes:
    await c.send_raw(struct.pack(">i", len(token)) + token)
    size = struct.unpack(">i", await asyncio.wait_for(c.reader.readexactly(4), 10))[0]
    return await asyncio.wait_for(c.reader.readexactly(size), 10)


@pytest.mark.parametrize("mech", SCRAMS)
async def test_handshake_v0_raw_tokens(tmp_path, mech) -> None:
    broker = await sasl_broker(tmp_path)
    try:
        c = await RawConn.open(broker.config.port)
        assert (await c.call(17, 0, {"mechanism": mech})).error_code == 0
        client = ScramClient([mech], "alice", PASSWORD)
        client.set_server_first((await raw_token(c, client.get_client_first().encode())).decode())
        client.set_server_final((await raw_token(c, client.get_client_final().encode())).decode())
        assert await metadata_ok(c)
        bad = await RawConn.open(broker.config.port)
        assert (await bad.call(17, 0, {"mechanism": mech})).error_code == 0
        client = ScramClient([mech], "alice", "bad-pw-1")
        client.set_server_first((await raw_token(bad, client.get_client_first().encode())).decode())
        await bad.send_raw(struct.pack(">i", 200) + client.get_client_final().encode().ljust(200))
        assert await bad.closed_by_peer()  # v0: no error reply, the connection is closed
    finally:
        await broker.stop()


async def test_reauthentication_and_expiry(tmp_path, caplog) -> None:
    lifetime_ms = 400
    broker = await sasl_broker(tmp_path, connections_max_reauth_ms=lifetime_ms)
    try:
        lazy, diligent = await RawConn.open(broker.config.port), await RawConn.open(broker.config.port)
        t0 = time.monotonic()
        for c in (lazy, diligent):
            resp = await scram_login(c, "SCRAM-SHA-256", "alice", PASSWORD)
            assert resp.error_code == 0 and resp.session_lifetime.total_seconds() * 1000 == lifetime_ms
        assert await metadata_ok(lazy)
        # KIP-368: re-authenticate on the live connection before the deadline
        resp = await scram_login(diligent, "SCRAM-SHA-256", "alice", PASSWORD)
        assert resp.error_code == 0
        t_reauth = time.monotonic()
        await until(lambda: time.monotonic() > t0 + lifetime_ms / 1000 + 0.05)
        req = build(codec.request_schema(3, 12), {"topics": [], "allow_auto_topic_creation": False,
                                                  "include_topic_authorized_operations": False})
        await lazy.send_raw(frame(codec.encode_request(req, 99, "t", api_key=3, api_version=12)))
        assert await lazy.closed_by_peer()
        assert sum("expired (connections.max.reauth.ms)" in r.getMessage() for r in caplog.records) == 1
        if time.monotonic() < t_reauth + lifetime_ms / 1000:
            assert await metadata_ok(diligent)
    finally:
        await broker.stop()


async def test_reauthentication_as_other_user_refused(tmp_path) -> None:
    broker = await sasl_broker(tmp_path, connections_max_reauth_ms=60_000,
                               connection_failed_authentication_delay_ms=0)
    broker.credentials.upsert_password("bob", "SCRAM-SHA-256", PASSWORD)
    try:
        c = await RawConn.open(broker.config.port)
        assert (await scram_login(c, "SCRAM-SHA-256", "alice", PASSWORD)).error_code == 0
        resp = await scram_login(c, "SCRAM-SHA-256", "bob", PASSWORD)
        assert resp.error_code == 58 and "Cannot change principals" in resp.error_message
        assert await c.closed_by_peer()
    finally:
        await broker.stop()
