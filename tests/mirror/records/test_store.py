"""The one store of dcmirror's `__dcmirror.*` topics (mirror/records/store.py): one
replication-factor rule, read all / from an offset / the tail, append in bounded batches."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.client.client import KafkaClient
from cluster.client.metadata import BrokerInfo, ClusterMetadata
from mirror.records import link_state as ls
from mirror.records.offsets import Checkpoint, checkpoints_store, encode_checkpoint, read_checkpoints
from mirror.records.store import APPEND_CHUNK, InternalStore, InternalTopic, replication_factor


@dataclass
class FakeCluster:
    brokers: int

    async def metadata(self, topics=None) -> ClusterMetadata:
        return ClusterMetadata(brokers={i: BrokerInfo(i, "h", 9092) for i in range(self.brokers)})


async def test_three_copies_or_one_per_broker() -> None:
    assert [await replication_factor(FakeCluster(n)) for n in (1, 2, 3, 5)] == [1, 2, 3, 3]  # type: ignore[arg-type]


async def test_ensure_read_tail_append(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        store = InternalStore(c, InternalTopic("__dcmirror.test", {"retention.ms": "-1"}))
        assert await store.read() == ([], 0) and await store.read_tail(5) == []  # nothing created by reading
        assert "__dcmirror.test" not in await c.list_topics(include_internal=True)
        n = APPEND_CHUNK + 7  # more than one batch
        await store.append([(b"k%d" % i, b"v%d" % i) for i in range(n)])
        configs = (await c.describe_configs(["__dcmirror.test"]))["__dcmirror.test"]
        assert configs["retention.ms"].value == "-1"
        records, pos = await store.read()
        assert pos == n and [r[0] for r in records] == list(range(n)) and records[-1][1:] == (b"k%d" % (n - 1), b"v%d" % (n - 1))
        again, pos2 = await store.read(n - 3)
        assert [r[0] for r in again] == [n - 3, n - 2, n - 1] and pos2 == n
        assert [r[2] for r in await store.read_tail(2)] == [b"v%d" % (n - 2), b"v%d" % (n - 1)]
        await InternalStore(c, store.topic).ensure()  # exists already: harmless


async def test_record_kinds_round_trip_through_the_store(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        cps = [Checkpoint("g", "orders", p, 10 + p, 20 + p, None, 1000) for p in range(3)]
        await checkpoints_store(c, "e2w").append([encode_checkpoint(cp) for cp in cps])
        assert await read_checkpoints(c, "e2w") == cps
        assert await ls.read_last_contact(c, "e2w") is None
        await ls.write_state(c, "e2w", ls.LinkState("paused", 5, by="test"))
        await ls.write_contact(c, "e2w", ls.Contact(7, {"orders": {0: 3}}, (), "me"))
        await ls.write_contact(c, "e2w", ls.Contact(8, {"orders": {0: 4}}, (), "me"))
        assert (await ls.read_state(c, "e2w")).state.state == "paused"
        assert (await ls.read_last_contact(c, "e2w")).source_ends == {"orders": {0: 4}}  # type: ignore[union-attr]
