"""Three in-process brokers, RF 3, min.insync.replicas 2, ReplicaManagers and a stand-in
controller that elects from the ISR: acks=all producing through two leader stops and
restarts. After healing, the chaos harness's checks: every acknowledged value at the
offset it was acknowledged at, the three logs byte-identical up to the high watermark,
one leader per epoch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.replica_fetcher import FetcherConfig
from cluster.broker.replica_manager import ReplicaManager
from cluster.broker.server import Broker
from cluster.replication.state import PartitionAssignment
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batches
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create
from tests.cluster.broker.test_replica_fetch import produce
from tests.cluster.broker.test_replica_manager import Controller

NODES = (1, 2, 3)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.brokers: dict[int, Broker] = {}
        self.ctl = Controller(PartitionAssignment(1, 0, NODES, NODES, 0))
        self.leaders: dict[int, int] = {0: 1}

    async def start(self, node: int) -> None:
        b = Broker(BrokerConfig(name="test", node_id=node, data_dir=self.root / f"b{node}", port=0))
        await b.start()
        self.brokers[node] = b
        if ("t", 0) not in b.partitions:
            conn = await RawConn.open(b.config.port)
            assert (await create(conn, "t", configs={"min.insync.replicas": "2"})).error_code == ErrorCode.none
            conn.close()
        m = ReplicaManager(b, len(self.leaders), self.ctl.alter_partition, self.address_of,
                           replica_lag_time_max_ms=600, check_interval_s=0.05,
                           fetcher_config=FetcherConfig(max_wait_ms=100, backoff_s=0.05))
        self.ctl.managers[node] = m
        m.apply("t", 0, self.ctl.record)
        m.start()

    def address_of(self, node: int) -> tuple[str, int] | None:
        b = self.brokers.get(node)
        return ("127.0.0.1", b.config.port) if b is not None else None

    async def stop(self, node: int) -> None:
        """The broker goes away; the controller fences it and elects from the ISR."""
        await self.ctl.managers.pop(node).stop()
        await self.brokers.pop(node).stop()
        rec = self.ctl.record
        isr = tuple(r for r in rec.isr if r != node)
        if rec.leader == node:
            leader = next(r for r in isr if r in self.brokers)
            assert rec.leader_epoch + 1 not in self.leaders
            self.leaders[rec.leader_epoch + 1] = leader
            self.ctl.publish(PartitionAssignment(leader, rec.leader_epoch + 1, isr, rec.replicas,
                                                 rec.partition_epoch + 1))
        else:
            self.ctl.publish(PartitionAssignment(rec.leader, rec.leader_epoch, isr, rec.replicas,
                                                 rec.partition_epoch + 1))

    async def close(self) -> None:
        for node in list(self.brokers):
            await self.ctl.managers.pop(node).stop()
            await self.brokers.pop(node).stop()


@pytest.fixture
async def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    for node in NODES:
        await c.start(node)
    yield c
    await asyncio.wait_for(c.close(), 30)  # a fetcher that ignores its stop hangs here


async def produce_some(c: Cluster, acked: dict[bytes, int], count: int, tag: str) -> None:
    """acks=all to whoever the record names leader, retrying refusals as a client would."""
    n = 0
    while n < count:
        leader = c.brokers[c.ctl.record.leader]
        conn = await RawConn.open(leader.config.port)
        try:
            value = f"{tag}-{n}".encode()
            r = await asyncio.wait_for(produce(conn, build_batch([(b"k", value, [], int(time.time() * 1000))]),
                                               timeout=3000), 10)
        finally:
            conn.close()
        if r.error_code == ErrorCode.none:
            acked[value] = r.base_offset
            n += 1
        else:  # NOT_ENOUGH_REPLICAS while the ISR regrows, or a timeout: try again
            await until(lambda: len(c.ctl.record.isr) >= 2)


async def test_acked_writes_survive_leader_stops_and_restarts(cluster):
    c = cluster
    acked: dict[bytes, int] = {}
    await produce_some(c, acked, 10, "a")
    await c.stop(1)  # leader 1 goes: 2 leads epoch 1
    await produce_some(c, acked, 10, "b")
    await c.start(1)
    await until(lambda: set(c.ctl.record.isr) == set(NODES), timeout=20)
    await c.stop(2)  # leader 2 goes: 3 leads epoch 2
    await produce_some(c, acked, 10, "c")
    await c.start(2)
    await until(lambda: set(c.ctl.record.isr) == set(NODES), timeout=20)
    leader = c.brokers[c.ctl.record.leader].partitions[("t", 0)]
    await until(lambda: all(b.partitions[("t", 0)].log.log_end_offset == leader.log.log_end_offset
                            for b in c.brokers.values()), timeout=20)
    hw = leader.high_watermark
    reference = leader.log.read(0, 1 << 24, max_offset=hw)
    for b in c.brokers.values():
        assert b.partitions[("t", 0)].log.read(0, 1 << 24, max_offset=hw) == reference
    held = {r.value: r.offset for _, records in decode_batches(reference) for r in records}
    assert len(held) == 30
    for value, offset in acked.items():
        assert held.get(value) == offset, f"acked {value!r} at {offset} is not there"
    assert c.leaders == {0: 1, 1: 2, 2: 3}
