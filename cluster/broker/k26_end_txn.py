"""EndTxn (key 26), v0-v3: commit or abort the producer's ongoing transaction.

The coordinator makes the decision durable, writes COMMIT/ABORT markers into every
partition of the transaction, commits its pending group offsets (on commit) and only then
answers. v4 (TRANSACTION_ABORTABLE) and v5 (KIP-890 epoch bump per transaction) are not
served.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(26, 0, 3)
async def end_txn(broker, hdr, req) -> dict:
    if broker.txns is None:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available}
    if not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, req.transactional_id):
        return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed}
    error = broker.txns.end_txn(
        req.transactional_id, req.producer_id, req.producer_epoch, bool(req.committed), hdr.api_version
    )
    return {"throttle_time": 0, "error_code": error}
