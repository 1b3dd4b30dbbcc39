"""DeleteGroups (key 42), v0-v2: delete empty groups and their offsets (NON_EMPTY_GROUP otherwise)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.registry import handler


@handler(42, 0, 2)
async def delete_groups(broker, hdr, req) -> dict:
    if broker.groups is None:
        results = [{"group_id": g, "error_code": ErrorCode.coordinator_not_available} for g in req.groups_names]
    else:
        results = await broker.groups.delete_groups(list(req.groups_names))
    return {"throttle_time": 0, "results": results}
