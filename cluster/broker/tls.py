"""Server-side TLS contexts for SSL and SASL_SSL listeners (stdlib `ssl`).

Why here and loaded at start: a certificate or key that cannot be loaded must stop the
broker before it binds anything, with one sentence naming the file, rather than fail
every client handshake later. TLS 1.2 is the minimum, as in Kafka 4's defaults. Client
certificates follow Kafka's `ssl.client.auth` on SSL listeners only (none, requested:
verified when offered, required); SASL_SSL listeners never ask for one, since their
clients authenticate with SASL (Kafka ignores ssl.client.auth there too). Renegotiation
is refused (a handshake's CPU on demand, for nothing a client needs). The read side
of TLS connections is in `tls_stream`.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cluster.broker.config import BrokerConfig

_VERIFY = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TlsSetupError(ValueError):
    """A certificate, key or CA file could not be used; the message is one sentence."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _context(certfile: Path, keyfile: Path, cafile: Path | None, client_auth: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # No renegotiation (TLS 1.2; 1.3 has none): OpenSSL 3 already refuses a client's,
    # this says so whatever OpenSSL the interpreter links. TLS 1.3 key updates still work.
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        # An empty password, never OpenSSL's prompt on the terminal, for an encrypted key.
        ctx.load_cert_chain(str(certfile), str(keyfile), password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the broker certificate {certfile} with key {keyfile}: "
                            f"{_reason(exc)} (a PEM certificate and its unencrypted PEM key are "
                            f"needed)") from None
    if cafile is not None:
        try:
            ctx.load_verify_locations(cafile=str(cafile))
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot load the CA file {cafile}: {_reason(exc)}") from None
    ctx.verify_mode = _VERIFY[client_auth]
    return ctx


def server_contexts(cfg: BrokerConfig) -> dict[str, ssl.SSLContext]:
    """Listener name -> its server context, for every TLS listener of `cfg`."""
    out: dict[str, ssl.SSLContext] = {}
    shared: dict[str, ssl.SSLContext] = {}
    for lst in cfg.listeners:
        if not lst.tls:
            continue
        assert cfg.ssl_certfile is not None and cfg.ssl_keyfile is not None  # BrokerConfig checks
        auth = cfg.ssl_client_auth if lst.protocol == "SSL" else "none"
        if auth not in shared:
            shared[auth] = _context(cfg.ssl_certfile, cfg.ssl_keyfile, cfg.ssl_cafile, auth)
        out[lst.name] = shared[auth]
    return out

