"""DeleteAcls (key 31), v1-v3: remove the ACLs each filter matches and list them.

Needs Alter on the cluster (every filter CLUSTER_AUTHORIZATION_FAILED otherwise);
SECURITY_DISABLED when the broker does not enforce ACLs, as Kafka without an authorizer.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.auth.acl import AclFilter, InvalidAcl
from cluster.broker import authz
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


def _all(req, code: int, message: str | None) -> dict:
    return {"throttle_time": 0, "filter_results": [
        {"error_code": code, "error_message": message, "matching_acls": []} for _ in req.filters]}


@handler(31, 1, 3)
async def delete_acls(broker, hdr, req) -> dict:
    if (refused := authz.acl_api_refusal(broker, authz.Op.ALTER)) is not None:
        return _all(req, *refused)
    filters: list[AclFilter | str] = []
    for f in req.filters:
        try:
            filters.append(AclFilter.parse(f.resource_type_filter, f.resource_name_filter,
                                           f.pattern_type_filter, f.principal_filter, f.host_filter,
                                           f.operation, f.permission_type))
        except InvalidAcl as exc:
            filters.append(str(exc))
    valid = [f for f in filters if isinstance(f, AclFilter)]
    try:
        removed = iter(broker.acls.delete(valid))
    except OSError as exc:
        log.error("could not record removed ACLs: %s", exc)
        return _all(req, ErrorCode.unknown_server_error, f"could not record the change: {exc.strerror or exc}")
    results = []
    for f in filters:
        if isinstance(f, str):
            results.append({"error_code": ErrorCode.invalid_request, "error_message": f, "matching_acls": []})
            continue
        results.append({"error_code": 0, "error_message": None, "matching_acls": [
            {"error_code": 0, "error_message": None, "resource_type": int(b.resource_type),
             "resource_name": b.name, "pattern_type": int(b.pattern_type), "principal": b.principal,
             "host": b.host, "operation": int(b.operation), "permission_type": int(b.permission)}
            for b in next(removed)]})
    return {"throttle_time": 0, "filter_results": results}
