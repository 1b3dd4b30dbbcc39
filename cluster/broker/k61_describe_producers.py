"""DescribeProducers (key 61), v0: the idempotent and transactional producers of partitions.

Serves `kafka-transactions.sh describe-producers` and AdminClient.describeProducers, the
first step of finding a hanging transaction: each producer's epoch, last sequence, last
timestamp and the start offset of its open transaction, from the same per-partition state
that checks sequences on Produce. A partition this broker does not have is
UNKNOWN_TOPIC_OR_PARTITION, as in Kafka. The coordinator epoch is -1: the broker does not
record which coordinator epoch wrote a marker.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler


def _partition(broker, topic: str, index: int) -> dict:
    if not authz.allowed(broker, authz.Op.READ, authz.TOPIC, topic):
        return {"partition_index": index, "error_code": ErrorCode.topic_authorization_failed,
                "error_message": None, "active_producers": []}
    part = broker.partitions.get((topic, index))
    if part is None and internal_topics.hosted(broker, topic, index):  # no producers write there
        return {"partition_index": index, "error_code": ErrorCode.none, "error_message": None,
                "active_producers": []}
    if part is None:
        return {"partition_index": index, "error_code": ErrorCode.unknown_topic_or_partition,
                "error_message": f"this broker has no partition {topic}-{index}",
                "active_producers": []}
    state = broker.producer_state.for_partition(part) if broker.producer_state is not None else None
    return {"partition_index": index, "error_code": ErrorCode.none, "error_message": None,
            "active_producers": state.describe() if state is not None else []}


@handler(61, 0, 0)
async def describe_producers(broker, hdr, req) -> dict:
    return {
        "throttle_time": 0,
        "topics": [{"name": t.name, "partitions": [_partition(broker, t.name, i) for i in t.partition_indexes]}
                   for t in req.topics],
    }
