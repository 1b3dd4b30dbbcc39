"""SaslHandshake (key 17), v0-v1: choose the SASL mechanism of a connection (KIP-43, KIP-152).

Answered as Apache Kafka answers it: UNSUPPORTED_SASL_MECHANISM with the mechanisms the
listener offers (then the connection is closed, as Kafka does), ILLEGAL_SASL_STATE on a
listener without SASL or in the middle of an exchange. v1 is followed by SaslAuthenticate
requests; v0 by unframed tokens (`Session.sasl_raw`, served in cluster/broker/connection.py).
A handshake on an authenticated connection starts a KIP-368 re-authentication.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.auth.sasl_server import new_exchange
from cluster.broker import session as sessions
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


@handler(17, 0, 1)
async def sasl_handshake(broker, hdr, req) -> dict:
    s = sessions.current()
    if s.internal or not s.security_protocol.startswith("SASL_"):
        if not s.internal:
            log.info("closing %s: SaslHandshake on listener %s, which has no SASL (%s)",
                     s.host, s.listener, s.security_protocol)
            s.close_after_reply_s = 0.0
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []}
    offered = broker.config.sasl_offered(s.security_protocol)
    if s.sasl_exchange is not None:
        log.info("closing %s: a second SaslHandshake in the middle of a SASL exchange", s.host)
        s.close_after_reply_s = 0.0
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": offered}
    if req.mechanism not in offered:
        why = (" (PLAIN over SASL_PLAINTEXT is off: passwords would cross in the clear)"
               if req.mechanism == "PLAIN" and "PLAIN" in broker.config.sasl_mechanisms else "")
        log.info("closing %s: SASL mechanism %r requested, listener %s offers %s%s",
                 s.host, req.mechanism, s.listener, ",".join(offered), why)
        s.close_after_reply_s = 0.0
        return {"error_code": ErrorCode.unsupported_sasl_mechanism, "mechanisms": offered}
    if s.authenticated and s.sasl_mechanism is not None and hdr.api_version == 0:
        log.info("closing %s: re-authentication needs SaslHandshake v1 (KIP-368)", s.host)
        s.close_after_reply_s = 0.0
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": offered}
    assert broker.credentials is not None
    s.sasl_exchange = new_exchange(req.mechanism, broker.credentials)
    s.sasl_raw = hdr.api_version == 0
    return {"error_code": 0, "mechanisms": offered}
