"""OffsetFetch (key 9), v1-v9: committed offsets of one group (v1-v7) or several (v8+).

Null topics (v2+) fetch every committed offset of the group. With `require_stable` (v7+,
KIP-447) a partition for which an open transaction still holds an offset is answered
UNSTABLE_OFFSET_COMMIT (the client retries); the transaction coordinator knows which.
v9 names the KIP-848 member asking (id and epoch), checked against a consumer group as
Kafka does (UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH). v10 (topic ids) is not served.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


def _topics(requested) -> dict[str, list[int]] | None:
    if requested is None:
        return None
    return {t.name: list(t.partition_indexes) for t in requested}


async def _one(
    broker, group_id: str, topics: dict[str, list[int]] | None, version: int, require_stable: bool,
    member: tuple[str | None, int] | None = None,
) -> dict:
    if broker.groups is None:
        return {"group_id": group_id, "error_code": ErrorCode.coordinator_not_available, "topics": []}
    if not authz.allowed(broker, authz.Op.DESCRIBE, authz.GROUP, group_id):
        return {"group_id": group_id, "error_code": ErrorCode.group_authorization_failed, "topics": []}
    denied: dict[str, list[int]] = {}
    if topics is not None:
        denied = {t: ps for t, ps in topics.items()
                  if not authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, t)}
        topics = {t: ps for t, ps in topics.items() if t not in denied}
    result = await broker.groups.offset_fetch(group_id, topics, member)
    if result["error_code"]:
        return result
    # Offsets of topics the principal may not Describe are not shown (named ones: an error).
    result["topics"] = [t for t in result["topics"]
                        if authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, t["name"])]
    result["topics"] += [
        {"name": t, "partitions": [{"partition_index": i, "committed_offset": -1, "committed_leader_epoch": -1,
                                    "metadata": "", "error_code": ErrorCode.topic_authorization_failed}
                                   for i in ps]} for t, ps in denied.items()]
    if version < 2 and topics is None:
        result["topics"] = []
    pending = getattr(getattr(broker, "txns", None), "has_pending_offsets", None)
    if require_stable and pending is not None:
        for t in result["topics"]:
            for p in t["partitions"]:
                if pending(group_id, t["name"], p["partition_index"]):
                    p.update(committed_offset=-1, committed_leader_epoch=-1, metadata="",
                             error_code=ErrorCode.unstable_offset_commit)
    return result


@handler(9, 0, 9)
async def offset_fetch(broker, hdr, req) -> dict:
    if hdr.api_version >= 8:
        stable = req.require_stable
        groups = [await _one(broker, g.group_id, _topics(g.topics), hdr.api_version, stable,
                             (g.member_id, int(g.member_epoch)) if hdr.api_version >= 9 else None)
                  for g in req.groups]
        return {"throttle_time": 0, "groups": groups}
    stable = getattr(req, "require_stable", False)
    result = await _one(broker, req.group_id, _topics(req.topics), hdr.api_version, stable)
    return {"throttle_time": 0, "topics": result["topics"], "error_code": result["error_code"]}
