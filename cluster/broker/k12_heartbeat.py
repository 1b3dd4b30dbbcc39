"""Heartbeat (key 12), v0-v4: keeps a member's session alive; tells it when to rejoin."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(12, 0, 4)
async def heartbeat(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"error_code": ErrorCode.coordinator_not_available}
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    result = await broker.groups.heartbeat(
        req.group_id, req.generation_id, req.member_id, getattr(req, "group_instance_id", None)
    )
    return {"throttle_time": 0, **result}
