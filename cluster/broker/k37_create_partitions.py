"""CreatePartitions (key 37), v0-v3: grow a topic; shrinking is refused as in Kafka.

Like CreateTopics, one request may add at most 10,000 partitions (else every topic gets
POLICY_VIOLATION and nothing grows), and no topic may grow the broker past its
`max_partitions` ceiling. Internal topics are refused with INVALID_TOPIC_EXCEPTION (Kafka
4.3.1 grows them; see cluster/broker/internal_topics.py).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.config import MAX_PARTITIONS_PER_REQUEST
from cluster.broker.k19_create_topics import TOO_MANY_PARTITIONS
from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler
from cluster.broker.topics import TopicError


def _added(broker, req) -> int:
    total = 0
    for t in req.topics:
        meta = broker.topic(t.name)
        if meta is not None and t.count > meta.partitions:
            total += t.count - meta.partitions
    return total


def _internal(name: str, count: int) -> dict:
    have = internal_topics.PARTITIONS[name]
    if count <= have:  # as Kafka answers
        return {"name": name, "error_code": ErrorCode.invalid_partitions, "error_message":
                f"The topic {name} currently has {have} partition(s); {count} would not be an increase."}
    return {"name": name, "error_code": ErrorCode.invalid_topic_exception,
            "error_message": internal_topics.refusal(name, "adding partitions")}


@handler(37, 0, 3)
async def create_partitions(broker, hdr, req) -> dict:
    if _added(broker, req) > MAX_PARTITIONS_PER_REQUEST:
        return {"throttle_time": 0, "results": [
            {"name": t.name, "error_code": ErrorCode.policy_violation,
             "error_message": TOO_MANY_PARTITIONS} for t in req.topics]}
    results = []
    for t in req.topics:
        if not authz.allowed(broker, authz.Op.ALTER, authz.TOPIC, t.name):
            results.append({"name": t.name, "error_code": ErrorCode.topic_authorization_failed,
                            "error_message": None})
            continue
        if broker.membership is not None:
            results.append({"name": t.name, "error_code": ErrorCode.invalid_request, "error_message":
                            "adding partitions to a topic of a multi-broker cluster is not supported yet"})
            continue
        if internal_topics.is_internal(t.name):
            results.append(_internal(t.name, t.count))
            continue
        meta = broker.topic(t.name)
        if meta is None:
            results.append({"name": t.name, "error_code": ErrorCode.unknown_topic_or_partition,
                            "error_message": f"topic {t.name} does not exist"})
            continue
        if t.count <= meta.partitions:
            results.append({"name": t.name, "error_code": ErrorCode.invalid_partitions,
                            "error_message": f"Topic currently has {meta.partitions} partitions, "
                                             f"which is higher than or equal to the requested {t.count}."})
            continue
        if t.assignments and any(b != broker.node_id for a in t.assignments for b in a.broker_ids):
            results.append({"name": t.name, "error_code": ErrorCode.invalid_replica_assignment,
                            "error_message": "assignment names unknown brokers"})
            continue
        try:
            if req.validate_only:
                broker.check_partition_budget(t.count - meta.partitions)
            else:
                broker.add_partitions(t.name, t.count)
        except TopicError as exc:
            results.append({"name": t.name, "error_code": exc.code, "error_message": str(exc)})
            continue
        results.append({"name": t.name, "error_code": 0, "error_message": None})
    return {"throttle_time": 0, "results": results}
