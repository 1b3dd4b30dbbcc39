"""ReplicaManager on two in-process brokers with a stand-in controller (compare-and-set on
the partition epoch, as cluster/metadata's AlterPartition): a follower that stops
fetching is shrunk out of the ISR after replica.lag.time.max.ms, acks=all is then refused
under min.insync.replicas, and the follower is added back once it caught up again; a
leader change through records makes the old leader follow and truncate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.replica_fetcher import FetcherConfig
from cluster.broker.replica_manager import ReplicaManager
from cluster.broker.server import Broker
from cluster.replication.state import IsrProposal, PartitionAssignment
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create
from tests.cluster.broker.test_replica_fetch import produce

LAG_MS = 400


def batch(v: bytes) -> bytes:
    return build_batch([(b"k", v, [], 1_700_000_000_000)])


class Controller:
    """Holds t-0's record; AlterPartition by CAS; every change goes to every manager."""

    def __init__(self, record: PartitionAssignment) -> None:
        self.record = record
        self.managers: dict[int, ReplicaManager] = {}
        self.refused = 0

    def publish(self, record: PartitionAssignment) -> None:
        self.record = record
        for m in self.managers.values():
            m.apply("t", 0, record)

    async def alter_partition(self, p: IsrProposal, broker_epoch: int) -> PartitionAssignment | None:
        rec = self.record
        if (p.partition_epoch, p.leader_epoch, p.leader) != (rec.partition_epoch, rec.leader_epoch, rec.leader):
            self.refused += 1
            return None
        new = PartitionAssignment(rec.leader, rec.leader_epoch, p.isr_ids, rec.replicas, rec.partition_epoch + 1)
        self.publish(new)
        return new


@pytest.fixture
async def cluster(tmp_path: Path):
    brokers = {}
    for node in (1, 2):
        b = Broker(BrokerConfig(name="test", node_id=node, data_dir=tmp_path / f"b{node}", port=0))
        await b.start()
        brokers[node] = b
    conns = {n: await RawConn.open(b.config.port) for n, b in brokers.items()}
    for c in conns.values():
        assert (await create(c, "t", configs={"min.insync.replicas": "2"})).error_code == ErrorCode.none
    ctl = Controller(PartitionAssignment(1, 0, (1, 2), (1, 2), 0))

    def manager(node: int) -> ReplicaManager:
        m = ReplicaManager(brokers[node], 1, ctl.alter_partition,
                           lambda n: ("127.0.0.1", brokers[n].config.port),
                           replica_lag_time_max_ms=LAG_MS, check_interval_s=0.05,
                           fetcher_config=FetcherConfig(max_wait_ms=100, backoff_s=0.05))
        ctl.managers[node] = m
        m.apply("t", 0, ctl.record)
        m.start()
        return m

    for node in brokers:
        manager(node)
    yield brokers, conns, ctl, manager
    for m in ctl.managers.values():
        await m.stop()
    for c in conns.values():
        c.close()
    for b in brokers.values():
        await b.stop()


async def test_shrink_refuse_and_expand(cluster):
    brokers, conns, ctl, manager = cluster
    lead = brokers[1].partitions[("t", 0)]
    r = await asyncio.wait_for(produce(conns[1], batch(b"a")), 10)
    assert r.error_code == ErrorCode.none
    await ctl.managers.pop(2).stop()  # broker 2 stops fetching (its process hangs)
    pending = asyncio.ensure_future(produce(conns[1], batch(b"b"), timeout=1500))
    await until(lambda: ctl.record.isr == (1,), timeout=10)  # shrunk after the lag time
    # the produce in flight can no longer be acknowledged; new ones are refused
    assert (await asyncio.wait_for(pending, 10)).error_code in (
        ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out)
    assert (await produce(conns[1], batch(b"c"))).error_code == ErrorCode.not_enough_replicas
    manager(2)  # broker 2 is back: it catches up and is added again
    await until(lambda: ctl.record.isr == (1, 2), timeout=10)
    r = await asyncio.wait_for(produce(conns[1], batch(b"d")), 10)
    assert r.error_code == ErrorCode.none
    follower = brokers[2].partitions[("t", 0)]
    await until(lambda: follower.log.log_end_offset == lead.log.log_end_offset)
    assert follower.log.read(0, 1 << 20) == lead.log.read(0, 1 << 20)


async def test_leader_change_by_record(cluster):
    brokers, conns, ctl, manager = cluster
    for v in (b"x", b"y"):
        assert (await asyncio.wait_for(produce(conns[1], batch(v)), 10)).error_code == ErrorCode.none
    rec = ctl.record
    ctl.publish(PartitionAssignment(2, rec.leader_epoch + 1, rec.isr[::-1], rec.replicas, rec.partition_epoch + 1))
    assert (await produce(conns[1], batch(b"stale"))).error_code == ErrorCode.not_leader_or_follower
    r = await asyncio.wait_for(produce(conns[2], batch(b"z")), 10)
    assert r.error_code == ErrorCode.none and r.base_offset == 2
    old, new = brokers[1].partitions[("t", 0)], brokers[2].partitions[("t", 0)]
    await until(lambda: old.log.log_end_offset == 3 and old.high_watermark == 3)
    assert old.log.read(0, 1 << 20) == new.log.read(0, 1 << 20)
