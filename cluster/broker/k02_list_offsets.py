"""ListOffsets (key 2), v1-v9: earliest (-2), latest (-1), max timestamp (-3, v7+),
earliest local (-4, v8+), latest tiered (-5, v9+; no tiering here, so the local log start
minus one, as Kafka answers without remote storage), and offsets by timestamp.
Under read_committed the latest offset is the last stable offset.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler
from cluster.wire.records import decode_batch, decode_batches

EARLIEST, LATEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -2, -1, -3, -4, -5


def lookup(broker, part, timestamp: int, isolation: int) -> tuple[int, int]:
    """(offset, timestamp) for one partition; (-1, -1) when nothing matches."""
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return part.log.log_start_offset, -1
    if timestamp == LATEST:
        if isolation == 1 and broker.txns is not None:
            return broker.txns.last_stable_offset(part), -1
        return part.high_watermark, -1
    if timestamp == LATEST_TIERED:
        return part.log.log_start_offset - 1, -1
    if timestamp == MAX_TIMESTAMP:
        found = part.log.max_timestamp()
        return first_record_stamped(part.log, found[0], found[1]) if found else (-1, -1)
    found = part.log.offset_for_timestamp(timestamp, refine=first_record_at_or_after)
    return (found[0], found[1]) if found else (-1, -1)


def first_record_at_or_after(batch: bytes, ts_ms: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record in `batch` stamped at or after ts_ms: Kafka
    answers a time lookup with the exact record, not the start of its batch."""
    _, records = decode_batch(batch, verify_crc=False)
    for r in records:
        if r.timestamp >= ts_ms:
            return r.offset, r.timestamp
    return None


def first_record_stamped(log, offset: int, ts_ms: int) -> tuple[int, int]:
    """Kafka answers MAX_TIMESTAMP with the FIRST record carrying the max timestamp in the
    batch that holds it (RecordBatch.offsetOfMaxTimestamp), while the log tracks the
    batch's last offset; decode that batch to find the record."""
    batches = decode_batches(log.read(offset, 1))
    if batches:
        for r in batches[0][1]:
            if r.timestamp == ts_ms and r.offset >= log.log_start_offset:
                return r.offset, ts_ms
    return offset, ts_ms


def _replication_error(part, timestamp: int, replica_id: int) -> int:
    """Kafka's answers on replicated partitions: a follower sends everyone to the leader;
    a new leader whose high watermark has not yet reached its epoch's start does not know
    the committed end yet (OFFSET_NOT_AVAILABLE, retriable)."""
    if part.follower is not None:
        return ErrorCode.not_leader_or_follower
    if (part.replica is not None and replica_id < 0 and timestamp == LATEST
            and part.replica.visible_high_watermark is None):
        return ErrorCode.offset_not_available
    return 0


@handler(2, 1, 9)
async def list_offsets(broker, hdr, req) -> dict:
    isolation = getattr(req, "isolation_level", 0)
    topics = []
    for t in req.topics:
        parts = []
        denied = not authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, t.name)
        for p in t.partitions:
            part = None if denied else broker.partitions.get((t.name, p.partition_index))
            if part is None and not denied and internal_topics.hosted(broker, t.name, p.partition_index):
                parts.append({"partition_index": p.partition_index, "error_code": 0, "timestamp": -1,
                              "offset": 0, "leader_epoch": 0})
                continue
            if part is None:
                parts.append(
                    {"partition_index": p.partition_index,
                     "error_code": ErrorCode.topic_authorization_failed if denied
                     else ErrorCode.not_leader_or_follower if broker.led_elsewhere(t.name, p.partition_index)
                     else ErrorCode.unknown_topic_or_partition,
                     "timestamp": -1, "offset": -1, "leader_epoch": -1}
                )
                continue
            cle = getattr(p, "current_leader_epoch", -1)
            if cle >= 0 and cle != part.leader_epoch:
                code = (
                    ErrorCode.unknown_leader_epoch
                    if cle > part.leader_epoch
                    else ErrorCode.fenced_leader_epoch
                )
                parts.append({"partition_index": p.partition_index, "error_code": code,
                              "timestamp": -1, "offset": -1, "leader_epoch": -1})
                continue
            code = _replication_error(part, p.timestamp, getattr(req, "replica_id", -1))
            if code:
                parts.append({"partition_index": p.partition_index, "error_code": code,
                              "timestamp": -1, "offset": -1, "leader_epoch": -1})
                continue
            if p.timestamp == LATEST and getattr(req, "replica_id", -1) >= 0:
                offset, ts = part.log.log_end_offset, -1  # a follower asks for the log end
            else:
                offset, ts = lookup(broker, part, p.timestamp, isolation)
            parts.append(
                {"partition_index": p.partition_index, "error_code": 0, "timestamp": ts,
                 "offset": offset, "leader_epoch": part.leader_epoch}
            )
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
