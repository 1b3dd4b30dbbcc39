"""TLS and SASL for client connections: how to secure one, and what to say when it fails.

A `ClientSecurity` says what every connection of a client does after the TCP dial: wrap
the socket in TLS (stdlib ``ssl``: TLS 1.2 at least, the certificate chain and the host
name verified unless the caller switched host names off), then, after ApiVersions,
authenticate with SASL over SaslHandshake v1 + SaslAuthenticate v2 (KIP-152): PLAIN, or
SCRAM-SHA-256/512 through ``scramp``, which checks that the server nonce extends ours and
that the server's final signature proves it knows the password.

Failures are turned into one sentence a user can act on (wrong password, untrusted
certificate, host name mismatch, TLS spoken to a plaintext port, a mechanism the broker
does not enable), raised as errors the routing layer does not retry: retrying a wrong
password only locks accounts. The password lives in a field that is never printed
(``repr=False``) and is never put into a message.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from kio.schema.errors import ErrorCode

from .errors import KafkaAuthenticationError, KafkaConnectionError, KafkaError, KafkaTlsError

if TYPE_CHECKING:
    from .connection import BrokerConnection

log = logging.getLogger(__name__)

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SaslCredentials:
    mechanism: Mechanism
    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.username!r} with {self.mechanism}"


@dataclass(frozen=True)
class ClientSecurity:
    """What a connection does after the dial. ``tls`` None: plaintext; ``sasl`` None: no
    authentication (or mTLS, where the certificate is the identity)."""

    tls: ssl.SSLContext | None = None
    sasl: SaslCredentials | None = None

    @property
    def protocol(self) -> str:
        if self.sasl is not None:
            return "SASL_SSL" if self.tls is not None else "SASL_PLAINTEXT"
        return "SSL" if self.tls is not None else "PLAINTEXT"


def tls_context(
    cafile: Path | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    *,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context: ``cafile`` (else the system's CAs), an optional client
    certificate for mTLS, TLS 1.2 or newer, certificates always verified. Raises
    KafkaTlsError with a sentence when a file cannot be loaded."""
    try:
        ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaTlsError(f"cannot load the CA file {cafile}: {_reason(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if certfile is not None:
        try:
            # An empty password, never OpenSSL's prompt on the terminal, for an encrypted key.
            ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            what = f"{certfile} and {keyfile}" if keyfile else str(certfile)
            raise KafkaTlsError(f"cannot load the client certificate {what}: {_reason(exc)} "
                                f"(a PEM certificate and an unencrypted PEM key are needed)") from None
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def tls_failure(exc: BaseException, host: str, port: int) -> KafkaError:
    """The sentence for a failed TLS handshake with host:port."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", 0)
        detail = getattr(exc, "verify_message", "") or _reason(exc)
        if code == 62 or "hostname mismatch" in detail.lower() or "ip address mismatch" in detail.lower():
            return KafkaTlsError(
                f"the TLS certificate of {where} is not valid for the name {host!r} ({detail}); connect "
                f"by a name the certificate lists, or set ssl_check_hostname: false")
        if code == 10:
            return KafkaTlsError(f"the TLS certificate of {where} has expired ({detail})")
        return KafkaTlsError(
            f"the TLS certificate of {where} is not trusted ({detail}); set ssl_cafile to the CA that "
            f"signed it")
    if isinstance(exc, ssl.SSLError):
        reason = _reason(exc)
        if "wrong version number" in reason or "record layer failure" in reason or "packet length" in reason:
            return KafkaConnectionError(
                f"{where} did not answer the TLS handshake with TLS ({reason}); it is probably a "
                f"plaintext port, so use security_protocol PLAINTEXT or SASL_PLAINTEXT, or the TLS port")
        if any(w in reason for w in ("certificate required", "bad certificate", "certificate unknown",
                                     "unknown ca", "handshake failure")):
            return KafkaTlsError(
                f"{where} rejected our TLS client certificate or the lack of one ({reason}); it requires "
                f"ssl_certfile and ssl_keyfile signed by a CA it trusts")
        if "unsupported protocol" in reason or "version" in reason:
            return KafkaTlsError(f"{where} offers no TLS version we accept (1.2 or newer): {reason}")
        return KafkaTlsError(f"TLS handshake with {where} failed: {reason}")
    return KafkaConnectionError(
        f"{where} closed the connection during the TLS handshake ({type(exc).__name__}); it is "
        f"probably a plaintext port, so use security_protocol PLAINTEXT or SASL_PLAINTEXT, or the "
        f"TLS port")


def looks_like_tls(first_bytes: bytes) -> bool:
    """A TLS record (alert 0x15 or handshake 0x16, version 3.x) where a Kafka frame size
    was expected: we spoke plaintext to a TLS port."""
    return len(first_bytes) >= 2 and first_bytes[0] in (0x15, 0x16) and first_bytes[1] == 0x03


async def authenticate(conn: "BrokerConnection", creds: SaslCredentials) -> float | None:
    """SaslHandshake v1 + SaslAuthenticate on `conn`; returns the session lifetime in
    seconds the broker granted (KIP-368), or None when it sets none."""
    where = f"{conn.address[0]}:{conn.address[1]}"
    if conn.versions.ranges.get(SASL_HANDSHAKE) is None or conn.versions.ranges.get(SASL_AUTHENTICATE) is None:
        raise KafkaAuthenticationError(
            f"{where} does not offer SASL (SaslHandshake/SaslAuthenticate are missing from ApiVersions); "
            f"check security_protocol and the port")
    resp = await conn.send(conn.build(SASL_HANDSHAKE, {"mechanism": creds.mechanism}, wanted_max=1),
                           internal=True)
    offered = list(resp.mechanisms or ())
    if resp.error_code == ErrorCode.unsupported_sasl_mechanism:
        raise KafkaAuthenticationError(
            f"SASL mechanism {creds.mechanism} is not enabled on {where}; it offers "
            f"{', '.join(offered) or 'none'}")
    if resp.error_code != 0:
        raise KafkaAuthenticationError(f"SaslHandshake with {where} failed: {ErrorCode(resp.error_code).name.upper()}")
    if creds.mechanism == "PLAIN":
        token = b"\0" + creds.username.encode() + b"\0" + creds.password.encode()
        return (await _exchange(conn, creds, token, where)).lifetime
    return await _scram(conn, creds, where)


@dataclass
class _Step:
    auth_bytes: bytes
    lifetime: float | None


async def _exchange(conn: "BrokerConnection", creds: SaslCredentials, token: bytes, where: str) -> _Step:
    resp = await conn.send(conn.build(SASL_AUTHENTICATE, {"auth_bytes": token}, wanted_max=2), internal=True)
    if resp.error_code == ErrorCode.sasl_authentication_failed:
        raise KafkaAuthenticationError(
            f"{where} refused authentication as {creds} (SASL_AUTHENTICATION_FAILED, 58): wrong user "
            f"name or password, or the user has no {creds.mechanism} credential there")
    if resp.error_code != 0:
        raise KafkaAuthenticationError(
            f"SASL authentication with {where} failed: {ErrorCode(resp.error_code).name.upper()} "
            f"({int(resp.error_code)})")
    lifetime = getattr(resp, "session_lifetime", None)
    if isinstance(lifetime, datetime.timedelta):
        seconds = lifetime.total_seconds()
    else:
        seconds = float(lifetime or 0) / 1000
    return _Step(bytes(resp.auth_bytes or b""), seconds if seconds > 0 else None)


async def _scram(conn: "BrokerConnection", creds: SaslCredentials, where: str) -> float | None:
    from scramp import ScramClient, ScramException

    try:
        client = ScramClient([creds.mechanism], creds.username, creds.password)
    except ScramException as exc:
        raise KafkaAuthenticationError(f"cannot start {creds.mechanism} for {creds.username!r}: {exc.args[0]}") from None
    first = await _exchange(conn, creds, client.get_client_first().encode(), where)
    try:
        client.set_server_first(first.auth_bytes.decode("utf-8"))
        final_msg = client.get_client_final()
    except (ScramException, UnicodeDecodeError) as exc:
        raise KafkaAuthenticationError(
            f"{where} sent an invalid SCRAM challenge ({_scram_reason(exc)}); refusing to continue") from None
    final = await _exchange(conn, creds, final_msg.encode(), where)
    try:
        client.set_server_final(final.auth_bytes.decode("utf-8"))
    except (ScramException, UnicodeDecodeError) as exc:
        raise KafkaAuthenticationError(
            f"{where} could not prove it knows the {creds.mechanism} credential of {creds.username!r} "
            f"({_scram_reason(exc)}); it may not be the broker you meant") from None
    return final.lifetime


def _scram_reason(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__
