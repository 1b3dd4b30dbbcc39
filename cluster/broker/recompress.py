"""Topic-level `compression.type`: re-encode a produced batch into the topic's codec.

The one place the broker decodes records on the produce path, and only for topics whose
`compression.type` names a codec different from the batch's (the default, `producer`,
keeps batches as sent). Kafka does the same; every header field a consumer or the
idempotence/transaction machinery reads (producer id, epoch, sequence, transactional
flag, timestamps, offset deltas) is kept.
"""

from __future__ import annotations

from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from cluster.wire.compression import parse_codec
from cluster.wire.records import decode_records


def target_codec(compression_type: str) -> int | None:
    """The codec a topic forces, or None for `producer` (keep what producers send)."""
    if compression_type == "producer":
        return None
    return 0 if compression_type == "uncompressed" else parse_codec(compression_type)


def recompress(batch: memoryview, codec: int) -> bytes | memoryview:
    h = rb.read_header(batch)
    if h.compression == codec or h.is_control:
        return batch
    records = decode_records(batch, verify_crc=False)
    return build_batch(
        [(r.key, r.value, list(r.headers), h.base_timestamp + r.timestamp_delta) for r in records],
        codec=codec, producer_id=h.producer_id, producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence, transactional=h.is_transactional,
        log_append_time=h.log_append_time,
        offset_deltas=[r.offset_delta for r in records],
    )
