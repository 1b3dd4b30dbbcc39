"""FindCoordinator (key 10), v0-v6: this node coordinates every group and transactional id.

A single-broker cluster coordinates every key (group id, key_type 0, or transactional id,
key_type 1) itself. A multi-broker one answers, as Kafka, the leader of the key's partition
of `__consumer_offsets` / `__transaction_state` (abs(Java hashCode) mod 50), both created
by the controller on first use. v4+ batches keys in `coordinator_keys`. Not implemented:
key_type 2 (share groups) is answered INVALID_REQUEST. As in Kafka, the first lookup of a
group (transactional id) creates `__consumer_offsets` (`__transaction_state`) in Metadata.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler

_KEY_TYPES = (0, 1)


def _answer(broker, key: str, key_type: int) -> dict:
    if key_type not in _KEY_TYPES:
        return {"key": key, "error_code": ErrorCode.invalid_request, "error_message": f"key type {key_type}",
                "node_id": -1, "host": "", "port": -1}
    if key_type == 0 and not authz.allowed(broker, authz.Op.DESCRIBE, authz.GROUP, key):
        return {"key": key, "error_code": ErrorCode.group_authorization_failed, "error_message": None,
                "node_id": -1, "host": "", "port": -1}
    if key_type == 1 and not authz.allowed(broker, authz.Op.DESCRIBE, authz.TXN_ID, key):
        return {"key": key, "error_code": ErrorCode.transactional_id_authorization_failed,
                "error_message": None, "node_id": -1, "host": "", "port": -1}
    coordinator = broker.groups if key_type == 0 else getattr(broker, "txns", None)
    if coordinator is None:
        return {"key": key, "error_code": ErrorCode.coordinator_not_available, "error_message": None,
                "node_id": -1, "host": "", "port": -1}
    broker.internal_topics.mark_used(internal_topics.BY_KEY_TYPE[key_type])
    return {"key": key, "error_code": ErrorCode.none, "error_message": None,
            "node_id": broker.node_id, "host": broker.advertised_host, "port": broker.advertised_port}


async def _answer_clustered(broker, key: str, key_type: int) -> dict:
    """Multi-broker: the leader of the key's coordinator partition (Kafka's partitionFor)."""
    answer = _answer(broker, key, key_type)
    if answer["error_code"] != ErrorCode.none:
        return answer
    info = await broker.membership.coordinator_for(key, key_type)
    if info is None:
        return {"key": key, "error_code": ErrorCode.coordinator_not_available, "error_message": None,
                "node_id": -1, "host": "", "port": -1}
    return {**answer, "node_id": info.node_id, "host": info.host, "port": info.port}


async def _lookup(broker, key: str, key_type: int) -> dict:
    if broker.membership is not None and key_type in _KEY_TYPES:
        return await _answer_clustered(broker, key, key_type)
    return _answer(broker, key, key_type)


@handler(10, 0, 6)
async def find_coordinator(broker, hdr, req) -> dict:
    key_type = getattr(req, "key_type", 0)
    if hdr.api_version >= 4:
        return {"throttle_time": 0, "coordinators": [await _lookup(broker, k, key_type)
                                                     for k in req.coordinator_keys]}
    answer = await _lookup(broker, req.key, key_type)
    del answer["key"]
    return {"throttle_time": 0, **answer}
