"""The broker's side of SASL PLAIN and SCRAM-SHA-256/512, as pure state machines.

Why pure: a SASL exchange is a few tokens in and out, and every way it can go wrong
(garbage, a tampered nonce, an unknown user, Kafka's delegation-token extension) is best
tested without sockets. The asyncio shell (SaslAuthenticate, cluster/broker) feeds each
token to `step` and sends back what it returns.

Rules kept here, as Apache Kafka's SaslServer implementations keep them:

- Unknown users go through `CredentialStore.scram_or_dummy` (SCRAM) or
  `check_plain` (PLAIN): the same salt-looking salt, the same hashing, the same failure
  and the same sentence as a wrong password, so a client cannot tell which users exist.
- SCRAM client-final must carry a nonce that starts with the client-first nonce and equals
  client nonce + server nonce (CVE-2024-56128: Kafka once checked only the server part).
  `scramp` compares the whole nonce too; the prefix check here does not depend on it.
- SCRAM extensions (`tokenauth=true`, KIP-48 delegation tokens, or any other) are refused:
  this broker has no delegation tokens, and an extension it ignored would be a setting
  silently ignored.
- An authorization id different from the user name is refused, one equal to it accepted
  (Kafka's PlainSaslServer and ScramSaslServer do the same). In SCRAM the client-final's
  channel binding `c=` must then be the gs2 header as sent, authorization id included:
  scramp's server refuses an authorization id, so it is handed the header without it and
  checks `c=` against the header the client sent (`_SentGs2Header`).

A failure raises `SaslFailed` whose `message` goes to the client (SaslAuthenticate's
error_message) and whose `reason` is for the broker's log; neither ever holds a password
or a token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from scramp import ScramException, ScramMechanism

from cluster.auth.credentials import MECHANISMS as SCRAM_MECHANISMS
from cluster.auth.credentials import CredentialStore

log = logging.getLogger(__name__)

SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_SASL_MECHANISMS: tuple[str, ...] = ("SCRAM-SHA-256", "SCRAM-SHA-512")
PLAIN_FAILED = "Authentication failed: Invalid username or password"


def scram_failed(mechanism: str) -> str:
    """Kafka's sentence for a SCRAM proof that does not verify (wrong password or unknown user)."""
    return f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"


class SaslFailed(Exception):
    """Authentication failed: `message` for the client, `reason` for the broker log."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class SaslExchange(Protocol):
    mechanism: str
    complete: bool
    user: str | None

    def step(self, token: bytes) -> bytes: ...


def new_exchange(mechanism: str, store: CredentialStore) -> SaslExchange:
    if mechanism == "PLAIN":
        return PlainExchange(store)
    if mechanism in SCRAM_MECHANISMS:
        return ScramExchange(mechanism, store)
    raise ValueError(f"unknown SASL mechanism {mechanism!r}")


@dataclass
class PlainExchange:
    """RFC 4616: one token `authzid NUL authcid NUL passwd`, checked against the SCRAM store."""

    store: CredentialStore = field(repr=False)
    mechanism: str = "PLAIN"
    complete: bool = False
    user: str | None = None

    def step(self, token: bytes) -> bytes:
        if self.complete:
            raise SaslFailed("Authentication failed: unexpected token after PLAIN completed",
                             "PLAIN token after the exchange completed")
        try:
            text = bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            raise SaslFailed("Authentication failed: the PLAIN token is not UTF-8",
                             "PLAIN token is not UTF-8") from None
        parts = text.split("\0")
        if len(parts) != 3:
            raise SaslFailed("Authentication failed: the PLAIN token must be authzid NUL user NUL password",
                             f"PLAIN token has {len(parts) - 1} NUL separator(s), not 2")
        authzid, user, password = parts
        if not user:
            raise SaslFailed("Authentication failed: username not specified", "PLAIN without a user name")
        if not password:
            raise SaslFailed("Authentication failed: password not specified", f"PLAIN without a password for {user!r}")
        if authzid and authzid != user:
            raise SaslFailed("Authentication failed: Client requested an authorization id that is "
                             "different from username", f"PLAIN authzid differs from user {user!r}")
        if not self.store.check_plain(user, password):
            raise SaslFailed(PLAIN_FAILED, f"PLAIN: wrong password or unknown user {user!r}")
        self.user, self.complete = user, True
        return b""


@dataclass(frozen=True)
class _SentGs2Header:
    """The gs2 header as the client sent it ("n,a=alice,"): what scramp compares the
    client-final's `c=` with (its own parsed header drops the authorization id)."""

    text: str

    def make_cbind_input(self, _cb: object) -> bytes:
        return self.text.encode("utf-8")


