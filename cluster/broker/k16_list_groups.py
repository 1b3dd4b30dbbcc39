"""ListGroups (key 16), v0-v5: every group, optionally filtered by state (v4+) and type (v5).

Classic groups have `group_type` "classic", KIP-848 groups "consumer" (with their
ConsumerGroupState names: Empty, Assigning, Reconciling, Stable), as Kafka lists them.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(16, 0, 5)
async def list_groups(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available, "groups": []}
    result = await broker.groups.list_groups(
        list(getattr(req, "states_filter", ())), list(getattr(req, "types_filter", ()))
    )
    if not authz.allowed_cluster(broker, authz.Op.DESCRIBE):  # else only groups it may Describe
        result["groups"] = [g for g in result["groups"]
                            if authz.allowed(broker, authz.Op.DESCRIBE, authz.GROUP, g["group_id"])]
    return {"throttle_time": 0, **result}
