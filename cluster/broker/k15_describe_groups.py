"""DescribeGroups (key 15), v0-v5: state, protocol and members (with assignments when Stable).

Unknown groups are described as "Dead" with no error, as Kafka does. A group the principal
may not Describe is GROUP_AUTHORIZATION_FAILED; KIP-430 authorized operations are filled
when asked for (v3+).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(15, 0, 5)
async def describe_groups(broker, hdr, req) -> dict:
    if broker.groups is None:
        groups = [{"error_code": ErrorCode.coordinator_not_available, "group_id": g} for g in req.groups]
        return {"throttle_time": 0, "groups": groups}
    may = {g: authz.allowed(broker, authz.Op.DESCRIBE, authz.GROUP, g) for g in req.groups}
    described = iter(await broker.groups.describe_groups([g for g in req.groups if may[g]]))
    want_ops = hdr.api_version >= 3 and getattr(req, "include_authorized_operations", False)
    groups = []
    for g in req.groups:
        if not may[g]:
            groups.append({"error_code": ErrorCode.group_authorization_failed, "group_id": g, "group_state": "",
                           "protocol_type": "", "protocol_data": "", "members": [],
                           "authorized_operations": authz.NOT_REQUESTED})
            continue
        entry = next(described)
        if want_ops and entry["error_code"] == 0:
            entry["authorized_operations"] = authz.authorized_operations(broker, authz.GROUP, g)
        groups.append(entry)
    return {"throttle_time": 0, "groups": groups}
