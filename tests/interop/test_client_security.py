"""Our client against Apache Kafka 4.3.1 with TLS and SASL: the matrix of listeners and
credentials, the one-sentence errors a user sees, and re-authentication (KIP-368)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cluster.client import (
    ClientSecurity,
    FetchPosition,
    KafkaAuthenticationError,
    KafkaClient,
    KafkaConnectionError,
    KafkaTlsError,
    NewTopic,
    SaslCredentials,
    default_dial,
    tls_context,
)
from cluster.wire.batch_builder import build_batch
from peers.kafka_secure import PASSWORD, USER

pytestmark = pytest.mark.interop
SASL = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def sasl_ssl(k, mechanism: str, user: str = USER, password: str = PASSWORD) -> ClientSecurity:
    return ClientSecurity(tls=tls_context(k.pki.ca), sasl=SaslCredentials(mechanism, user, password))  # type: ignore[arg-type]


def client(bootstrap: str, security: ClientSecurity, **kw: Any) -> KafkaClient:
    kw.setdefault("retry_deadline_s", 1.5)
    kw.setdefault("request_timeout_s", 10)
    return KafkaClient(bootstrap, security=security, **kw)


async def round_trip(c: KafkaClient, topic: str) -> None:
    await c.create_topics([NewTopic(topic, 1)])
    batch = build_batch([(b"k", b"secured", [], 1_700_000_000_000)])
    await c.produce(topic, 0, batch)
    res = (await c.fetch({(topic, 0): FetchPosition(0, 1 << 20)}, max_wait_ms=0))[(topic, 0)]
    assert b"secured" in (res.records or b"")


async def failure(bootstrap: str, security: ClientSecurity, **kw: Any) -> Exception:
    c = client(bootstrap, security, **kw)
    try:
        await c.start()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    finally:
        await c.close()
    raise AssertionError("connected, but should not have")


def one_sentence(exc: Exception) -> str:
    text = str(exc)
    assert "\n" not in text and PASSWORD not in text and PASSWORD not in repr(exc), text
    return text


@pytest.mark.parametrize("mechanism", SASL)
async def test_sasl_ssl_right_password(secure_kafka, mechanism: str, topic_name: str) -> None:
    async with client(secure_kafka.address("SASL_SSL"), sasl_ssl(secure_kafka, mechanism)) as c:
        await round_trip(c, topic_name)


@pytest.mark.parametrize("mechanism", SASL)
@pytest.mark.parametrize(("user", "password"), [(USER, "not-the-password"), ("mallory", PASSWORD)])
async def test_sasl_ssl_wrong_password_and_unknown_user(secure_kafka, mechanism: str, user: str,
                                                       password: str) -> None:
    exc = await failure(secure_kafka.address("SASL_SSL"), sasl_ssl(secure_kafka, mechanism, user, password))
    assert isinstance(exc, KafkaAuthenticationError)
    text = one_sentence(exc)
    assert "SASL_AUTHENTICATION_FAILED, 58" in text and "wrong user name or password" in text
    assert f"{user!r} with {mechanism}" in text


async def test_ssl_with_client_certificate(secure_kafka, topic_name: str) -> None:
    pki = secure_kafka.pki
    sec = ClientSecurity(tls=tls_context(pki.ca, pki.client_cert, pki.client_key))
    async with client(secure_kafka.address("SSL"), sec) as c:
        await round_trip(c, topic_name)


@pytest.mark.parametrize("which", ["untrusted certificate", "no certificate"])
async def test_ssl_client_certificate_refused(secure_kafka, which: str) -> None:
    """SSL's "wrong password" is a certificate from another CA, its "unknown user" none."""
    pki = secure_kafka.pki
    ctx = (tls_context(pki.ca, pki.other_client_cert, pki.other_client_key) if which == "untrusted certificate"
           else tls_context(pki.ca))
    exc = await failure(secure_kafka.address("SSL"), ClientSecurity(tls=ctx))
    assert isinstance(exc, KafkaTlsError)
    assert "rejected our TLS client certificate or the lack of one" in one_sentence(exc)


async def test_untrusted_server_certificate(secure_kafka) -> None:
    sec = ClientSecurity(tls=tls_context(secure_kafka.pki.other_ca),
                         sasl=SaslCredentials("PLAIN", USER, PASSWORD))
    exc = await failure(secure_kafka.address("SASL_SSL"), sec)
    assert isinstance(exc, KafkaTlsError)
    assert "is not trusted" in one_sentence(exc) and "set ssl_cafile" in str(exc)


async def test_hostname_mismatch_and_explicit_opt_out(secure_kafka) -> None:
    """The certificate names 127.0.0.1 and localhost; dialing it as another name fails
    unless host name checks are switched off (the chain is still verified)."""
    port = secure_kafka.sasl_ssl_port

    async def dial(host: str, p: int):
        return await default_dial("127.0.0.1", p)

    exc = await failure(f"kafka.example.test:{port}", sasl_ssl(secure_kafka, "PLAIN"), dial=dial)
    assert isinstance(exc, KafkaTlsError)
    assert "is not valid for the name 'kafka.example.test'" in one_sentence(exc)
    lax = ClientSecurity(tls=tls_context(secure_kafka.pki.ca, check_hostname=False),
                         sasl=SaslCredentials("PLAIN", USER, PASSWORD))
    async with client(f"kafka.example.test:{port}", lax, dial=dial) as c:
        assert c.cached_metadata.brokers


async def test_tls_to_a_plaintext_port(secure_kafka) -> None:
    exc = await failure(secure_kafka.address("PLAINTEXT"), ClientSecurity(tls=tls_context(secure_kafka.pki.ca)))
    assert isinstance(exc, KafkaConnectionError)
    assert "it is probably a plaintext port" in one_sentence(exc)


async def test_plaintext_to_a_tls_port(secure_kafka) -> None:
    exc = await failure(secure_kafka.address("SSL"), ClientSecurity())
    assert isinstance(exc, KafkaConnectionError)
    assert "answered in TLS: it is a TLS port, so use security_protocol SSL or SASL_SSL" in one_sentence(exc)


async def test_no_sasl_on_a_sasl_port(secure_kafka) -> None:
    exc = await failure(secure_kafka.address("SASL_PLAINTEXT"), ClientSecurity())
    assert "it probably requires SASL" in one_sentence(exc)


async def test_mechanism_not_enabled_lists_the_offered_ones(secure_kafka) -> None:
    sec = ClientSecurity(sasl=SaslCredentials("SCRAM-SHA-512", USER, PASSWORD))
    exc = await failure(secure_kafka.address("SASL_PLAINTEXT"), sec)
    assert isinstance(exc, KafkaAuthenticationError)
    assert one_sentence(exc).startswith("SASL mechanism SCRAM-SHA-512 is not enabled on 127.0.0.1:")
    assert exc.args[0].endswith("it offers PLAIN")


async def test_sasl_session_is_renewed_on_the_same_connection(secure_kafka, topic_name: str) -> None:
    """The broker grants 6 s sessions and closes a connection that outlives its session;
    a client busy for 2.5 sessions keeps its one connection by re-authenticating."""
    async with client(secure_kafka.address("SASL_SSL"), sasl_ssl(secure_kafka, "SCRAM-SHA-256"),
                      retry_deadline_s=0) as c:
        await round_trip(c, topic_name)
        conn = await c.connection(1)
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while loop.time() < end:
            await c.fetch({(topic_name, 0): FetchPosition(0, 1 << 16)}, max_wait_ms=200)
        assert conn.reauthentications >= 2
        assert not conn.closed and await c.connection(1) is conn
