"""DescribeAcls (key 29), v1-v3: the ACLs one filter matches, grouped by resource pattern.

Needs Describe on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise). When the broker
does not enforce ACLs it answers SECURITY_DISABLED, as Kafka does without an authorizer.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.auth.acl import AclFilter, InvalidAcl
from cluster.broker import authz
from cluster.broker.registry import handler


def _error(code: int, message: str | None) -> dict:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": []}


@handler(29, 1, 3)
async def describe_acls(broker, hdr, req) -> dict:
    if (refused := authz.acl_api_refusal(broker, authz.Op.DESCRIBE)) is not None:
        return _error(*refused)
    try:
        flt = AclFilter.parse(req.resource_type_filter, req.resource_name_filter, req.pattern_type_filter,
                              req.principal_filter, req.host_filter, req.operation, req.permission_type)
    except InvalidAcl as exc:
        return _error(ErrorCode.invalid_request, str(exc))
    by_resource: dict[tuple, list[dict]] = {}
    for b in broker.acls.authorizer.matching(flt):
        by_resource.setdefault((int(b.resource_type), b.name, int(b.pattern_type)), []).append(
            {"principal": b.principal, "host": b.host, "operation": int(b.operation),
             "permission_type": int(b.permission)})
    resources = [{"resource_type": rt, "resource_name": name, "pattern_type": pt, "acls": acls}
                 for (rt, name, pt), acls in by_resource.items()]
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "resources": resources}
