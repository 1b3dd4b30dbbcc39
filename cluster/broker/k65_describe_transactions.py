"""DescribeTransactions (key 65), v0: state, producer, timeout and partitions of txn ids.

Serves `kafka-transactions.sh describe` and AdminClient.describeTransactions. An unknown
transactional id is TRANSACTIONAL_ID_NOT_FOUND, as in Kafka.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


def _describe(broker, tid: str) -> dict:
    if not authz.allowed(broker, authz.Op.DESCRIBE, authz.TXN_ID, tid):
        return {"error_code": ErrorCode.transactional_id_authorization_failed, "transactional_id": tid,
                "transaction_state": "", "transaction_timeout": 0, "transaction_start_time": -1,
                "producer_id": -1, "producer_epoch": -1, "topics": []}
    md = broker.txns.describe(tid) if broker.txns is not None else None
    if md is None:
        code = ErrorCode.transactional_id_not_found if broker.txns is not None else ErrorCode.coordinator_not_available
        return {"error_code": code, "transactional_id": tid, "transaction_state": "", "transaction_timeout": 0,
                "transaction_start_time": -1, "producer_id": -1, "producer_epoch": -1, "topics": []}
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(md.partitions):
        if not authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, topic):
            continue  # only partitions of topics the principal may Describe, as Kafka
        by_topic.setdefault(topic, []).append(partition)
    return {
        "error_code": ErrorCode.none,
        "transactional_id": tid,
        "transaction_state": md.state.value,
        "transaction_timeout": md.timeout_ms,
        "transaction_start_time": md.start_ms,
        "producer_id": md.producer_id,
        "producer_epoch": md.producer_epoch,
        "topics": [{"topic": t, "partitions": ps} for t, ps in by_topic.items()],
    }


@handler(65, 0, 0)
async def describe_transactions(broker, hdr, req) -> dict:
    return {"throttle_time": 0, "transaction_states": [_describe(broker, t) for t in req.transactional_ids]}
