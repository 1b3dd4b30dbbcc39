"""Produce, fetch and offsets against a real cluster (DCMIRROR_TEST_TARGET), plus
byte-level interop with confluent-kafka (librdkafka) in both directions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from cluster.client import (
    EARLIEST, LATEST, FetchPosition, KafkaClient, KafkaProtocolError, NewTopic,
)
from cluster.client.data import whole_batches
from cluster.client.dial import default_dial
from cluster.client.versions import VersionRange

TS = 1_700_000_000_000


def make_batch(n: int, tag: str = "", codec: int = 0) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i in range(n):
        b.append(i, timestamp=TS + i, key=f"k{tag}{i}".encode(), value=f"v{tag}{i}".encode() * 3,
                 headers=[("h", f"{i}".encode())])
    return bytes(b.build())


def read_records(data: bytes) -> list[tuple[int, bytes | None, bytes | None, int]]:
    out = []
    records = MemoryRecords(data)
    while (batch := records.next_batch()) is not None:
        for r in batch:
            out.append((r.offset, r.key, r.value, r.timestamp))
    return out


async def _topic(client: KafkaClient, name: str, partitions: int = 1) -> str:
    await client.create_topics([NewTopic(name, partitions)])
    return name


# -- pure -------------------------------------------------------------------------------------


def test_whole_batches_drops_partial_tail() -> None:
    a, b = make_batch(3, "a"), make_batch(2, "b")
    assert whole_batches(a + b) == a + b
    assert whole_batches(a + b[:-1]) == a
    assert whole_batches(a + b[:5]) == a
    assert whole_batches(a[:30]) == b""
    assert whole_batches(None) == b"" and whole_batches(b"") == b""


# -- against the target -------------------------------------------------------------------------


async def test_metadata_after_create(client: KafkaClient, name: str) -> None:
    await _topic(client, name, 3)
    meta = await client.metadata([name])
    t = meta.topics[name]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader_id in meta.brokers and p.leader_id in p.replicas
    assert meta.cluster_id
    assert name in await client.list_topics()


async def test_produce_then_fetch_returns_the_same_batches(client: KafkaClient, name: str) -> None:
    await _topic(client, name, 2)
    first, second = make_batch(5, "x"), make_batch(3, "y", codec=2)  # none, snappy
    r1 = await client.produce(name, 1, first)
    r2 = await client.produce(name, 1, second)
    assert (r1.base_offset, r2.base_offset) == (0, 5)
    res = await client.fetch({(name, 1): FetchPosition(0), (name, 0): FetchPosition(0)}, max_wait_ms=50)
    assert res[(name, 0)].error_code == 0 and res[(name, 0)].records == b""
    got = res[(name, 1)]
    assert got.error_code == 0 and got.high_watermark == 8
    # The broker assigns base offsets and the leader epoch; the rest (from magic on, CRC
    # included) must be byte-identical: the mirror depends on it.
    assert len(got.records) == len(first) + len(second)
    assert got.records[16: len(first)] == first[16:]
    assert got.records[len(first) + 16:] == second[16:]
    offsets = [o for o, *_ in read_records(got.records)]
    assert offsets == list(range(8))
    later = await client.fetch({(name, 1): FetchPosition(5)}, max_wait_ms=50)
    assert [o for o, *_ in read_records(later[(name, 1)].records)][-1] == 7


async def test_fetch_by_name_and_by_topic_id(client: KafkaClient, name: str) -> None:
    """Fetch v13+ names topics by id; capping the version to 12 exercises the name path."""
    await _topic(client, name)
    await client.produce(name, 0, make_batch(2))
    conn = await client.connection(await client.leader(name, 0))
    negotiated = conn.version_for(1)
    by_default = await client.fetch({(name, 0): FetchPosition(0)}, max_wait_ms=50)
    original = conn.versions.ranges[1]
    conn.versions.ranges[1] = VersionRange(original.min_version, 12)
    try:
        by_name = await client.fetch({(name, 0): FetchPosition(0)}, max_wait_ms=50)
    finally:
        conn.versions.ranges[1] = original
    assert by_default[(name, 0)].records == by_name[(name, 0)].records != b""
    assert negotiated >= 12


async def test_list_offsets(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "LATEST is the last batch's base offset + 1, not the log end offset")
    await _topic(client, name, 2)
    await client.produce(name, 0, make_batch(4))
    earliest = await client.list_offsets(name, [0, 1], EARLIEST)
    assert {p: o for p, (o, _) in earliest.items()} == {0: 0, 1: 0}
    latest = await client.list_offsets(name, None, LATEST)
    assert {p: o for p, (o, _) in latest.items()} == {0: 4, 1: 0}


async def test_list_offsets_single_record_batches(client: KafkaClient, name: str) -> None:
    await _topic(client, name, 2)
    for _ in range(3):
        await client.produce(name, 1, make_batch(1))
    latest = await client.list_offsets(name, None, LATEST)
    assert {p: o for p, (o, _) in latest.items()} == {0: 0, 1: 3}


async def test_list_offsets_by_timestamp(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "ListOffsets by timestamp answers offset 0 with the current wall-clock time")
    await _topic(client, name)
    await client.produce(name, 0, make_batch(4))
    got = await client.list_offsets(name, [0], TS + 2)
    assert got[0] == (2, TS + 2)


async def test_produce_to_unknown_topic_raises(target, name: str) -> None:
    async with KafkaClient(target.bootstrap, retry_deadline_s=0.3) as client:
        with pytest.raises(KafkaProtocolError) as info:
            await client.produce(name, 0, make_batch(1))
    assert info.value.error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION, after retrying


async def test_fetch_unknown_partition_reports_error(client: KafkaClient, name: str) -> None:
    await _topic(client, name)
    res = await client.fetch({(name, 7): FetchPosition(0)}, max_wait_ms=10)
    assert res[(name, 7)].error_code == 3


async def test_acks_zero(client: KafkaClient, name: str) -> None:
    await _topic(client, name)
    result = await client.produce(name, 0, make_batch(3), acks=0)
    assert result.base_offset == -1
    for _ in range(50):  # acks=0 gives no confirmation: long-poll until it shows up
        res = await client.fetch({(name, 0): FetchPosition(0)}, max_wait_ms=100)
        if res[(name, 0)].high_watermark == 3:
            break
    assert len(read_records(res[(name, 0)].records)) == 3


async def test_offset_for_leader_epoch(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "no OffsetForLeaderEpoch (API 23) in its ApiVersions")
    await _topic(client, name)
    await client.produce(name, 0, make_batch(3))
    epoch = (await client.metadata([name])).topics[name].partitions[0].leader_epoch
    got = await client.offset_for_leader_epoch(name, {0: max(epoch, 0)})
    assert got[0][1] == 3


async def test_every_connection_goes_through_the_dialer(target, name: str) -> None:
    dialed: list[tuple[str, int]] = []

    async def dial(host: str, port: int):
        dialed.append((host, port))
        return await default_dial(host, port)

    async with KafkaClient(target.bootstrap, dial=dial, retry_deadline_s=5) as c:
        await c.create_topics([NewTopic(name, 1)])
        await c.produce(name, 0, make_batch(1))
    assert dialed[0] == tuple((target.bootstrap.split(":")[0], int(target.bootstrap.split(":")[1])))
    assert len(dialed) >= 2  # bootstrap + the leader's advertised address


async def test_many_concurrent_produces_on_one_connection(client: KafkaClient, name: str) -> None:
    await _topic(client, name)
    results = await asyncio.gather(*(client.produce(name, 0, make_batch(2, str(i))) for i in range(20)))
    assert sorted(r.base_offset for r in results) == list(range(0, 40, 2))


# -- interop with librdkafka ----------------------------------------------------------------------


def _consume(bootstrap: str, topic: str, count: int) -> list:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "log_level": 0})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        for _ in range(100):
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
            if len(got) >= count:
                break
        return got
    finally:
        c.close()


async def test_confluent_consumer_reads_what_we_produce(client: KafkaClient, target, name: str) -> None:
    await _topic(client, name)
    batch = make_batch(4, "i")
    await client.produce(name, 0, batch)
    got = await asyncio.to_thread(_consume, target.bootstrap, name, 4)
    assert [(m.offset(), m.key(), m.value(), m.timestamp()[1], m.headers()) for m in got] == [
        (i, f"ki{i}".encode(), f"vi{i}".encode() * 3, TS + i, [("h", f"{i}".encode())]) for i in range(4)
    ]


async def test_we_fetch_what_confluent_produces(client: KafkaClient, target, name: str) -> None:
    await _topic(client, name)

    def produce() -> None:
        p = Producer({"bootstrap.servers": target.bootstrap, "linger.ms": 50, "log_level": 0,
                      "compression.type": "lz4"})
        for i in range(10):
            p.produce(name, key=f"c{i}".encode(), value=bytes([i]) * 100, partition=0, timestamp=TS + i)
        assert p.flush(30) == 0

    await asyncio.to_thread(produce)
    res = await client.fetch({(name, 0): FetchPosition(0)}, max_wait_ms=50)
    assert read_records(res[(name, 0)].records) == [
        (i, f"c{i}".encode(), bytes([i]) * 100, TS + i) for i in range(10)
    ]


async def _fetch_with_limit(client: KafkaClient, name: str) -> tuple[list[bytes], bytes]:
    await _topic(client, name)
    batches = [make_batch(3, str(i)) for i in range(3)]
    for b in batches:
        await client.produce(name, 0, b)
    limit = len(batches[0]) + len(batches[1]) // 2  # the broker may cut the second batch here
    res = await client.fetch({(name, 0): FetchPosition(0, max_bytes=limit)}, max_wait_ms=10)
    return batches, res[(name, 0)].records


async def test_fetch_returns_whole_batches_only(client: KafkaClient, name: str) -> None:
    batches, got = await _fetch_with_limit(client, name)
    assert len(got) in (len(batches[0]), len(batches[0]) + len(batches[1]), sum(map(len, batches)))
    assert got[16:len(batches[0])] == batches[0][16:]
    offsets = [o for o, *_ in read_records(got)]
    assert offsets == list(range(len(offsets))) and len(offsets) % 3 == 0


async def test_fetch_honours_partition_max_bytes(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "ignores partition_max_bytes and returns every batch")
    _, got = await _fetch_with_limit(client, name)
    assert [o for o, *_ in read_records(got)] == [0, 1, 2]


async def test_bootstrap_skips_unreachable_servers(target) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    async with KafkaClient(f"127.0.0.1:{dead},{target.bootstrap}", retry_deadline_s=2) as c:
        assert c.cached_metadata.brokers


async def test_offsets_of_many_topics_in_one_request_per_leader(client: KafkaClient, name: str,
                                                                 monkeypatch) -> None:
    from cluster.client.connection import BrokerConnection

    names = [await _topic(client, f"{name}-{i}", 2) for i in range(3)]
    for i, t in enumerate(names):
        for _ in range(i + 1):
            await client.produce(t, 1, make_batch(1, t))
    sent: list[int] = []
    send = BrokerConnection.send

    async def counting(self, body, *args, **kwargs):
        if body.__api_key__ == 2:
            sent.append(self.node_id)
        return await send(self, body, *args, **kwargs)

    monkeypatch.setattr(BrokerConnection, "send", counting)
    tps = [(t, p) for t in names for p in (0, 1)]
    await client.metadata(names)  # leaders known: only ListOffsets is counted
    ends = await client.end_offsets(tps)
    assert ends == {(t, p): (i + 1 if p == 1 else 0) for i, t in enumerate(names) for p in (0, 1)}
    leaders = {await client.leader(*tp) for tp in tps}
    assert sorted(sent) == sorted(leaders)  # one request per leader, not one per topic
    assert await client.start_offsets(tps) == {tp: 0 for tp in tps}
    assert await client.offset_ranges(tps) == {tp: (0, ends[tp]) for tp in tps}
    assert await client.offsets_at([], LATEST) == {}


async def test_offsets_of_an_unknown_partition_raise(client: KafkaClient, name: str) -> None:
    await _topic(client, name)
    with pytest.raises(KafkaProtocolError):
        await client.end_offsets([(name, 0), (name, 5)])
