"""TLS listeners on an in-process broker, seen from raw sockets: Metadata per listener,
the principal a client certificate gives, client-auth modes, TLS 1.2 minimum, refused
certificates, and bad input (TLS to a plaintext port and the reverse, failed handshakes)
costing one connection and one log line while the broker serves everyone else.

Relies on neither ACLs nor super users: with `required` client auth ACLs apply, and these
tests send only Metadata for no topics, which needs none."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import pytest

from cluster.auth.listeners import parse_listener
from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.broker.tls import TlsSetupError
from peers.certs import make_pki
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.tls_helpers import ALICE, ALICE_PRINCIPAL, client_context, sign_client

LOGGER = "cluster.broker.connection"


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


async def _broker(tmp_path, pki, client_auth: str = "none") -> Broker:
    b = Broker(BrokerConfig(
        name="tls", data_dir=tmp_path / "d",
        listeners=[parse_listener("PLAIN=PLAINTEXT://127.0.0.1:0"), parse_listener("SECURE=SSL://127.0.0.1:0")],
        ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key,
        ssl_cafile=pki.ca if client_auth != "none" else None, ssl_client_auth=client_auth))
    await b.start()
    return b


def _port(b: Broker, name: str) -> int:
    return b.config.listener(name).port


async def _tls_conn(port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> RawConn:
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
    return RawConn(r, w)


async def _metadata(conn: RawConn) -> tuple[str, int]:
    md = await conn.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                 "include_topic_authorized_operations": False})
    return md.brokers[0].host, md.brokers[0].port


def _sessions(b: Broker, listener: str) -> list:
    return [c.session for c in b.connections.connections if c.session and c.session.listener == listener]


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]


async def test_plaintext_and_ssl_on_one_broker_each_advertise_their_own(tmp_path, pki) -> None:
    b = await _broker(tmp_path, pki)
    try:
        plain = await RawConn.open(_port(b, "PLAIN"))
        secure = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca))
        assert await _metadata(plain) == ("127.0.0.1", _port(b, "PLAIN"))
        assert await _metadata(secure) == ("127.0.0.1", _port(b, "SECURE"))
        [s] = _sessions(b, "SECURE")
        assert s.security_protocol == "SSL" and s.principal == "User:ANONYMOUS" and s.authenticated
        assert not b.config.authenticates  # client auth none: TLS, but no identity
        plain.close()
        secure.close()
    finally:
        await b.stop()


async def test_client_certificate_gives_the_principal(tmp_path, pki) -> None:
    cert, key = sign_client(pki, tmp_path, ALICE)
    b = await _broker(tmp_path, pki, client_auth="required")
    try:
        assert b.config.authenticates
        conn = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca, cert, key))
        assert await _metadata(conn) == ("127.0.0.1", _port(b, "SECURE"))
        [s] = _sessions(b, "SECURE")
        assert s.principal == ALICE_PRINCIPAL and s.host == "127.0.0.1"
        conn.close()
    finally:
        await b.stop()


async def test_required_client_auth_refuses_a_client_without_certificate(tmp_path, pki, caplog) -> None:
    b = await _broker(tmp_path, pki, client_auth="required")
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            conn = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca))
            # TLS 1.3: the refusal arrives after the client's handshake finished
            await _metadata(conn)
        await _wait(lambda: b.connections.closed["tls handshake"] == 1)
        assert [m for m in _lines(caplog) if "TLS handshake failed" in m and "certificate" in m]
        # a certificate from an unrelated CA is refused the same way
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            conn = await _tls_conn(_port(b, "SECURE"),
                                   client_context(pki.ca, pki.other_client_cert, pki.other_client_key))
            await _metadata(conn)
        await _wait(lambda: b.connections.closed["tls handshake"] == 2)
    finally:
        await b.stop()


async def test_requested_client_auth_takes_a_certificate_when_offered(tmp_path, pki) -> None:
    cert, key = sign_client(pki, tmp_path, ALICE)
    b = await _broker(tmp_path, pki, client_auth="requested")
    try:
        anon = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca))
        alice = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca, cert, key))
        await _metadata(anon)
        await _metadata(alice)
        assert sorted(s.principal for s in _sessions(b, "SECURE")) == ["User:ANONYMOUS", ALICE_PRINCIPAL]
        anon.close()
        alice.close()
    finally:
        await b.stop()


async def test_client_side_refusals_untrusted_ca_wrong_host(tmp_path, pki) -> None:
    b = await _broker(tmp_path, pki)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer|self.signed|verify failed"):
            await _tls_conn(_port(b, "SECURE"), client_context(pki.other_ca))
        with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch|not valid for"):
            await _tls_conn(_port(b, "SECURE"), client_context(pki.ca), host="wrong.example")
        ok = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca), host="localhost")
        await _metadata(ok)
        ok.close()
    finally:
        await b.stop()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tls_below_1_2_is_refused(tmp_path, pki, caplog, version) -> None:
    b = await _broker(tmp_path, pki)
    try:
        try:
            ctx = client_context(pki.ca, max_version=version)
        except (ValueError, ssl.SSLError) as exc:
            pytest.skip(f"this OpenSSL cannot even build a {version.name} client: {exc}")
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _tls_conn(_port(b, "SECURE"), ctx)
        await _wait(lambda: b.connections.closed["tls handshake"] == 1)
        [line] = [m for m in _lines(caplog) if "TLS handshake failed" in m]
        assert "SECURE" in line
    finally:
        await b.stop()


async def _wait(cond, what: str = "condition", show=None) -> None:
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}: {show() if show else ''}")


def _client_hello(pki) -> bytes:
    """The first flight of a real TLS client, captured through memory BIOs."""
    ctx = client_context(pki.ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


async def _raw_closed(port: int, data: bytes) -> bool:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data)
    await w.drain()
    try:
        rest = await asyncio.wait_for(r.read(), 10)
    except ConnectionError:
        rest = b""
    w.close()
    return rest == b""


async def test_bad_input_costs_one_connection_and_one_line(tmp_path, pki, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    b = await _broker(tmp_path, pki)
    try:
        bystander = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca))
        plain_bystander = await RawConn.open(_port(b, "PLAIN"))
        # 1. a TLS ClientHello to the plaintext port
        caplog.clear()
        assert await _raw_closed(_port(b, "PLAIN"), _client_hello(pki))
        [line] = _lines(caplog)
        assert "began a TLS handshake" in line and "PLAIN" in line
        # 2. a plaintext Kafka request to the TLS port
        caplog.clear()
        from cluster.wire import codec
        from cluster.wire.build import build
        from cluster.wire.framing import frame

        req = build(codec.request_schema(18, 3), {"client_software_name": "t", "client_software_version": "1"})
        assert await _raw_closed(_port(b, "SECURE"), frame(codec.encode_request(req, 1, "raw", api_key=18, api_version=3)))
        await _wait(lambda: len(_lines(caplog)) == 1, "one log line", lambda: _lines(caplog))
        [line] = _lines(caplog)
        assert "TLS handshake failed" in line and "did not speak TLS" in line
        # 3. a ClientHello followed by garbage: a failed handshake
        caplog.clear()
        assert await _raw_closed(_port(b, "SECURE"), _client_hello(pki) + b"\x16\x03\x03\x00\x05garbage" * 3)
        await _wait(lambda: len(_lines(caplog)) == 1, "one log line", lambda: _lines(caplog))
        # 4. a client that connects and goes away mid-handshake
        caplog.clear()
        with socket.create_connection(("127.0.0.1", _port(b, "SECURE"))) as s:
            s.sendall(_client_hello(pki)[:20])
        await _wait(lambda: len(_lines(caplog)) == 1, "one log line", lambda: _lines(caplog))
        assert b.connections.closed["tls handshake"] == 3
        # everyone else is still served
        assert await _metadata(bystander) == ("127.0.0.1", _port(b, "SECURE"))
        assert await _metadata(plain_bystander) == ("127.0.0.1", _port(b, "PLAIN"))
        late = await _tls_conn(_port(b, "SECURE"), client_context(pki.ca))
        await _metadata(late)
        for c in (bystander, plain_bystander, late):
            c.close()
    finally:
        await b.stop()


async def test_unloadable_certificate_is_one_sentence(tmp_path, pki) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    b = Broker(BrokerConfig(name="x", data_dir=tmp_path / "d", listeners=[parse_listener("S=SSL://127.0.0.1:0")],
                            ssl_certfile=junk, ssl_keyfile=pki.server_key))
    with pytest.raises(TlsSetupError, match=r"cannot load the broker certificate .*junk.pem with key"):
        await b.start()
    b2 = Broker(BrokerConfig(name="x", data_dir=tmp_path / "d", listeners=[parse_listener("S=SSL://127.0.0.1:0")],
                             ssl_certfile=pki.server_cert, ssl_keyfile=pki.client_key))
    with pytest.raises(TlsSetupError, match="cannot load the broker certificate"):
        await b2.start()  # a key that does not belong to the certificate
    b3 = Broker(BrokerConfig(name="x", data_dir=tmp_path / "d", listeners=[parse_listener("S=SSL://127.0.0.1:0")],
                             ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key, ssl_cafile=junk,
                             ssl_client_auth="required"))
    with pytest.raises(TlsSetupError, match="cannot load the CA file"):
        await b3.start()


async def test_silent_client_is_closed_at_the_handshake_deadline(tmp_path, pki, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    b = Broker(BrokerConfig(name="t", data_dir=tmp_path / "d", listeners=[parse_listener("S=SSL://127.0.0.1:0")],
                            ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key, request_read_timeout_ms=300))
    await b.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", _port(b, "S"))
        assert await asyncio.wait_for(r.read(), 20) == b""  # closed by the broker, not by us
        w.close()
        await _wait(lambda: len(_lines(caplog)) == 1, "one log line", lambda: _lines(caplog))
        assert "taking longer" in _lines(caplog)[0]
        assert not b.connections.connections  # and forgotten: it no longer counts against limits
    finally:
        await b.stop()
