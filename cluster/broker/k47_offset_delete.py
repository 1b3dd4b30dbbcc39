"""OffsetDelete (key 47), v0: delete a group's offsets for topics it no longer consumes.

Partitions of topics an active consumer group subscribes to get GROUP_SUBSCRIBED_TO_TOPIC;
a non-consumer group with members gets NON_EMPTY_GROUP; an unknown group GROUP_ID_NOT_FOUND.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(47, 0, 0)
async def offset_delete(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"error_code": ErrorCode.coordinator_not_available, "throttle_time": 0, "topics": []}
    if not authz.allowed(broker, authz.Op.DELETE, authz.GROUP, req.group_id):
        return {"error_code": ErrorCode.group_authorization_failed, "throttle_time": 0, "topics": []}
    topics = {t.name: [p.partition_index for p in t.partitions] for t in req.topics}
    denied = {t: ps for t, ps in topics.items() if not authz.allowed(broker, authz.Op.READ, authz.TOPIC, t)}
    result = await broker.groups.offset_delete(req.group_id, {t: ps for t, ps in topics.items() if t not in denied})
    result["topics"] = result["topics"] + [
        {"name": t, "partitions": [{"partition_index": p, "error_code": ErrorCode.topic_authorization_failed}
                                   for p in ps]} for t, ps in denied.items()]
    return {"throttle_time": 0, **result}
