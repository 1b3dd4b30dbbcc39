"""TxnOffsetCommit (key 28), v0-v3: consumer offsets held pending inside a transaction.

The offsets are kept by the transaction coordinator (durably, with the transaction) and
committed into the group when EndTxn commits; an abort drops them. v3 (KIP-447) also
checks the consumer's generation and member id against the group, like OffsetCommit.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler
from cluster.txn.model import PendingOffset


@handler(28, 0, 3)
async def txn_offset_commit(broker, hdr, req) -> dict:
    per_topic: dict[str, int] = {}
    if not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, req.transactional_id):
        return _answer(req, lambda t: ErrorCode.transactional_id_authorization_failed)
    if not authz.allowed(broker, authz.Op.READ, authz.GROUP, req.group_id):
        return _answer(req, lambda t: ErrorCode.group_authorization_failed)
    for t in req.topics:
        if not authz.allowed(broker, authz.Op.READ, authz.TOPIC, t.name):
            per_topic[t.name] = ErrorCode.topic_authorization_failed
    offsets = [
        (t.name, p.partition_index,
         PendingOffset(p.committed_offset, getattr(p, "committed_leader_epoch", -1), p.committed_metadata or ""))
        for t in req.topics for p in t.partitions if t.name not in per_topic
    ]
    if broker.txns is None:
        error = ErrorCode.coordinator_not_available
    elif not req.group_id:
        error = ErrorCode.invalid_group_id
    else:
        error = broker.txns.txn_offset_commit(
            req.transactional_id, req.producer_id, req.producer_epoch, req.group_id, offsets,
            hdr.api_version, getattr(req, "generation_id", -1), getattr(req, "member_id", ""),
        )
    return _answer(req, lambda t: per_topic.get(t, error))


def _answer(req, code_of) -> dict:
    return {
        "throttle_time": 0,
        "topics": [
            {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": code_of(t.name)}
                                            for p in t.partitions]}
            for t in req.topics
        ],
    }