@dataclass
class ScramExchange:
    """RFC 5802 over `scramp`'s ScramServer, plus Kafka's rules (module docstring)."""

    mechanism: str
    store: CredentialStore = field(repr=False)
    complete: bool = False
    user: str | None = None
    _known: bool = False
    _client_nonce: str = ""
    _server: object = field(default=None, repr=False)
    _stage: int = 0

    def _fail_invalid(self, what: str) -> SaslFailed:
        return SaslFailed(f"Authentication failed: invalid SCRAM message ({what})", f"{self.mechanism}: {what}")

    def step(self, token: bytes) -> bytes:
        try:
            text = bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail_invalid("not UTF-8") from None
        if self._stage == 0:
            return self._client_first(text)
        if self._stage == 1:
            return self._client_final(text)
        raise self._fail_invalid("token after the exchange completed")

    def _client_first(self, text: str) -> bytes:
        # gs2-header "n,[a=authzid]," then n=saslname,r=nonce[,extensions]
        head = text.split(",", 2)
        if len(head) != 3 or head[0] not in ("n", "y", "p"):
            raise self._fail_invalid("malformed client-first message")
        if head[0] == "p":
            raise SaslFailed("Authentication failed: channel binding is not supported",
                             f"{self.mechanism}: client asked for channel binding")
        authzid = head[1][2:] if head[1].startswith("a=") else head[1]
        if head[1] and not head[1].startswith("a="):
            raise self._fail_invalid("malformed authorization id")
        attrs = head[2].split(",")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            raise self._fail_invalid("client-first must start with n= and r=")
        extensions = [a.split("=", 1)[0] for a in attrs[2:]]
        if "tokenauth" in extensions:
            raise SaslFailed("Authentication failed: delegation tokens (tokenauth) are not supported by "
                             "this broker", f"{self.mechanism}: tokenauth extension refused")
        if extensions:
            raise SaslFailed(f"Authentication failed: unsupported SCRAM extensions {sorted(set(extensions))}",
                             f"{self.mechanism}: extensions {sorted(set(extensions))} refused")
        self._client_nonce = attrs[1][2:]
        if not self._client_nonce:
            raise self._fail_invalid("empty client nonce")
        user_escaped = attrs[0][2:]
        user = user_escaped.replace("=2C", ",").replace("=3D", "=")
        if authzid and authzid.replace("=2C", ",").replace("=3D", "=") != user:
            raise SaslFailed("Authentication failed: Client requested an authorization id that is "
                             "different from username", f"{self.mechanism}: authzid differs from user {user!r}")
        cred, self._known = self.store.scram_or_dummy(self.mechanism, user)
        self.user = user

        def auth_fn(_name: str) -> tuple:
            return cred.salt, cred.stored_key, cred.server_key, cred.iterations

        try:
            server = ScramMechanism(self.mechanism).make_server(auth_fn)
            # scramp parses only what RFC 5802 defines and takes no authorization id: it gets
            # the header without one (the proof covers client-first-bare, not the header).
            server.set_client_first(f"{head[0]},,{head[2]}")
            if authzid:
                server.gs2_header = _SentGs2Header(f"{head[0]},{head[1]},")  # type: ignore[attr-defined]
            first = server.get_server_first()
        except ScramException as exc:
            raise self._fail_invalid(str(exc.args[0]) if exc.args else "rejected by scramp") from None
        self._server, self._stage = server, 1
        return first.encode("utf-8")

    def _client_final(self, text: str) -> bytes:
        self._stage = 2
        nonce = next((a[2:] for a in text.split(",") if a.startswith("r=")), None)
        if nonce is None:
            raise self._fail_invalid("client-final without a nonce")
        server = self._server
        if not nonce.startswith(self._client_nonce) or nonce != str(server.nonce):  # type: ignore[attr-defined]
            raise SaslFailed("Authentication failed: invalid nonce in the SCRAM client-final message",
                             f"{self.mechanism}: client-final nonce does not extend the client-first nonce "
                             f"with the server nonce (user {self.user!r})")
        try:
            server.set_client_final(text)  # type: ignore[attr-defined]
            final = server.get_server_final()  # type: ignore[attr-defined]
        except ScramException as exc:
            server_error = getattr(exc, "server_error", None)
            if server_error is not None and getattr(server_error, "value", "") == "invalid-proof":
                raise SaslFailed(scram_failed(self.mechanism),
                                 f"{self.mechanism}: wrong password or unknown user {self.user!r}") from None
            raise self._fail_invalid(str(exc.args[0]) if exc.args else "rejected by scramp") from None
        if not self._known:  # a dummy credential can never verify; kept for certainty
            raise SaslFailed(scram_failed(self.mechanism),
                             f"{self.mechanism}: wrong password or unknown user {self.user!r}")
        self.complete = True
        return final.encode("utf-8")


