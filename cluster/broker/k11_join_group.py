"""JoinGroup (key 11), v0-v9: the classic group protocol's join phase.

The answer may wait for other members (until they rejoin or the rebalance timeout), so this
handler awaits the coordinator's deferred result. v0 has no rebalance timeout (the session
timeout serves); v4+ gets MEMBER_ID_REQUIRED on a first join without a member id; v9 adds
skip_assignment for a rejoining static leader (KIP-814). `reason` (v8+) is only logged.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.session import client_host
from cluster.broker.registry import handler

logger = logging.getLogger(__name__)


def _ms(value) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


@handler(11, 0, 9)
async def join_group(broker, hdr, req) -> dict:
    if broker.groups is None:
        return {"error_code": ErrorCode.coordinator_not_available, "generation_id": -1, "protocol_name": "",
                "leader": "", "member_id": req.member_id, "members": []}
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "generation_id": -1,
                "protocol_name": "" if hdr.api_version < 7 else None, "leader": "",
                "member_id": req.member_id, "members": []}
    if getattr(req, "reason", None):
        logger.info("group %s: member %r joins: %s", req.group_id, req.member_id, req.reason)
    session = _ms(req.session_timeout)
    result = await broker.groups.join_group(
        req.group_id,
        req.member_id,
        getattr(req, "group_instance_id", None),
        req.protocol_type,
        [(p.name, p.metadata) for p in req.protocols],
        session,
        _ms(getattr(req, "rebalance_timeout", session)),
        client_id=hdr.client_id or "",
        client_host=client_host(),
        require_known_member_id=hdr.api_version >= 4,
    )
    if hdr.api_version < 7 and result["protocol_name"] is None:
        result["protocol_name"] = ""  # nullable only from v7
    return {"throttle_time": 0, **result}
