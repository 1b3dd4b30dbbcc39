"""LeaveGroup (key 13), v0-v5: one member (v0-v2) or a batch by id or instance id (v3+).

For v0-v2 the single member's error is the top-level error, as Kafka answers it.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(13, 0, 5)
async def leave_group(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"error_code": ErrorCode.coordinator_not_available, "members": []}
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "members": []}
    if hdr.api_version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in req.members]
    else:
        members = [(req.member_id, None)]
    result = await broker.groups.leave_group(req.group_id, members)
    if hdr.api_version < 3 and result["error_code"] == ErrorCode.none and result["members"]:
        result["error_code"] = result["members"][0]["error_code"]
    return {"throttle_time": 0, **result}
