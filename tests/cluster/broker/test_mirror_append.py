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
