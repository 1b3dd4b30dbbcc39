"""Bad input costs the connection (or gets Kafka's error code), never the broker or data."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from cluster.broker.connection import handle_frame
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from cluster.wire.build import build
from tests.cluster.broker.rawconn import RawConn

PRODUCE_V = 9


def produce_body(topic: str, partition: int, records: bytes, transactional_id: str | None = None) -> dict:
    return {"transactional_id": transactional_id, "acks": -1, "timeout": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]}


async def produce(conn: RawConn, topic: str, partition: int, records: bytes,
                  transactional_id: str | None = None):
    resp = await conn.call(0, PRODUCE_V, produce_body(topic, partition, records, transactional_id))
    return resp.responses[0].partition_responses[0]


async def create(conn: RawConn, topic: str, partitions: int = 1, configs: dict | None = None):
    resp = await conn.call(19, 7, {"topics": [{"name": topic, "num_partitions": partitions,
                                               "replication_factor": 1, "assignments": [],
                                               "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
                                   "timeout": 5000, "validate_only": False})
    return resp.topics[0]


async def fetch_all(conn: RawConn, topic: str, partition: int) -> bytes:
    resp = await conn.call(1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
                                   "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                                   "topics": [{"topic": topic, "partitions": [
                                       {"partition": partition, "fetch_offset": 0,
                                        "partition_max_bytes": 1 << 20}]}],
                                   "forgotten_topics_data": [], "rack_id": ""})
    return resp.responses[0].partitions[0].records


async def seeded(broker) -> tuple[RawConn, bytes]:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "keep")).error_code == ErrorCode.none
    batch = build_batch([(b"k", b"precious", [], 1_700_000_000_000)])
    assert (await produce(conn, "keep", 0, batch)).error_code == ErrorCode.none
    return conn, await fetch_all(conn, "keep", 0)


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">i", 100) + b"\x00" * 10,           # truncated, then the client goes away
        struct.pack(">i", 8) + b"\xff" * 8,               # unknown api key
        struct.pack(">i", 200 * 1024 * 1024),            # over the 100 MiB request limit
        struct.pack(">i", -5),                            # negative size
        struct.pack(">i", 12) + struct.pack(">hhi", 3, 12, 1) + b"\x00\x05ab",  # torn header
        struct.pack(">i", 30) + struct.pack(">hhi", 0, 9, 1) + b"\x00\x00" + b"\x07" * 20,
    ],
    ids=["truncated", "unknown-key", "oversize", "negative", "torn-header", "garbage-body"],
)
async def test_bad_frames_cost_only_their_connection(broker, garbage: bytes) -> None:
    good, before = await seeded(broker)
    bad = await RawConn.open(broker.config.port)
    await bad.send_raw(garbage)
    if garbage.startswith(struct.pack(">i", 100)):
        bad.close()
    else:
        assert await bad.closed_by_peer()
    # The broker still serves other clients and nothing written was touched.
    assert await fetch_all(good, "keep", 0) == before
    fresh = await RawConn.open(broker.config.port)
    assert await fetch_all(fresh, "keep", 0) == before
    good.close()
    fresh.close()


async def test_unknown_api_versions_version_gets_v0_answer(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    conn.cid = 41
    hdr = struct.pack(">hhih", 18, 99, 42, -1)
    await conn.send_raw(struct.pack(">i", len(hdr)) + hdr)
    conn.cid = 42
    resp = await conn.reply(codec.response_schema(18, 0))
    assert resp.error_code == ErrorCode.unsupported_version
    assert any(k.api_key == 0 for k in resp.api_keys)
    conn.close()


async def test_produce_errors_use_kafka_codes(broker) -> None:
    conn, before = await seeded(broker)
    good = build_batch([(b"k", b"v", [], 1)])
    # missing topic / partition
    assert (await produce(conn, "nope", 0, good)).error_code == ErrorCode.unknown_topic_or_partition
    assert (await produce(conn, "keep", 7, good)).error_code == ErrorCode.unknown_topic_or_partition
    # bad CRC
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    assert (await produce(conn, "keep", 0, bytes(bad))).error_code == ErrorCode.corrupt_message
    # magic 1 message set
    old = bytearray(good)
    old[16] = 1
    assert (await produce(conn, "keep", 0, bytes(old))).error_code == ErrorCode.unsupported_for_message_format
    # truncated batch
    assert (await produce(conn, "keep", 0, good[:-3])).error_code == ErrorCode.corrupt_message
    # max.message.bytes
    assert (await create(conn, "small", 1, {"max.message.bytes": "100"})).error_code == ErrorCode.none
    big = build_batch([(b"k", b"x" * 500, [], 1)])
    assert (await produce(conn, "small", 0, big)).error_code == ErrorCode.message_too_large
    assert await fetch_all(conn, "keep", 0) == before
    conn.close()


async def test_invalid_topic_names(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    for name in ["bad name", "a/b", "x" * 250, ".."]:
        assert (await create(conn, name)).error_code == ErrorCode.invalid_topic_exception
        md = await conn.call(3, 12, {"topics": [{"name": name, "topic_id": None}],
                                     "allow_auto_topic_creation": True,
                                     "include_topic_authorized_operations": False})
        assert md.topics[0].error_code == ErrorCode.invalid_topic_exception
    conn.close()


_VALID_REQUESTS = [
    codec.encode_request(build(codec.request_schema(3, 12), {"topics": None,
                         "allow_auto_topic_creation": False,
                         "include_topic_authorized_operations": False}), 1, "fuzz"),
    codec.encode_request(build(codec.request_schema(0, PRODUCE_V), produce_body(
        "keep", 0, build_batch([(b"k", b"v", [("h", b"x")], 5)]))), 2, "fuzz"),
    codec.encode_request(build(codec.request_schema(18, 3), {"client_software_name": "f",
                         "client_software_version": "1"}), 3, "fuzz"),
]


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_decoder_never_raises_unexpected(data: bytes) -> None:
    try:
        codec.decode_request(data)
    except (codec.DecodeError, codec.UnsupportedApi):
        pass


@given(st.sampled_from(_VALID_REQUESTS), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
       st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_mutated_frames_decode_or_fail_cleanly(frame: bytes, flips, cut: int) -> None:
    data = bytearray(frame)
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    data = data[: max(0, len(data) - cut % 8)]
    try:
        codec.decode_request(bytes(data))
    except (codec.DecodeError, codec.UnsupportedApi):
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=st.sampled_from(_VALID_REQUESTS),
       flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4))
async def test_dispatcher_survives_mutated_frames(broker, frame: bytes, flips) -> None:
    data = bytearray(frame)
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    reply = await handle_frame(broker, bytes(data), "fuzz")
    assert reply is None or reply is False or isinstance(reply, (bytes, list))
