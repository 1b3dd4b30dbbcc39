"""TLS handshakes against local asyncio servers (no Java): what is verified, and the
one sentence each failure gives. The servers speak just enough Kafka (ApiVersions,
Metadata) for the client to start."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster.client import ClientSecurity, KafkaClient, KafkaError, KafkaConnectionError, KafkaTlsError, default_dial, tls_context
from cluster.wire.build import build
from cluster.wire.codec import decode_request, encode_response, response_schema
from cluster.wire.framing import FrameReader, frame
from peers.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _kafka_ish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: list[int]) -> None:
    frames = FrameReader()
    try:
        while data := await reader.read(65536):
            frames.feed(data)
            while (f := frames.next_frame()) is not None:
                req = decode_request(f)
                key, version = req.header.api_key, req.header.api_version
                schema = response_schema(key, version)
                if key == 18:
                    body = build(schema, {"api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3},
                                                       {"api_key": 3, "min_version": 0, "max_version": 12}]})
                else:
                    body = build(schema, {"brokers": [{"node_id": 1, "host": "127.0.0.1", "port": port[0]}],
                                          "cluster_id": "tls", "controller_id": 1, "topics": []})
                writer.write(frame(encode_response(req.header.correlation_id, body)))
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(ctx: ssl.SSLContext | None) -> tuple[asyncio.Server, int]:
    port: list[int] = [0]
    server = await asyncio.start_server(lambda r, w: _kafka_ish(r, w, port), "127.0.0.1", 0, ssl=ctx)
    port[0] = server.sockets[0].getsockname()[1]
    return server, port[0]


def server_context(pki: Pki, *, client_auth: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if client_auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca)
    return ctx


@pytest.fixture
async def tls_port(pki: Pki) -> AsyncIterator[int]:
    server, port = await serve(server_context(pki))
    yield port
    server.close()


async def start(bootstrap: str, security: ClientSecurity, **kw: Any) -> Exception | None:
    c = KafkaClient(bootstrap, security=security, retry_deadline_s=0.3, request_timeout_s=5, **kw)
    try:
        await c.start()
        return None
    except Exception as exc:  # noqa: BLE001 - inspected by the test
        return exc
    finally:
        await c.close()


async def test_verified_tls_connects(pki: Pki, tls_port: int) -> None:
    assert await start(f"127.0.0.1:{tls_port}", ClientSecurity(tls=tls_context(pki.ca))) is None
    assert await start(f"localhost:{tls_port}", ClientSecurity(tls=tls_context(pki.ca))) is None


async def test_untrusted_certificate(pki: Pki, tls_port: int) -> None:
    exc = await start(f"127.0.0.1:{tls_port}", ClientSecurity(tls=tls_context(pki.other_ca)))
    assert isinstance(exc, KafkaTlsError)
    assert str(exc).startswith(f"the TLS certificate of 127.0.0.1:{tls_port} is not trusted")


async def test_hostname_mismatch_unless_switched_off(pki: Pki, tls_port: int) -> None:
    async def dial(host: str, port: int):
        return await default_dial("127.0.0.1", port)

    exc = await start(f"broker.example.test:{tls_port}", ClientSecurity(tls=tls_context(pki.ca)), dial=dial)
    assert isinstance(exc, KafkaTlsError) and "is not valid for the name 'broker.example.test'" in str(exc)
    lax = ClientSecurity(tls=tls_context(pki.ca, check_hostname=False))
    assert await start(f"broker.example.test:{tls_port}", lax, dial=dial) is None
    # without host name checks the chain is still verified
    lax_other = ClientSecurity(tls=tls_context(pki.other_ca, check_hostname=False))
    assert isinstance(await start(f"broker.example.test:{tls_port}", lax_other, dial=dial), KafkaTlsError)


async def test_client_certificate_required(pki: Pki) -> None:
    server, port = await serve(server_context(pki, client_auth=True))
    try:
        exc = await start(f"127.0.0.1:{port}", ClientSecurity(tls=tls_context(pki.ca)))
        # Kafka sends an alert (KafkaTlsError, see tests/interop); Python's server just closes
        assert isinstance(exc, KafkaError) and "client certificate" in str(exc), exc
        mtls = ClientSecurity(tls=tls_context(pki.ca, pki.client_cert, pki.client_key))
        assert await start(f"127.0.0.1:{port}", mtls) is None
    finally:
        server.close()


async def test_tls_to_plaintext_and_plaintext_to_tls(pki: Pki, tls_port: int) -> None:
    server, plain_port = await serve(None)
    try:
        exc = await start(f"127.0.0.1:{plain_port}", ClientSecurity(tls=tls_context(pki.ca)))
        assert isinstance(exc, KafkaConnectionError) and "plaintext port" in str(exc), exc
    finally:
        server.close()
    exc = await start(f"127.0.0.1:{tls_port}", ClientSecurity())
    assert isinstance(exc, KafkaConnectionError)
    assert "TLS port, so use security_protocol SSL or SASL_SSL" in str(exc) or "if it is a TLS port" in str(exc), exc


def test_context_refuses_below_tls_1_2(pki: Pki) -> None:
    """(This machine's OpenSSL cannot serve TLS 1.1 at all, so the floor is checked on the
    context rather than against a TLS 1.1 server.)"""
    ctx = tls_context(pki.ca)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_unloadable_files_are_one_sentence(pki: Pki, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("junk\n")
    with pytest.raises(KafkaTlsError, match="cannot load the CA file"):
        tls_context(bad)
    with pytest.raises(KafkaTlsError, match="cannot load the client certificate"):
        tls_context(pki.ca, bad)
    with pytest.raises(KafkaTlsError, match="cannot load the client certificate"):
        tls_context(pki.ca, pki.client_cert, pki.other_client_key)  # key of another certificate
