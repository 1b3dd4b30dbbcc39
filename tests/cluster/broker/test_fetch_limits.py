"""Fetch byte limits as Apache Kafka applies them (KIP-74), with raw requests.

The response budget is min(request max_bytes, broker fetch.max.bytes); each partition gets
min(partition_max_bytes, what is left); until a partition has returned data, the first
batch at the fetch offset comes whole even past those limits, once; after that nothing
goes past the budget. A partition's read counts the byte range Kafka would send, which may
end in a partial batch: Kafka sends that tail, we drop it, so we return only whole batches
but the next partitions get exactly what they would get from Kafka.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import iter_batches
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, produce

TS = 1_700_000_000_000
MiB = 1 << 20


def batch_of(size_hint: int, key: bytes = b"k") -> bytes:
    """One uncompressed single-record batch of about `size_hint` bytes."""
    return build_batch([(key, b"v" * max(size_hint - 80, 1), [], TS)])


async def fill(conn: RawConn, topic: str, partitions: int, batches: list[bytes]) -> None:
    assert (await create(conn, topic, partitions)).error_code == ErrorCode.none
    for p in range(partitions):
        for b in batches:
            assert (await produce(conn, topic, p, b)).error_code == ErrorCode.none


async def fetch(conn: RawConn, max_bytes: int, wants: list[tuple[str, int, int, int]],
                version: int = 12) -> list[bytes]:
    """Records per (topic, partition, fetch_offset, partition_max_bytes), in request order."""
    topics: dict[str, list[dict]] = {}
    for topic, part, offset, pmax in wants:
        topics.setdefault(topic, []).append({"partition": part, "fetch_offset": offset,
                                             "partition_max_bytes": pmax})
    resp = await conn.call(1, version, {
        "max_wait": 0, "min_bytes": 0, "max_bytes": max_bytes, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "replica_id": -1,
        "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
        "forgotten_topics_data": [], "rack_id": ""})
    out = []
    for t in resp.responses:
        for p in t.partitions:
            assert p.error_code == ErrorCode.none
            out.append(bytes(p.records or b""))
    return out


def whole_batches(data: bytes) -> list[int]:
    """Base offsets of the batches in `data`, which must hold whole batches only."""
    found = list(iter_batches(data, allow_partial_tail=False))
    return [h.base_offset for _, h in found]


async def test_max_bytes_spread_over_many_partitions_as_kafka(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    one = batch_of(1000)
    S = len(one)
    await fill(conn, "many", 8, [one] * 6)

    # Each partition may read 2.5 batches: Kafka sends 2 whole + half of the third and
    # counts 2.5 S, so a 10 S budget covers four partitions and the rest get nothing.
    got = await fetch(conn, 10 * S, [("many", p, 0, 2 * S + S // 2) for p in range(8)])
    assert [whole_batches(d) for d in got] == [[0, 1]] * 4 + [[]] * 4
    assert sum(len(d) for d in got) <= 10 * S

    # Limits on batch boundaries: three partitions of three, one batch for the fourth.
    got = await fetch(conn, 10 * S, [("many", p, 0, 3 * S) for p in range(8)])
    assert [whole_batches(d) for d in got] == [[0, 1, 2]] * 3 + [[0]] + [[]] * 4
    assert sum(len(d) for d in got) == 10 * S

    # A later partition whose next batch does not fit what is left gets nothing (no KIP-74
    # exception after the first partition with data).
    got = await fetch(conn, 3 * S + S // 2, [("many", 0, 3, 3 * S), ("many", 1, 0, 3 * S)])
    assert [whole_batches(d) for d in got] == [[3, 4, 5], []]


async def test_partition_max_bytes_respected(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    one = batch_of(500)
    S = len(one)
    await fill(conn, "pmax", 2, [one] * 10)
    got = await fetch(conn, 50 * MiB, [("pmax", 0, 0, 3 * S + 1), ("pmax", 1, 4, 2 * S - 1)])
    assert [whole_batches(d) for d in got] == [[0, 1, 2], [4]]
    got = await fetch(conn, 50 * MiB, [("pmax", 0, 0, 0), ("pmax", 1, 0, 4 * S)])
    # partition_max_bytes 0 on the first partition still returns its first batch (KIP-74).
    assert [whole_batches(d) for d in got] == [[0], [0, 1, 2, 3]]


async def test_oversize_first_batch_comes_whole_once_and_next_partition_gets_nothing(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    big, small = batch_of(200_000, b"big"), batch_of(1000)
    assert (await create(conn, "over", 3)).error_code == ErrorCode.none
    for b in (big, small, small):
        assert (await produce(conn, "over", 0, b)).error_code == ErrorCode.none
    for p in (1, 2):
        for b in (small, small, big):
            assert (await produce(conn, "over", p, b)).error_code == ErrorCode.none
    limit = 50_000

    # Over both limits: the big batch alone (not the small ones after it), then nothing.
    got = await fetch(conn, limit, [("over", 0, 0, limit), ("over", 1, 0, limit)])
    assert (whole_batches(got[0]), len(got[0])) == ([0], len(big))
    assert got[1] == b""

    # Over partition_max_bytes only: still exactly the one big batch; the budget it used is
    # gone (200 KB of a 300 KB budget), so partition 1 reads at most what is left.
    got = await fetch(conn, 300_000, [("over", 0, 0, limit), ("over", 1, 0, 300_000)])
    assert (whole_batches(got[0]), len(got[0])) == ([0], len(big))
    assert whole_batches(got[1]) == [0, 1]  # the big batch at offset 2 does not fit 100 KB

    # An empty first partition (fetched at its end) does not use up the exception.
    got = await fetch(conn, limit, [("over", 0, 3, limit), ("over", 1, 2, limit), ("over", 2, 2, limit)])
    assert [whole_batches(d) for d in got] == [[], [2], []]
    assert len(got[1]) == len(big)

    # The big batch behind small ones is not an exception: it waits for the next fetch.
    got = await fetch(conn, limit, [("over", 1, 0, limit)])
    assert whole_batches(got[0]) == [0, 1]
    assert len(got[0]) == 2 * len(small)


async def test_old_kio_encoded_versions_apply_the_same_limits(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    one = batch_of(700)
    S = len(one)
    await fill(conn, "oldv", 3, [one] * 4)
    for version in (4, 8, 11):  # kio encodes these; v12+ go through fetch_response_parts
        got = await fetch(conn, 3 * S, [("oldv", p, 0, 2 * S) for p in range(3)], version=version)
        assert [whole_batches(d) for d in got] == [[0, 1], [0], []]


@pytest.fixture
async def capped_broker(tmp_path: Path):
    """A broker whose fetch.max.bytes is 64 KiB."""
    b = Broker(BrokerConfig(name="capped", data_dir=tmp_path / "capped", port=0,
                            fetch_max_bytes=64 * 1024))
    await b.start()
    yield b
    await b.stop()


async def test_broker_fetch_max_bytes_caps_every_response(capped_broker) -> None:
    conn = await RawConn.open(capped_broker.config.port)
    one = batch_of(10_000)
    S = len(one)
    await fill(conn, "cap", 2, [one] * 10)
    got = await fetch(conn, 2**31 - 1, [("cap", 0, 0, 2**31 - 1), ("cap", 1, 0, 2**31 - 1)])
    n = 64 * 1024 // S
    assert [whole_batches(d) for d in got] == [list(range(n)), []]
    assert sum(len(d) for d in got) <= 64 * 1024
    resp = await conn.call(32, 4, {"resources": [{"resource_type": 4, "resource_name": "",
                                                  "configuration_keys": ["fetch.max.bytes"]}],
                                   "include_synonyms": False, "include_documentation": False})
    assert [(c.name, c.value) for c in resp.results[0].configs] == [("fetch.max.bytes", "65536")]


def test_fetch_max_bytes_below_kafka_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fetch.max.bytes must be an integer of at least 1024"):
        BrokerConfig(name="x", data_dir=tmp_path, port=0, fetch_max_bytes=1000)


async def test_big_partition_small_max_bytes_reads_only_what_it_returns(broker) -> None:
    """The probe: max_bytes 1 MiB (partition_max_bytes unlimited) on a 50 MiB partition
    returned the whole partition. Now ~1 MiB comes back and the broker allocates about
    that much, not the partition's size."""
    conn = await RawConn.open(broker.config.port)
    chunk = batch_of(900_000)
    assert (await create(conn, "huge", 1)).error_code == ErrorCode.none
    for _ in range(60):
        assert (await produce(conn, "huge", 0, chunk)).error_code == ErrorCode.none
    assert broker.partitions[("huge", 0)].log.size_bytes() > 50 * MiB

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        got = await fetch(conn, MiB, [("huge", 0, 0, 2**31 - 1)])
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert whole_batches(got[0]) == [0]
    assert len(got[0]) <= MiB + len(chunk)
    assert peak < 20 * MiB, f"one 1 MiB fetch allocated {peak / MiB:.1f} MiB"

    # From the middle, with a budget a bit over one batch: one batch, read via the index.
    got = await fetch(conn, MiB, [("huge", 0, 40, MiB)])
    assert whole_batches(got[0]) == [40]
