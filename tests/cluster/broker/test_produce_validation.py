"""Produce and DcMirrorAppend refuse malformed-but-CRC-valid batches and change nothing;
after kill -9 every acknowledged record reads back (a model-checked random sequence)."""

from __future__ import annotations

import asyncio
import random

import pytest
from kio.schema.errors import ErrorCode

from cluster.client import FetchPosition, KafkaClient, KafkaProtocolError, NewTopic
from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import CODEC_GZIP, CODEC_LZ4, CODEC_NONE, CODEC_SNAPPY, CODEC_ZSTD
from cluster.wire.records import decode_batches
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, fetch_all, produce
from tests.cluster.wire.malformed import TS, probes

MIRROR_APPEND = 10000


@pytest.mark.parametrize("probe", probes(), ids=lambda p: p.name)
async def test_probe_refused_and_nothing_changes(broker, probe) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "t")).error_code == 0
    good = build_batch([(b"k", b"precious", [], TS)])
    assert (await produce(conn, "t", 0, good)).error_code == 0
    before = await fetch_all(conn, "t", 0)
    answer = await produce(conn, "t", 0, probe.batch)
    assert answer.error_code == probe.produce_answer, answer.error_message
    assert answer.error_message and not answer.record_errors
    if probe.produce_code is not None:  # refused for want of a transactional id: with one,
        answer = await produce(conn, "t", 0, probe.batch, transactional_id="tid")  # the validator
        assert answer.error_code == probe.code, answer.error_message
    assert await fetch_all(conn, "t", 0) == before
    after = await produce(conn, "t", 0, good)
    assert (after.error_code, after.base_offset) == (0, 1)
    conn.close()


async def test_compacted_topic_names_the_keyless_record(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "c", configs={"cleanup.policy": "compact"})).error_code == 0
    batch = build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS), (None, b"3", [], TS)])
    answer = await produce(conn, "c", 0, batch)
    assert answer.error_code == ErrorCode.invalid_record
    assert [e.batch_index for e in answer.record_errors] == [2]
    conn.close()


async def test_mirror_append_refuses_garbage_and_unencodable_offsets(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "m", configs={"dcmirror.mirror.source": "src"})).error_code == 0

    async def mirror(records: bytes):
        resp = await conn.call(MIRROR_APPEND, 0, {"transactional_id": None, "acks": -1, "timeout": 5000,
                                                  "topic_data": [{"name": "m", "partition_data": [
                                                      {"index": 0, "records": records}]}]})
        return resp.responses[0].partition_responses[0]

    ok = build_batch([(b"k", b"v", [], TS)], base_offset=5)
    assert (await mirror(ok)).error_code == 0
    before = await fetch_all(conn, "m", 0)
    lying = next(p for p in probes() if p.name == "records_count>records").batch
    assert (await mirror(lying)).error_code == ErrorCode.invalid_record
    huge = build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS)], base_offset=2**63 - 1)
    assert (await mirror(huge)).error_code == ErrorCode.invalid_record
    assert await fetch_all(conn, "m", 0) == before
    conn.close()


CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]


async def _read_values(client: KafkaClient, topic: str, partition: int) -> list[bytes]:
    values: list[bytes] = []
    offset = 0
    while True:
        got = (await client.fetch({(topic, partition): FetchPosition(offset, 4 << 20)}, max_wait_ms=0,
                                  min_bytes=0))[(topic, partition)]
        assert got.error_code == 0
        batches = decode_batches(got.records)
        if not batches:
            return values
        for _, records in batches:
            for r in records:
                if r.offset >= offset:
                    values.append(r.value)
                    offset = r.offset + 1


def test_every_acknowledged_record_survives_kill9_among_refused_batches(cluster) -> None:
    rng = random.Random(20261207)
    bad = probes()
    model: dict[int, list[bytes]] = {0: [], 1: []}

    async def round_(n: int) -> None:
        async with KafkaClient(cluster.bootstrap) as client:
            if n == 0:
                await client.create_topics([NewTopic("acked", 2)])
            for i in range(40):
                part = rng.randrange(2)
                if rng.random() < 0.4:
                    probe = rng.choice(bad)
                    with pytest.raises(KafkaProtocolError) as info:
                        await client.produce("acked", part, probe.batch)
                    assert info.value.error_code == probe.produce_answer, probe.name
                    continue
                values = [b"r%d-%d-%d" % (n, i, j) for j in range(rng.randint(1, 30))]
                batch = build_batch([(b"k", v, [], TS) for v in values], codec=rng.choice(CODECS))
                await client.produce("acked", part, batch)
                model[part].extend(values)

    async def check() -> None:
        async with KafkaClient(cluster.bootstrap) as client:
            for part, values in model.items():
                assert await _read_values(client, "acked", part) == values

    for n in range(3):
        asyncio.run(round_(n))
        cluster.kill9()
        cluster.start()
        asyncio.run(check())
