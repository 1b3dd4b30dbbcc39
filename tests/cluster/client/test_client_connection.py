"""BrokerConnection against an in-memory peer: no sockets, the peer answers by hand.

The fake peer (client_fakes.py) answers by hand, in whatever order a test chooses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from cluster.client.connection import BrokerConnection
from cluster.client.errors import KafkaConnectionError, KafkaProtocolError, KafkaTimeoutError, check
from cluster.wire.build import build
from cluster.wire.codec import response_schema
from tests.cluster.client.client_fakes import FakePeer


async def _connect(peer: FakePeer, **kw: Any) -> BrokerConnection:
    async def dial(host: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        return peer.reader, peer.writer

    return await BrokerConnection.open("fake", 1, dial=dial, **kw)  # type: ignore[arg-type]


def _metadata_response(version: int, cluster_id: str) -> Any:
    return build(response_schema(3, version), {"cluster_id": cluster_id, "controller_id": 1, "brokers": [], "topics": []})


async def test_negotiates_v3_and_intersects_with_kio() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    assert peer.api_versions_seen == [3]
    assert conn.version_for(3) == 12
    assert conn.version_for(1, wanted_max=12) == 12
    assert conn.version_for(1) == 13
    await conn.close()


@pytest.mark.parametrize("broker_max,expected", [(2, [3, 2]), (0, [3, 0])])
async def test_falls_back_when_api_versions_v3_unsupported(broker_max: int, expected: list[int]) -> None:
    peer = FakePeer(api_versions_max=broker_max)
    conn = await _connect(peer)
    assert peer.api_versions_seen == expected
    assert conn.version_for(3) == 12
    await conn.close()


async def test_pipelined_responses_matched_by_correlation_id() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    calls = [
        asyncio.create_task(conn.send(conn.build(3, {"topics": [{"name": f"t{i}"}]}))) for i in range(5)
    ]
    reqs = [await peer.requests.get() for _ in range(5)]
    assert len({r.header.correlation_id for r in reqs}) == 5
    for r in reversed(reqs):  # answer out of order, tagging each answer with the asked topic
        peer.respond(r.header.correlation_id, _metadata_response(r.header.api_version, r.body.topics[0].name))
    results = await asyncio.gather(*calls)
    assert [m.cluster_id for m in results] == [f"t{i}" for i in range(5)]
    assert reqs[0].header.client_id == "dcmirror"
    await conn.close()


async def test_peer_close_fails_all_pending() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    calls = [asyncio.create_task(conn.send(conn.build(3, {"topics": None}))) for _ in range(3)]
    for _ in range(3):
        await peer.requests.get()
    peer.reader.feed_eof()
    for c in calls:
        with pytest.raises(KafkaConnectionError):
            await c
    assert conn.closed
    with pytest.raises(KafkaConnectionError):
        await conn.send(conn.build(3, {"topics": None}))
    await conn.close()


async def test_timeout_closes_connection() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    with pytest.raises(KafkaTimeoutError):
        await conn.send(conn.build(3, {"topics": None}), timeout_s=0.05)
    assert conn.closed and peer.writer.closed
    await conn.close()


async def test_send_no_response_writes_without_waiting() -> None:
    peer = FakePeer(table={18: (0, 3), 0: (3, 9)})
    conn = await _connect(peer)
    body = conn.build(0, {"acks": 0, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": b""}]}]})
    await conn.send_no_response(body)
    req = await peer.requests.get()
    assert req.header.api_key == 0 and req.body.acks == 0
    await conn.close()


async def test_response_for_unknown_correlation_id_is_ignored() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    call = asyncio.create_task(conn.send(conn.build(3, {"topics": None})))
    req = await peer.requests.get()
    peer.respond(12345, _metadata_response(req.header.api_version, "stray"))
    peer.respond(req.header.correlation_id, _metadata_response(req.header.api_version, "mine"))
    assert (await call).cluster_id == "mine"
    await conn.close()


def test_protocol_error_carries_code() -> None:
    with pytest.raises(KafkaProtocolError) as info:
        check(6, "moved", context="Produce t-0")
    assert info.value.error_code == 6 and info.value.code == ErrorCode.not_leader_or_follower
    assert "NOT_LEADER_OR_FOLLOWER" in str(info.value) and "Produce t-0" in str(info.value)
    check(0)


async def test_close_keeps_its_callers_cancellation() -> None:
    """A task cancelled while it closes a connection ends cancelled: close() swallowed that,
    so a fetcher's stop() could hang on a task that kept running."""
    peer = FakePeer()
    conn = await _connect(peer)
    closing = asyncio.create_task(conn.close())
    await asyncio.sleep(0)   # closing now waits for the reader task to end
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert closing.cancelled()


async def test_close_alone_is_not_cancelled_by_its_reader_ending() -> None:
    peer = FakePeer()
    conn = await _connect(peer)
    await conn.close()   # the reader's own cancellation does not escape
