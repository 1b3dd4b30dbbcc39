"""SASL exchanges against in-memory brokers: PLAIN, SCRAM (scramp's server side), the
checks a client must make of the server, the one-sentence errors, and re-authentication."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from scramp import ScramException, ScramMechanism

from cluster.client import ClientSecurity, KafkaAuthenticationError, KafkaClient, SaslCredentials
from cluster.wire.build import build
from cluster.wire.codec import Request, response_schema
from tests.cluster.client.client_fakes import FakePeer

TABLE = {18: (0, 3), 3: (0, 12), 17: (0, 1), 36: (0, 2)}
PASSWORD = "pa55-Word-xyz"


@dataclass
class SaslBroker:
    """One fake broker with a SASL state machine per connection."""

    mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    lifetime_ms: int = 0
    tamper_nonce: bool = False
    tamper_signature: bool = False
    handshakes: int = 0
    tokens: list[bytes] = field(default_factory=list)
    metadata_before_auth: int = 0

    async def dial(self, host: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        state: dict[str, Any] = {"auth": False}
        peer = FakePeer(table=TABLE, handler=lambda p, r: self.handle(state, r))
        return peer.reader, peer.writer  # type: ignore[return-value]

    def handle(self, state: dict[str, Any], req: Request) -> Any:
        key, version = req.header.api_key, req.header.api_version
        schema = response_schema(key, version)
        if key == 17:
            self.handshakes += 1
            mech = req.body.mechanism
            state.update(mech=mech, server=None, auth=False)
            code = 0 if mech in self.mechanisms else ErrorCode.unsupported_sasl_mechanism
            return build(schema, {"error_code": code, "mechanisms": list(self.mechanisms)})
        if key == 36:
            return self.authenticate(state, bytes(req.body.auth_bytes), schema)
        if key == 3:
            if not state["auth"]:
                self.metadata_before_auth += 1
            return build(schema, {"brokers": [{"node_id": 1, "host": "fake", "port": 1}],
                                  "cluster_id": "fake", "controller_id": 1, "topics": []})
        raise AssertionError(f"unexpected api {key}")

    def authenticate(self, state: dict[str, Any], token: bytes, schema: Any) -> Any:
        self.tokens.append(token)
        ok = {"error_code": 0, "session_lifetime": _ms(self.lifetime_ms)}
        fail = {"error_code": ErrorCode.sasl_authentication_failed,
                "error_message": "Authentication failed: Invalid username or password"}
        if state["mech"] == "PLAIN":
            good = token == b"\0alice\0" + PASSWORD.encode()
            state["auth"] = good
            return build(schema, ok if good else fail)
        if state["server"] is None:
            mech = ScramMechanism(state["mech"])
            salt, stored, server_key, iterations = mech.make_auth_info(PASSWORD, iteration_count=4096)
            def credentials(user: str) -> tuple:
                if user != "alice":
                    raise KeyError(user)
                return salt, stored, server_key, iterations

            server = mech.make_server(credentials)
            try:
                server.set_client_first(token.decode())
            except ScramException:  # unknown user: the same answer as a wrong password
                return build(schema, fail)
            first = server.get_server_first()
            if self.tamper_nonce:  # a nonce that does not extend the client's
                parts = dict(p.split("=", 1) for p in first.split(","))
                first = first.replace("r=" + parts["r"], "r=" + "X" * len(parts["r"]))
            state["server"] = server
            return build(schema, {"error_code": 0, "auth_bytes": first.encode()})
        server = state["server"]
        try:
            server.set_client_final(token.decode())
        except Exception:  # noqa: BLE001 - scramp says: wrong proof
            return build(schema, fail)
        final = server.get_server_final()
        if self.tamper_signature:
            final = "v=" + "A" * 44
        state["auth"] = True
        return build(schema, {"error_code": 0, "auth_bytes": final.encode(),
                              "session_lifetime": _ms(self.lifetime_ms)})


def _ms(ms: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=ms)


def client(broker: SaslBroker, mechanism: str, password: str = PASSWORD, user: str = "alice") -> KafkaClient:
    sec = ClientSecurity(sasl=SaslCredentials(mechanism, user, password))  # type: ignore[arg-type]
    return KafkaClient("fake:1", dial=broker.dial, security=sec, retry_deadline_s=2)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_right_password_authenticates_before_any_request(mechanism: str) -> None:
    broker = SaslBroker()
    async with client(broker, mechanism) as c:
        assert 1 in c.cached_metadata.brokers
    assert broker.handshakes == 1 and broker.metadata_before_auth == 0
    if mechanism != "PLAIN":
        assert broker.tokens[0].startswith(b"n,,n=alice,r=")
        assert PASSWORD.encode() not in b"".join(broker.tokens)  # SCRAM never sends it


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize(("user", "password"), [("alice", "wrong-one"), ("mallory", PASSWORD)])
async def test_wrong_password_and_unknown_user_fail_alike_in_one_sentence(
    mechanism: str, user: str, password: str
) -> None:
    broker = SaslBroker()
    c = client(broker, mechanism, password, user)
    with pytest.raises(KafkaAuthenticationError) as info:
        await c.start()
    await c.close()
    text = str(info.value)
    assert "SASL_AUTHENTICATION_FAILED, 58" in text and f"{user!r} with {mechanism}" in text
    assert "wrong user name or password" in text and "\n" not in text
    assert password not in text and PASSWORD not in repr(info.value)
    assert broker.handshakes == 1  # not retried: a wrong password stays wrong


async def test_mechanism_not_enabled_lists_what_the_broker_offers() -> None:
    broker = SaslBroker(mechanisms=("PLAIN", "GSSAPI"))
    c = client(broker, "SCRAM-SHA-512")
    with pytest.raises(KafkaAuthenticationError, match="SCRAM-SHA-512 is not enabled on fake:1; it offers PLAIN, GSSAPI"):
        await c.start()
    await c.close()


async def test_server_nonce_must_extend_the_client_nonce() -> None:
    broker = SaslBroker(tamper_nonce=True)
    c = client(broker, "SCRAM-SHA-256")
    with pytest.raises(KafkaAuthenticationError, match="invalid SCRAM challenge.*nonce"):
        await c.start()
    await c.close()
    assert len(broker.tokens) == 1  # no client proof was sent to the impostor


async def test_server_signature_is_verified() -> None:
    broker = SaslBroker(tamper_signature=True)
    c = client(broker, "SCRAM-SHA-512")
    with pytest.raises(KafkaAuthenticationError, match="could not prove it knows"):
        await c.start()
    await c.close()


async def test_reauthenticates_on_the_same_connection_before_the_session_expires() -> None:
    broker = SaslBroker(lifetime_ms=300)
    async with client(broker, "SCRAM-SHA-256") as c:
        conn = await c.any_connection()
        deadline = asyncio.get_running_loop().time() + 10
        while conn.reauthentications < 2 and asyncio.get_running_loop().time() < deadline:
            await c.metadata()  # requests keep flowing while re-authenticating
            await asyncio.sleep(0.02)
        assert broker.handshakes >= 3 and conn.reauthentications >= 2
        assert await c.any_connection() is conn and not conn.closed
    assert broker.metadata_before_auth == 0


def test_password_is_never_in_repr() -> None:
    creds = SaslCredentials("PLAIN", "alice", PASSWORD)
    assert PASSWORD not in repr(creds) and PASSWORD not in str(creds)
    assert PASSWORD not in repr(ClientSecurity(sasl=creds))
