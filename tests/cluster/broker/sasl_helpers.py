"""Shared by the broker SASL tests: a broker whose connections are SASL sessions, and a raw
client that speaks SaslHandshake/SaslAuthenticate with scramp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scramp import ScramClient

from cluster.auth.listeners import parse_listener
from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from tests.cluster.broker.rawconn import RawConn, until

PASSWORD = "Pw-7f3a9c-secret"  # grep target: must never appear in broker logs
API_VERSIONS = {"client_software_name": "t", "client_software_version": "1"}


async def sasl_broker(tmp_path: Path, protocol: str = "SASL_PLAINTEXT", **settings: Any) -> Broker:
    """A broker whose only listener is `protocol` on a free port (`broker.config.port`), with
    user alice (both SCRAM mechanisms, PASSWORD)."""
    settings.setdefault("listeners", [parse_listener(f"SASL={protocol}://127.0.0.1:0")])
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", **settings))
    await broker.start()
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        broker.credentials.upsert_password("alice", mech, PASSWORD)
    return broker


async def scram_login(conn: RawConn, mech: str, user: str, password: str) -> Any:
    """Handshake v1 + SCRAM; returns the last SaslAuthenticate response (error or success)."""
    hs = await conn.call(17, 1, {"mechanism": mech})
    assert hs.error_code == 0, hs
    client = ScramClient([mech], user, password)
    first = await conn.call(36, 2, {"auth_bytes": client.get_client_first().encode()})
    if first.error_code != 0:
        return first
    client.set_server_first(first.auth_bytes.decode())
    final = await conn.call(36, 2, {"auth_bytes": client.get_client_final().encode()})
    if final.error_code == 0:
        client.set_server_final(final.auth_bytes.decode())
    return final


async def plain_login(conn: RawConn, user: str, password: str) -> Any:
    hs = await conn.call(17, 1, {"mechanism": "PLAIN"})
    if hs.error_code != 0:
        return hs
    return await conn.call(36, 2, {"auth_bytes": b"\0" + user.encode() + b"\0" + password.encode()})


async def metadata_ok(conn: RawConn) -> bool:
    resp = await conn.call(3, 12, {"topics": [], "allow_auto_topic_creation": False,
                                   "include_topic_authorized_operations": False})
    return resp.cluster_id is not None
