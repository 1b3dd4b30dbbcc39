"""SaslAuthenticate (key 36), v0-v2: one SASL token in, one out (KIP-152), and KIP-368.

The token goes to the connection's state machine (cluster/auth/sasl_server.py, chosen by
SaslHandshake). A failure answers SASL_AUTHENTICATION_FAILED (58) with the same sentence
for a wrong password and an unknown user, after `connection.failed.authentication.delay.ms`,
and the connection is closed (cluster/broker/connection.py delays and closes). Success
makes the session `User:<name>`, authenticated, and, when `connections.max.reauth.ms` is
positive, sets `session_lifetime_ms` and a deadline after which the connection must
re-authenticate (same user, same mechanism) or is closed at its next other request.
"""

from __future__ import annotations

import logging
import math
import time

from kio.schema.errors import ErrorCode

from cluster.auth.sasl_server import SaslFailed
from cluster.broker import session as sessions
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


def step(broker, s: sessions.Session, token: bytes) -> tuple[bytes, int]:
    """Feed `token` to the session's exchange: (reply token, session lifetime ms).
    Raises SaslFailed (and marks the session for a delayed close) when it fails."""
    ex = s.sasl_exchange
    try:
        if ex is None:
            raise SaslFailed("Unexpected SaslAuthenticate request without a SaslHandshake",
                             "SaslAuthenticate without a SaslHandshake")
        reply = ex.step(token)
        if not ex.complete:
            return reply, 0
        principal = f"User:{ex.user}"
        if s.authenticated and s.sasl_mechanism is not None:  # KIP-368 re-authentication
            if principal != s.principal:
                raise SaslFailed(f"Cannot change principals during re-authentication from {s.principal}: "
                                 f"{principal}", f"re-authentication as {principal} on a {s.principal} connection")
            if ex.mechanism != s.sasl_mechanism:
                raise SaslFailed(f"SASL mechanism {ex.mechanism} differs from the {s.sasl_mechanism} this "
                                 f"connection authenticated with", "re-authentication changed mechanism")
    except SaslFailed as exc:
        s.sasl_exchange, s.sasl_raw = None, False
        s.close_after_reply_s = broker.config.connection_failed_authentication_delay_ms / 1000
        log.warning("closing %s: SASL authentication failed on listener %s: %s", s.host, s.listener, exc.reason)
        raise
    lifetime_ms = broker.config.connections_max_reauth_ms
    reauth = s.authenticated and s.sasl_mechanism is not None
    s.principal, s.authenticated, s.sasl_mechanism = principal, True, ex.mechanism
    s.sasl_exchange, s.sasl_raw = None, False
    s.reauth_deadline = time.monotonic() + lifetime_ms / 1000 if lifetime_ms > 0 else math.inf
    log.info("%s %s as %s with %s on listener %s", s.host, "re-authenticated" if reauth else "authenticated",
             principal, ex.mechanism, s.listener)
    return reply, lifetime_ms


@handler(36, 0, 2)
async def sasl_authenticate(broker, hdr, req) -> dict:
    s = sessions.current()
    if s.internal or not s.security_protocol.startswith("SASL_") or s.sasl_raw or s.sasl_exchange is None:
        if not s.internal:
            log.info("closing %s: SaslAuthenticate out of place on listener %s", s.host, s.listener)
            s.close_after_reply_s = 0.0
        return {"error_code": ErrorCode.illegal_sasl_state, "error_message": "SaslAuthenticate out of place",
                "auth_bytes": b"", "session_lifetime": 0}
    try:
        reply, lifetime_ms = step(broker, s, bytes(req.auth_bytes))
    except SaslFailed as exc:
        return {"error_code": ErrorCode.sasl_authentication_failed, "error_message": exc.message, "auth_bytes": b"", "session_lifetime": 0}
    return {"error_code": 0, "error_message": None, "auth_bytes": reply, "session_lifetime": lifetime_ms}
