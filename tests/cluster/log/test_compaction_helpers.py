"""Shared helpers for the compaction tests (no tests here): keyed batches, whole-log replay."""

from __future__ import annotations

from cluster.log import LogConfig, PartitionLog
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batches


def ccfg(**kw) -> LogConfig:
    """A compacted log that cleans whenever anything is dirty."""
    kw.setdefault("segment_bytes", 400)
    kw.setdefault("index_interval_bytes", 100)
    kw.setdefault("retention_ms", -1)
    kw.setdefault("delete", False)
    kw.setdefault("compact", True)
    kw.setdefault("min_cleanable_dirty_ratio", 0.0)
    return LogConfig(**kw)


def keyed(pairs, *, ts: int = 1_000, codec: int = 0, **kw) -> bytes:
    """A batch of (key, value) records; str keys/values are UTF-8, value None is a tombstone."""
    return build_batch([(k, v, None, ts + i) for i, (k, v) in enumerate(pairs)], codec=codec, **kw)


def append(log: PartitionLog, pairs, **kw) -> int:
    return log.append([keyed(pairs, **kw)], leader_epoch=0, now_ms=0).base_offset


def records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record from the log start, via the log's read path."""
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data:
            break
        for h, recs in decode_batches(data, allow_partial_tail=False):
            out.extend((r.offset, r.key, r.value) for r in recs)
            offset = h.next_offset
    return out


def batches(log: PartitionLog) -> list[bytes]:
    """Every whole batch (raw bytes) from the log start."""
    from cluster.wire.record_batch import iter_batches

    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data:
            break
        for pos, h in iter_batches(data, allow_partial_tail=False):
            out.append(bytes(data[pos : pos + h.size]))
            offset = h.next_offset
    return out


def replay(recs) -> dict[bytes, bytes | None]:
    state: dict[bytes, bytes | None] = {}
    for _, k, v in recs:
        state[k] = v
    return state
