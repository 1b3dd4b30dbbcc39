"""CreatePartitions (key 37), v0-v3: grow a topic; shrinking is refused as in Kafka."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.registry import handler


@handler(37, 0, 3)
async def create_partitions(broker, hdr, req) -> dict:
    results = []
    for t in req.topics:
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
        if not req.validate_only:
            broker.add_partitions(t.name, t.count)
        results.append({"name": t.name, "error_code": 0, "error_message": None})
    return {"throttle_time": 0, "results": results}
