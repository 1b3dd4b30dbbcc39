"""Who is on the other end of the connection a handler is serving.

Why a context variable and not a handler argument: every connection is served by one
asyncio task, and a handler runs inside that task, so a value set once when the
connection is accepted (and again when SASL authentication completes) is what every
handler of that connection sees, without threading a parameter through fifty handlers.
Handlers that authorize read `current()`; code outside a connection (tests, the
housekeeping task) sees `INTERNAL`, which is never a client.
"""

from __future__ import annotations

import contextvars
import math
from dataclasses import dataclass, field
from typing import Any

ANONYMOUS = "User:ANONYMOUS"


@dataclass
class Session:
    """One connection's identity. Mutated in place when SASL authentication succeeds."""

    principal: str = ANONYMOUS
    listener: str = "PLAINTEXT"  # listener name the client came in on
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    host: str = ""  # client IP, as ACL host patterns match it
    authenticated: bool = True  # False on a SASL listener until SaslAuthenticate succeeds
    internal: bool = False  # True only for INTERNAL: in-process callers, not a client
    # SASL progress (cluster/broker/k17_sasl_handshake.py, k36_sasl_authenticate.py):
    sasl_exchange: Any = field(default=None, repr=False)  # the mechanism's state machine, mid-exchange
    sasl_raw: bool = False  # after SaslHandshake v0: tokens come unframed (no SaslAuthenticate)
    sasl_mechanism: str | None = None  # the mechanism that authenticated this connection
    reauth_deadline: float = math.inf  # time.monotonic() after which only re-authentication is served
    close_after_reply_s: float | None = None  # set on failure: answer after this delay, then close
    # The connection sends Fetch log bytes from files (plaintext TCP; cluster/broker/sendfile.py).
    sendfile: bool = False


INTERNAL = Session(principal="User:dcmirror-internal", listener="", host="", internal=True)

_current: contextvars.ContextVar[Session] = contextvars.ContextVar("dcmirror_session", default=INTERNAL)


def current() -> Session:
    """The session of the connection whose request is being handled."""
    return _current.get()


def client_host() -> str:
    """The current client's address as Kafka shows it in group descriptions ("/127.0.0.1")."""
    host = current().host
    return f"/{host}" if host else ""


def bind(session: Session) -> contextvars.Token[Session]:
    """Make `session` current for the calling task (a connection's serve task)."""
    return _current.set(session)


def reset(token: contextvars.Token[Session]) -> None:
    _current.reset(token)
