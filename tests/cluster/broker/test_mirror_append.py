"""The private offset-preserving append path (API key 10000) the mirror uses."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.wire import codec
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, fetch_all, produce, produce_body


async def mirror_append(conn: RawConn, topic: str, partition: int, records: bytes):
    resp = await conn.call(codec.DCMIRROR_APPEND, 0, produce_body(topic, partition, records))
    return resp.responses[0].partition_responses[0]


def batch_at(base: int, n: int, epoch: int = 3) -> bytes:
    return build_batch([(b"k%d" % i, b"v%d" % (base + i), [], 1000 + i) for i in range(n)],
                       base_offset=base, partition_leader_epoch=epoch)


async def test_advertised_in_api_versions(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    resp = await conn.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert any(k.api_key == codec.DCMIRROR_APPEND for k in resp.api_keys)
    conn.close()


async def test_offsets_gaps_and_resends_are_preserved(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "orders", 1, {"dcmirror.mirror.source": "east"})).error_code == 0
    first, second = batch_at(100, 5), batch_at(110, 3)   # log start 100, gap 105..109
    r = await mirror_append(conn, "orders", 0, first + second)
    assert r.error_code == ErrorCode.none and r.base_offset == 100
    assert r.log_start_offset == 100
    data = await fetch_all_from(conn, "orders", 100)
    assert data == first + second  # byte for byte, offsets and leader epochs included
    # a mirror that crashed re-sends its last request: nothing is duplicated
    r = await mirror_append(conn, "orders", 0, second)
    assert r.error_code == ErrorCode.none
    assert await fetch_all_from(conn, "orders", 100) == first + second
    # ordinary producers are refused on a mirror topic
    assert (await produce(conn, "orders", 0, batch_at(0, 1))).error_code == ErrorCode.invalid_request
    # a batch straddling the log end is refused
    assert (await mirror_append(conn, "orders", 0, batch_at(112, 3))).error_code == ErrorCode.invalid_request
    conn.close()


async def test_refused_on_ordinary_topics(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "plain")
    assert (await mirror_append(conn, "plain", 0, batch_at(0, 2))).error_code == ErrorCode.invalid_request
    assert await fetch_all(conn, "plain", 0) == b""
    conn.close()


async def fetch_all_from(conn: RawConn, topic: str, offset: int) -> bytes:
    resp = await conn.call(1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
                                   "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                                   "topics": [{"topic": topic, "partitions": [
                                       {"partition": 0, "fetch_offset": offset,
                                        "partition_max_bytes": 1 << 20}]}],
                                   "forgotten_topics_data": [], "rack_id": ""})
    data = resp.responses[0].partitions[0].records
    assert [h.base_offset for _, h in rb.iter_batches(data)]  # whole batches
    return data


async def test_first_append_with_markers_lists_each_aborted_transaction_once(broker) -> None:
    """The partition's transaction state is loaded before the first mirrored append, so an
    ABORT marker in that append is not counted twice (a duplicate entry made librdkafka
    drop later committed transactions)."""
    from cluster.wire.control import build_control_batch

    conn = await RawConn.open(broker.config.port)
    await create(conn, "tx", 1, {"dcmirror.mirror.source": "east"})
    pid, epoch = 77, 0
    data = []
    off = 0
    for i, commit in enumerate([True, False, True]):
        data.append(build_batch([(b"k", b"v%d" % i, [], 1000)], base_offset=off, producer_id=pid,
                                producer_epoch=epoch, base_sequence=i, transactional=True))
        off += 1
        data.append(build_control_batch(pid, epoch, commit, 0, 1000, base_offset=off))
        off += 1
    assert (await mirror_append(conn, "tx", 0, b"".join(data))).error_code == 0
    resp = await conn.call(1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
                                   "isolation_level": 1, "session_id": 0, "session_epoch": -1,
                                   "topics": [{"topic": "tx", "partitions": [
                                       {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
                                   "forgotten_topics_data": [], "rack_id": ""})
    part = resp.responses[0].partitions[0]
    assert part.last_stable_offset == off
    assert [(a.producer_id, a.first_offset) for a in part.aborted_transactions] == [(pid, 2)]
    conn.close()


async def test_unencodable_offsets_refused_and_partition_stays_readable(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        assert (await create(conn, "edge", 1, {"dcmirror.mirror.source": "east"})).error_code == 0
        good = batch_at(10, 2)
        assert (await mirror_append(conn, "edge", 0, good)).error_code == ErrorCode.none
        top = (1 << 63) - 1
        for bad in (batch_at(top, 1), batch_at(top - 1, 2), batch_at(top - 3, 5),
                    good[:0] + batch_at(-5, 1)):
            r = await mirror_append(conn, "edge", 0, bad)
            assert r.error_code == ErrorCode.invalid_record
        # A good batch followed by a bad one in the same request: nothing is written.
        r = await mirror_append(conn, "edge", 0, batch_at(12, 1) + batch_at(top, 1))
        assert r.error_code == ErrorCode.invalid_record
        assert await fetch_all_from(conn, "edge", 10) == good
        # The largest encodable log end is still accepted.
        r = await mirror_append(conn, "edge", 0, batch_at(top - 2, 2))
        assert r.error_code == ErrorCode.none
        resp = await conn.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": "edge", "partitions": [{"partition_index": 0, "current_leader_epoch": -1,
                                             "timestamp": -1}]}]})
        assert resp.topics[0].partitions[0].offset == top
        assert await fetch_all_from(conn, "edge", 10) == good + batch_at(top - 2, 2)
    finally:
        conn.close()
