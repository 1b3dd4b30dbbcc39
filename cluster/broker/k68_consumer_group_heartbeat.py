"""ConsumerGroupHeartbeat (key 68), v0-v1: the KIP-848 consumer group protocol.

A thin shell over the coordinator's pure machine (cluster/groups/consumer.py): decode,
check READ on the group, hand over one `HeartbeatRequest`, encode the answer. v0 lets the
coordinator choose the member id (an empty one on join gets a fresh UUID); v1 (Kafka 4.x
clients) requires the client's own and adds `subscribed_topic_regex`. With ACLs, as in
Kafka: subscribing by name to a topic the principal may not Describe is
TOPIC_AUTHORIZATION_FAILED, and a regex resolves only to topics it may Describe.
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.session import client_host, current
from cluster.broker.registry import handler
from cluster.groups.consumer_model import HeartbeatRequest


def _ms(value) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


def _error(code: int, message: str | None = None) -> dict:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "member_id": None,
            "member_epoch": -1, "heartbeat_interval": 0, "assignment": None}


@handler(68, 0, 1)
async def consumer_group_heartbeat(broker, hdr, req) -> dict:
    if broker.groups is None:
        return _error(ErrorCode.coordinator_not_available)
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return _error(ErrorCode.group_authorization_failed)
    names = req.subscribed_topic_names
    if names and not all(authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, t) for t in names):
        # KafkaApis: clients may not subscribe to topics they may not Describe
        return _error(ErrorCode.topic_authorization_failed)
    member_id = req.member_id
    if hdr.api_version == 0 and not member_id and req.member_epoch == 0:
        member_id = str(uuid.uuid4())
    owned = None
    if req.topic_partitions is not None:
        owned = tuple((t.topic_id, tuple(int(p) for p in t.partitions)) for t in req.topic_partitions)
    hb = HeartbeatRequest(
        member_id=member_id,
        member_epoch=int(req.member_epoch),
        instance_id=req.instance_id,
        rack_id=req.rack_id,
        rebalance_timeout_ms=_ms(req.rebalance_timeout),
        subscribed_topic_names=None if req.subscribed_topic_names is None else tuple(req.subscribed_topic_names),
        subscribed_topic_regex=getattr(req, "subscribed_topic_regex", None),
        server_assignor=req.server_assignor,
        owned=owned,
        client_id=hdr.client_id or "",
        client_host=client_host(),
        principal=current().principal if not current().internal else "",
        host=current().host,
    )
    result = await broker.groups.consumer_group_heartbeat(req.group_id, hb)
    return {"throttle_time": 0, **result}
