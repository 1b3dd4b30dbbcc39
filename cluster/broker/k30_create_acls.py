"""CreateAcls (key 30), v1-v3: add ACLs, each answered on its own (bad ones INVALID_REQUEST).

Needs Alter on the cluster (every creation CLUSTER_AUTHORIZATION_FAILED otherwise);
SECURITY_DISABLED when the broker does not enforce ACLs, as Kafka without an authorizer.
The valid creations of a request are written to disk together before the answer.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.auth.acl import AclBinding, InvalidAcl, new_binding
from cluster.broker import authz
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


def _all(req, code: int, message: str | None) -> dict:
    return {"throttle_time": 0,
            "results": [{"error_code": code, "error_message": message} for _ in req.creations]}


@handler(30, 1, 3)
async def create_acls(broker, hdr, req) -> dict:
    if (refused := authz.acl_api_refusal(broker, authz.Op.ALTER)) is not None:
        return _all(req, *refused)
    results: list[dict] = []
    valid: list[AclBinding] = []
    for c in req.creations:
        try:
            valid.append(new_binding(c.resource_type, c.resource_name, c.resource_pattern_type,
                                     c.principal, c.host, c.operation, c.permission_type))
        except InvalidAcl as exc:
            results.append({"error_code": ErrorCode.invalid_request, "error_message": str(exc)})
            continue
        results.append({"error_code": 0, "error_message": None})
    try:
        broker.acls.create(valid)
    except OSError as exc:
        log.error("could not record new ACLs: %s", exc)
        message = f"could not record the ACLs: {exc.strerror or exc}"
        results = [r if r["error_code"] else {"error_code": ErrorCode.unknown_server_error,
                                               "error_message": message} for r in results]
    return {"throttle_time": 0, "results": results}
