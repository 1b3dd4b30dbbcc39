"""DescribeGroups (key 15), v0-v5: state, protocol and members (with assignments when Stable).

Unknown groups are described as "Dead" with no error, as Kafka does. Authorized operations
are not computed (there are no ACLs): always "not requested" (INT32_MIN).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.registry import handler


@handler(15, 0, 5)
async def describe_groups(broker, hdr, req) -> dict:
    if broker.groups is None:
        groups = [{"error_code": ErrorCode.coordinator_not_available, "group_id": g} for g in req.groups]
    else:
        groups = await broker.groups.describe_groups(list(req.groups))
    return {"throttle_time": 0, "groups": groups}
