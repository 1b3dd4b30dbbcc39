"""OffsetCommit (key 8), v2-v9: consumer offsets with metadata and leader epoch.

Generation and member are checked when generation_id >= 0; "simple" commits (generation
-1, no member id, as mirrors and tools send) are accepted while the group has no members.
v2-v4's retention_time is ignored (offsets are kept until the group is deleted). For a
KIP-848 consumer group the generation field is the member epoch (checked as Kafka does:
STALE_MEMBER_EPOCH / FENCED_MEMBER_EPOCH; such a member must use v9+, else
UNSUPPORTED_VERSION). Version 10 (topic ids) is not served. As in Kafka, partitions of topics
this cluster does not have are answered UNKNOWN_TOPIC_OR_PARTITION and not stored.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(8, 0, 9)
async def offset_commit(broker, hdr, req) -> dict:
    topics = [
        {
            "name": t.name,
            "partitions": [
                {
                    "partition_index": p.partition_index,
                    "committed_offset": p.committed_offset,
                    "committed_leader_epoch": getattr(p, "committed_leader_epoch", -1),
                    "committed_metadata": p.committed_metadata,
                }
                for p in t.partitions
            ],
        }
        for t in req.topics
    ]
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "topics": [
            {"name": t["name"], "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.group_authorization_failed}
                for p in t["partitions"]]} for t in topics]}
    unknown: list[dict] = []
    known: list[dict] = []
    for t in topics:
        if not authz.allowed(broker, authz.Op.READ, authz.TOPIC, t["name"]):
            unknown.append({"name": t["name"], "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.topic_authorization_failed}
                for p in t["partitions"]]})
            continue
        meta = broker.topic(t["name"])
        ok = [p for p in t["partitions"] if meta is not None and 0 <= p["partition_index"] < meta.partitions]
        bad = [p for p in t["partitions"] if p not in ok]
        if ok:
            known.append({"name": t["name"], "partitions": ok})
        if bad:
            unknown.append({"name": t["name"], "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.unknown_topic_or_partition}
                for p in bad]})
    if broker.groups is None:
        return {
            "throttle_time": 0,
            "topics": [
                {"name": t["name"], "partitions": [
                    {"partition_index": p["partition_index"], "error_code": ErrorCode.coordinator_not_available}
                    for p in t["partitions"]]}
                for t in topics
            ],
        }
    result = await broker.groups.offset_commit(
        req.group_id,
        req.generation_id_or_member_epoch,
        req.member_id,
        getattr(req, "group_instance_id", None),
        known,
        api_version=hdr.api_version,
    )
    return {"throttle_time": 0, "topics": result["topics"] + unknown}
