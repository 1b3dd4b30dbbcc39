"""InitProducerId (key 22), v0-v5: producer ids for idempotent producers.

Without a transactional id: a fresh producer id with epoch 0, or (v3+, KIP-360) an epoch
bump of the id and epoch the producer presents. With a transactional id the request goes
to the transaction coordinator (`broker.txns`) when one is running.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(22, 0, 5)
async def init_producer_id(broker, hdr, req) -> dict:
    if req.transactional_id is not None:
        if not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, req.transactional_id):
            return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed,
                    "producer_id": -1, "producer_epoch": -1}
        if broker.txns is None:
            return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available,
                    "producer_id": -1, "producer_epoch": -1}
        return await broker.txns.init_producer_id(req, hdr.api_version)
    if not authz.allowed_cluster(broker, authz.Op.IDEMPOTENT_WRITE) and \
            not authz.allowed_by_type(broker, authz.Op.WRITE, authz.TOPIC):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed,
                "producer_id": -1, "producer_epoch": -1}
    pid = getattr(req, "producer_id", -1)
    epoch = getattr(req, "producer_epoch", -1)
    if pid >= 0 and epoch >= 0 and epoch < 32766:
        return {"throttle_time": 0, "error_code": 0, "producer_id": pid, "producer_epoch": epoch + 1}
    return {"throttle_time": 0, "error_code": 0,
            "producer_id": broker.producer_state.ids.allocate(), "producer_epoch": 0}
