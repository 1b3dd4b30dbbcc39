"""ConsumerGroupDescribe (key 69), v0-v1: KIP-848 groups with epochs and assignments.

A classic group, or none, is GROUP_ID_NOT_FOUND ("is not a consumer group" / "not
found"), as Kafka answers; admin clients then fall back to DescribeGroups. A group the
principal may not Describe is GROUP_AUTHORIZATION_FAILED; KIP-430 operations when asked.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


def _refused(group_id: str, code: int) -> dict:
    return {"error_code": code, "error_message": None, "group_id": group_id, "group_state": "",
            "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "", "members": [],
            "authorized_operations": authz.NOT_REQUESTED}


@handler(69, 0, 1)
async def consumer_group_describe(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"throttle_time": 0, "groups": [_refused(g, ErrorCode.coordinator_not_available)
                                               for g in req.group_ids]}
    may = {g: authz.allowed(broker, authz.Op.DESCRIBE, authz.GROUP, g) for g in req.group_ids}
    described = iter(await broker.groups.consumer_group_describe([g for g in req.group_ids if may[g]]))
    groups = []
    for g in req.group_ids:
        if not may[g]:
            groups.append(_refused(g, ErrorCode.group_authorization_failed))
            continue
        entry = next(described)
        if req.include_authorized_operations and entry["error_code"] == 0:
            entry["authorized_operations"] = authz.authorized_operations(broker, authz.GROUP, g)
        groups.append(entry)
    return {"throttle_time": 0, "groups": groups}
