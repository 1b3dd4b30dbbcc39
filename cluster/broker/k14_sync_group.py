"""SyncGroup (key 14), v0-v5: the leader hands out assignments; followers wait for theirs.

v5 carries protocol type/name, checked against the group (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(14, 0, 5)
async def sync_group(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"error_code": ErrorCode.coordinator_not_available, "assignment": b""}
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "assignment": b""}
    result = await broker.groups.sync_group(
        req.group_id,
        req.generation_id,
        req.member_id,
        getattr(req, "group_instance_id", None),
        {a.member_id: a.assignment for a in req.assignments},
        getattr(req, "protocol_type", None),
        getattr(req, "protocol_name", None),
    )
    return {"throttle_time": 0, **result}
