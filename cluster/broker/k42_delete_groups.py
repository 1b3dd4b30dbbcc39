"""DeleteGroups (key 42), v0-v2: delete empty groups and their offsets (NON_EMPTY_GROUP otherwise)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(42, 0, 2)
async def delete_groups(broker, hdr, req) -> dict:
    if broker.groups is None:
        results = [{"group_id": g, "error_code": ErrorCode.coordinator_not_available} for g in req.groups_names]
    else:
        may = {g: authz.allowed(broker, authz.Op.DELETE, authz.GROUP, g) for g in req.groups_names}
        done = iter(await broker.groups.delete_groups([g for g in req.groups_names if may[g]]))
        results = [next(done) if may[g] else {"group_id": g, "error_code": ErrorCode.group_authorization_failed}
                   for g in req.groups_names]
    return {"throttle_time": 0, "results": results}
