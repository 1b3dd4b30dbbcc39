"""OffsetForLeaderEpoch (key 23), v0-v4: the end offset of a leader epoch, from the log's
leader-epoch cache. Consumers use it to detect truncation after leader changes."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(23, 0, 4)
async def offset_for_leader_epoch(broker, hdr, req) -> dict:
    topics = []
    cluster_action = authz.allowed_cluster(broker, authz.Op.CLUSTER_ACTION)
    for t in req.topics:
        parts = []
        denied = not cluster_action and not authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, t.topic)
        for p in t.partitions:
            part = None if denied else broker.partitions.get((t.topic, p.partition))
            if part is None:
                parts.append({"error_code": ErrorCode.topic_authorization_failed if denied
                              else ErrorCode.not_leader_or_follower if broker.led_elsewhere(t.topic, p.partition)
                              else ErrorCode.unknown_topic_or_partition,
                              "partition": p.partition, "leader_epoch": -1, "end_offset": -1})
                continue
            cle = getattr(p, "current_leader_epoch", -1)
            if cle >= 0 and cle != part.leader_epoch:
                code = (ErrorCode.unknown_leader_epoch if cle > part.leader_epoch
                        else ErrorCode.fenced_leader_epoch)
                parts.append({"error_code": code, "partition": p.partition,
                              "leader_epoch": -1, "end_offset": -1})
                continue
            epoch, end = part.log.end_offset_for_epoch(p.leader_epoch)
            parts.append({"error_code": 0, "partition": p.partition,
                          "leader_epoch": epoch, "end_offset": end})
        topics.append({"topic": t.topic, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
