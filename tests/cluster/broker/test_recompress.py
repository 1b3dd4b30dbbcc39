"""Topic compression.type re-encodes batches into the topic's codec, keeping every field."""

from __future__ import annotations

from cluster.broker.recompress import recompress, target_codec
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batch
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, fetch_all, produce


def test_recompress_keeps_fields_and_records() -> None:
    original = build_batch([(b"k1", b"v1", [("h", b"x")], 1000), (None, b"v2", [], 1005)],
                           producer_id=7, producer_epoch=2, base_sequence=40, codec=0)
    out = recompress(memoryview(original), target_codec("zstd"))
    h0, recs0 = decode_batch(original)
    h1, recs1 = decode_batch(out)
    assert h1.compression == 4 and h0.compression == 0
    assert (h1.producer_id, h1.producer_epoch, h1.base_sequence) == (7, 2, 40)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in recs1] == \
        [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in recs0]
    assert recompress(memoryview(out), 4) is not None and target_codec("producer") is None


async def test_topic_codec_applies_to_produced_batches(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "zipped", 1, {"compression.type": "gzip"})
    assert (await produce(conn, "zipped", 0, build_batch([(b"k", b"v" * 100, [], 5)]))).error_code == 0
    data = await fetch_all(conn, "zipped", 0)
    (_, h), = list(rb.iter_batches(data))
    assert h.compression == 1
    assert decode_batch(data)[1][0].value == b"v" * 100
    conn.close()
