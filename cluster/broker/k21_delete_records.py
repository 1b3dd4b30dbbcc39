"""DeleteRecords (key 21), v0-v2: raise a partition's log start offset (-1 = high watermark)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(21, 0, 2)
async def delete_records(broker, hdr, req) -> dict:
    topics = []
    for t in req.topics:
        parts = []
        if not authz.allowed(broker, authz.Op.DELETE, authz.TOPIC, t.name):
            topics.append({"name": t.name, "partitions": [
                {"partition_index": p.partition_index, "low_watermark": -1,
                 "error_code": ErrorCode.topic_authorization_failed} for p in t.partitions]})
            continue
        for p in t.partitions:
            part = broker.partitions.get((t.name, p.partition_index))
            if part is None:
                parts.append({"partition_index": p.partition_index, "low_watermark": -1,
                              "error_code": ErrorCode.not_leader_or_follower
                              if broker.led_elsewhere(t.name, p.partition_index) else ErrorCode.unknown_topic_or_partition})
                continue
            target = part.high_watermark if p.offset == -1 else p.offset
            if target < 0 or target > part.high_watermark:
                parts.append({"partition_index": p.partition_index, "low_watermark": -1,
                              "error_code": ErrorCode.offset_out_of_range})
                continue
            low = part.log.delete_records_before(target)
            parts.append({"partition_index": p.partition_index, "low_watermark": low,
                          "error_code": 0})
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
