"""Leader routing and retries, against a two-broker cluster faked in memory.

Each broker is a FakePeer reached through the client's dialer; a shared `FakeCluster`
decides who leads and what each broker answers, so a test can move leadership or drop a
connection at an exact moment and check the client finds the new leader.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from cluster.client import FetchPosition, KafkaClient, KafkaConnectionError, KafkaProtocolError
from cluster.wire.build import build
from cluster.wire.codec import Request, response_schema
from tests.cluster.client.client_fakes import FakePeer

TOPIC_ID = uuid.uuid4()
TABLE = {18: (0, 3), 3: (0, 12), 0: (3, 9), 1: (4, 12), 2: (1, 7)}


@dataclass
class FakeCluster:
    leader: int = 1
    epoch: int = 1
    #: node -> error code to answer Produce/Fetch with (instead of success)
    refuse: dict[int, int] = field(default_factory=dict)
    #: nodes that drop the connection on the next Produce
    hang_up: set[int] = field(default_factory=set)
    calls: Counter = field(default_factory=Counter)
    dialed: list[int] = field(default_factory=list)
    peers: list[FakePeer] = field(default_factory=list)

    async def dial(self, host: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        node = port  # broker n listens on port n
        self.dialed.append(node)
        peer = FakePeer(table=TABLE, handler=lambda p, r: self.handle(node, p, r))
        self.peers.append(peer)
        return peer.reader, peer.writer  # type: ignore[return-value]

    def handle(self, node: int, peer: FakePeer, req: Request) -> Any:
        key, version = req.header.api_key, req.header.api_version
        self.calls[(node, key)] += 1
        schema = response_schema(key, version)
        if key == 3:
            return build(schema, {
                "brokers": [{"node_id": n, "host": "fake", "port": n} for n in (1, 2)],
                "cluster_id": "fake", "controller_id": 1,
                "topics": [{"name": "t", "topic_id": TOPIC_ID, "partitions": [
                    {"partition_index": 0, "leader_id": self.leader, "leader_epoch": self.epoch,
                     "replica_nodes": [1, 2], "isr_nodes": [1, 2]}]}],
            })
        if key == 0:
            if node in self.hang_up:
                self.hang_up.discard(node)
                peer.reader.feed_eof()
                return None
            code = self.refuse.get(node, 0)
            return build(schema, {"responses": [{"name": "t", "partition_responses": [
                {"index": 0, "error_code": code, "base_offset": -1 if code else 100 + node,
                 "log_start_offset": 0}]}]})
        if key == 1:
            code = self.refuse.get(node, 0)
            return build(schema, {"responses": [{"topic": "t", "partitions": [
                {"partition_index": 0, "error_code": code, "high_watermark": 10 * node,
                 "last_stable_offset": 10 * node, "records": None}]}]})
        raise AssertionError(f"unexpected api {key}")


@pytest.fixture
async def fake() -> FakeCluster:
    return FakeCluster()


async def test_produce_follows_leader_change(fake: FakeCluster) -> None:
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=5) as client:
        assert (await client.produce("t", 0, b"")).base_offset == 101
        fake.refuse[1] = ErrorCode.not_leader_or_follower
        fake.leader, fake.epoch = 2, 2
        assert (await client.produce("t", 0, b"")).base_offset == 102
        assert client.cached_metadata.topics["t"].partitions[0].leader_epoch == 2
    assert fake.calls[(1, 0)] == 2 and fake.calls[(2, 0)] == 1


async def test_produce_retries_after_connection_loss(fake: FakeCluster) -> None:
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=5) as client:
        await client.metadata()
        fake.hang_up.add(1)
        assert (await client.produce("t", 0, b"")).base_offset == 101
    assert fake.dialed.count(1) >= 2  # bootstrap, then redialed after the hang-up


async def test_non_retriable_error_is_raised_at_once(fake: FakeCluster) -> None:
    fake.refuse[1] = ErrorCode.message_too_large
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=30) as client:
        with pytest.raises(KafkaProtocolError) as info:
            await client.produce("t", 0, b"")
    assert info.value.error_code == ErrorCode.message_too_large
    assert fake.calls[(1, 0)] == 1


async def test_retriable_error_gives_up_at_the_deadline(fake: FakeCluster) -> None:
    fake.refuse[1] = ErrorCode.not_leader_or_follower
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=0.3) as client:
        with pytest.raises(KafkaProtocolError) as info:
            await client.produce("t", 0, b"")
    assert info.value.error_code == ErrorCode.not_leader_or_follower
    assert fake.calls[(1, 0)] >= 2


async def test_fetch_reroutes_partitions_to_the_new_leader(fake: FakeCluster) -> None:
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=5) as client:
        await client.metadata()
        fake.refuse[1] = ErrorCode.not_leader_or_follower
        fake.leader = 2
        res = await client.fetch({("t", 0): FetchPosition(0)})
    assert res[("t", 0)].error_code == 0 and res[("t", 0)].high_watermark == 20


async def test_fetch_returns_non_retriable_partition_errors(fake: FakeCluster) -> None:
    fake.refuse[1] = ErrorCode.offset_out_of_range
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=5) as client:
        res = await client.fetch({("t", 0): FetchPosition(99)})
    assert res[("t", 0)].error_code == ErrorCode.offset_out_of_range
    assert fake.calls[(1, 1)] == 1


async def test_silent_server_times_out() -> None:
    """A server that accepts but never answers: start() fails instead of hanging."""
    from cluster.client import KafkaConnectionError

    accepted: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = KafkaClient(f"127.0.0.1:{port}", request_timeout_s=0.2, retry_deadline_s=0.3)
        with pytest.raises(KafkaConnectionError):
            await client.start()
        await client.close()
        assert accepted  # it did connect; the timeout came from the silence
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_metadata_older_than_max_age_is_refreshed(fake: FakeCluster) -> None:
    async with KafkaClient("fake:1", dial=fake.dial, retry_deadline_s=5, metadata_max_age_s=3600) as client:
        await client.produce("t", 0, b"")
        before = fake.calls[(1, 3)]
        await client.produce("t", 0, b"")
        assert fake.calls[(1, 3)] == before  # young cache: no refresh
        client.metadata_max_age_s = 0.0  # every full refresh is now too old
        await client.produce("t", 0, b"")
        assert fake.calls[(1, 3)] > before


async def test_client_id_and_connect_timeout_are_used() -> None:
    seen: list[str | None] = []

    async def dial(host: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        def handler(p: FakePeer, r: Request) -> Any:
            seen.append(r.header.client_id)
            return FakeCluster().handle(1, p, r)

        peer = FakePeer(table=TABLE, handler=handler)
        return peer.reader, peer.writer  # type: ignore[return-value]

    async with KafkaClient("fake:1", dial=dial, client_id="quota-key") as client:
        await client.metadata()
    assert seen and set(seen) == {"quota-key"}

    async def silent(host: str, port: int) -> Any:
        await asyncio.sleep(3600)

    client = KafkaClient("fake:1", dial=silent, connect_timeout_s=0.05, request_timeout_s=60,
                         retry_deadline_s=0.01)
    with pytest.raises(KafkaConnectionError, match="cannot connect"):
        await client.start()
    await client.close()