def check_sasl_mechanisms(names: str | Iterable[str]) -> tuple[str, ...]:
    """`PLAIN,SCRAM-SHA-256` or a list of names, checked; ValueError with one sentence."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    items = [n for n in items if n]
    if not items:
        raise ValueError(f"sasl mechanisms must name at least one of {', '.join(SASL_MECHANISMS)}")
    for n in items:
        if n not in SASL_MECHANISMS:
            raise ValueError(f"unknown SASL mechanism {n!r}; this broker supports {', '.join(SASL_MECHANISMS)}")
    return tuple(dict.fromkeys(items))


def check_sasl_settings(listeners: Iterable[Any], mechanisms: str | Iterable[str] | None,
                        plain_over_plaintext: bool) -> tuple[str, ...]:
    """The broker's SASL mechanisms (None: the default), refusing settings that would be
    ignored and PLAIN where every SASL listener is SASL_PLAINTEXT (passwords in the clear)
    unless `plain_over_plaintext`. Shared by BrokerConfig and the cluster YAML reader."""
    sasl = [lst for lst in listeners if lst.protocol.startswith("SASL_")]
    if mechanisms is None:
        mechs = DEFAULT_SASL_MECHANISMS
    else:
        mechs = check_sasl_mechanisms(mechanisms)
        if not sasl:
            raise ValueError("sasl mechanisms are set but no listener uses SASL_PLAINTEXT or SASL_SSL, "
                             "so they would be ignored")
    cleartext = [lst for lst in sasl if lst.protocol == "SASL_PLAINTEXT"]
    if plain_over_plaintext and not ("PLAIN" in mechs and cleartext):
        raise ValueError("sasl_plain_over_plaintext is set but PLAIN is not enabled on a SASL_PLAINTEXT "
                         "listener, so it would be ignored")
    if "PLAIN" in mechs and sasl and len(cleartext) == len(sasl) and not plain_over_plaintext:
        raise ValueError(f"PLAIN is enabled but listener {cleartext[0].name} is SASL_PLAINTEXT, where PLAIN "
                         f"would send passwords in the clear; use SASL_SSL, a SCRAM mechanism, or allow it "
                         f"explicitly (--sasl-plain-over-plaintext, or sasl_plain_over_plaintext: true "
                         f"under local:)")
    return mechs
