"""AddPartitionsToTxn (key 24), v0-v3: a transactional producer adds partitions to its txn.

Only the client form (v0-v3) is served; v4+ adds a batched broker-to-broker form used by
KIP-890 partition-leader verification, which a single-node cluster does not need. Unknown
partitions fail with UNKNOWN_TOPIC_OR_PARTITION and the rest of the request with
OPERATION_NOT_ATTEMPTED, as in Kafka; otherwise every partition gets the coordinator's answer.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler


def _results(topics, code_of) -> list[dict]:
    return [
        {"name": t.name,
         "results_by_partition": [{"partition_index": p, "partition_error_code": code_of(t.name, p)}
                                  for p in t.partitions]}
        for t in topics
    ]


@handler(24, 0, 3)
async def add_partitions_to_txn(broker, hdr, req) -> dict:
    topics = req.v3_and_below_topics
    wanted = [(t.name, p) for t in topics for p in t.partitions]
    if broker.txns is None:
        results = _results(topics, lambda t, p: ErrorCode.coordinator_not_available)
        return {"throttle_time": 0, "results_by_topic_v3_and_below": results}
    tid = req.v3_and_below_transactional_id
    if not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, tid):
        results = _results(topics, lambda t, p: ErrorCode.transactional_id_authorization_failed)
        return {"throttle_time": 0, "results_by_topic_v3_and_below": results}
    denied = {t.name for t in topics if not authz.allowed(broker, authz.Op.WRITE, authz.TOPIC, t.name)}
    missing = {(t, p) for t, p in wanted if t not in denied and (t, p) not in broker.partitions}
    if missing or denied:
        def code_of(t: str, p: int) -> int:
            if t in denied:
                return ErrorCode.topic_authorization_failed
            return ErrorCode.unknown_topic_or_partition if (t, p) in missing else ErrorCode.operation_not_attempted
        return {"throttle_time": 0, "results_by_topic_v3_and_below": _results(topics, code_of)}
    error = broker.txns.add_partitions(
        req.v3_and_below_transactional_id, req.v3_and_below_producer_id,
        req.v3_and_below_producer_epoch, wanted, hdr.api_version,
    )
    return {"throttle_time": 0, "results_by_topic_v3_and_below": _results(topics, lambda t, p: error)}
