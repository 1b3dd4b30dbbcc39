"""Two in-process brokers, one event loop: broker 2 replicates t-0 from broker 1 with the
ReplicaFetcher, acks=all completes once it has, and after a leader change with a divergent
tail the old leader truncates and both logs are byte-identical."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker import replicas
from cluster.broker.config import BrokerConfig
from cluster.broker.replica_fetcher import FetcherConfig, ReplicaFetcher
from cluster.broker.server import Broker
from cluster.replication.leader import ReplicationConfig
from cluster.replication.state import PartitionAssignment
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create
from tests.cluster.broker.test_replica_fetch import produce

FAST = FetcherConfig(max_wait_ms=100, backoff_s=0.05)


def batch(v: bytes) -> bytes:
    return build_batch([(b"k", v, [], 1_700_000_000_000)])


@pytest.fixture
async def pair(tmp_path: Path):
    brokers = []
    for node in (1, 2):
        b = Broker(BrokerConfig(name="test", node_id=node, data_dir=tmp_path / f"b{node}", port=0))
        await b.start()
        brokers.append(b)
    conns = [await RawConn.open(b.config.port) for b in brokers]
    for c in conns:
        assert (await create(c, "t")).error_code == ErrorCode.none
    fetchers: list[ReplicaFetcher] = []
    yield brokers, conns, fetchers
    for f in fetchers:
        await f.stop()
    for c in conns:
        c.close()
    for b in brokers:
        await b.stop()


def bytes_of(b: Broker) -> bytes:
    log = b.partitions[("t", 0)].log
    return log.read(log.log_start_offset, 1 << 24) if log.log_end_offset > log.log_start_offset else b""


async def test_follower_replicates_and_acks_all_completes(pair):
    (b1, b2), (c1, c2), fetchers = pair
    rec = PartitionAssignment(1, 1, (1, 2), (1, 2), 0)
    p1, p2 = b1.partitions[("t", 0)], b2.partitions[("t", 0)]
    p1.lead(1, rec, ReplicationConfig(30_000, 2), high_watermark=0, now_ms=replicas.now_ms())
    f = ReplicaFetcher(b2, 1, "127.0.0.1", b1.config.port, FAST)
    fetchers.append(f)
    f.follow(p2, rec)
    f.start()
    for i in range(5):
        r = await asyncio.wait_for(produce(c1, batch(b"v%d" % i)), 10)
        assert r.error_code == ErrorCode.none and r.base_offset == i
    assert p1.high_watermark == 5
    await until(lambda: p2.high_watermark == 5)
    assert bytes_of(b2) == bytes_of(b1)
    assert [h.partition_leader_epoch for h in p2.log.iter_batch_headers()] == [1] * 5


async def test_leader_change_truncates_the_old_leaders_tail(pair):
    (b1, b2), (c1, c2), fetchers = pair
    p1, p2 = b1.partitions[("t", 0)], b2.partitions[("t", 0)]
    rec1 = PartitionAssignment(1, 1, (1, 2), (1, 2), 0)
    p1.lead(1, rec1, ReplicationConfig(30_000, 2), high_watermark=0, now_ms=replicas.now_ms())
    f2 = ReplicaFetcher(b2, 1, "127.0.0.1", b1.config.port, FAST)
    fetchers.append(f2)
    f2.follow(p2, rec1)
    f2.start()
    assert (await asyncio.wait_for(produce(c1, batch(b"committed")), 10)).error_code == ErrorCode.none
    await until(lambda: p2.high_watermark == 1)
    await f2.stop()  # broker 2 loses broker 1 ...
    for v in (b"tail-1", b"tail-2"):  # ... which writes a tail nobody replicates
        assert (await produce(c1, batch(v), acks=1)).error_code == ErrorCode.none
    # The controller makes broker 2 leader in epoch 2; broker 1 follows it.
    f2.unfollow("t", 0)
    rec2 = PartitionAssignment(2, 2, (2, 1), (1, 2), 1)
    p2.lead(2, rec2, ReplicationConfig(30_000, 2), high_watermark=p2.high_watermark,
            now_ms=replicas.now_ms())
    f1 = ReplicaFetcher(b1, 2, "127.0.0.1", b2.config.port, FAST)
    fetchers.append(f1)
    f1.follow(p1, rec2)
    f1.start()
    r = await asyncio.wait_for(produce(c2, batch(b"new-leader")), 10)
    assert r.error_code == ErrorCode.none and r.base_offset == 1
    # the follower appended on the log's (wall) clock: leading does not roll a segment
    assert p2.log.segment_count == 1
    await until(lambda: p1.log.log_end_offset == 2 and p1.high_watermark == 2)
    assert bytes_of(b1) == bytes_of(b2)
    assert [h.partition_leader_epoch for h in p1.log.iter_batch_headers()] == [1, 2]
    # the deposed leader sends producers and consumers to the new one
    assert (await produce(c1, batch(b"stale"), acks=1)).error_code == ErrorCode.not_leader_or_follower
    resp = await c1.call(1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
                                 "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [],
                                 "rack_id": "", "replica_id": -1, "topics": [{"topic": "t", "partitions": [
                                     {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    assert resp.responses[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
