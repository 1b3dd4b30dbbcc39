"""AddOffsetsToTxn (key 25), v0-v3: a transactional producer will commit a group's offsets.

The group joins the transaction; its offsets arrive with TxnOffsetCommit and become
visible to OffsetFetch only when EndTxn commits.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(25, 0, 3)
async def add_offsets_to_txn(broker, hdr, req) -> dict:
    if broker.txns is None:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available}
    if not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, req.transactional_id):
        return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed}
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    if not req.group_id:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_group_id}
    error = broker.txns.add_offsets(
        req.transactional_id, req.producer_id, req.producer_epoch, req.group_id, hdr.api_version
    )
    return {"throttle_time": 0, "error_code": error}
