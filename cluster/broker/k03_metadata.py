"""Metadata (key 3), v0-v13: brokers, controller, topics with partitions and topic ids.

`__consumer_offsets` and `__transaction_state` are listed as internal topics once used
(cluster/broker/internal_topics.py), flagged `is_internal` as Kafka does.

Auto-creates topics named in the request when the broker allows it and the request asks
(v4+ `allow_auto_topic_creation`; always for older versions), as Kafka does.
With ACLs: topics the principal may not Describe are hidden from an all-topics request and
answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs Create on the cluster
or the topic; KIP-430 authorized operations are filled when asked for.
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler
from cluster.broker.topics import TopicError, TopicMeta, check_topic_name

_NO_OPS = -(2**31)
_ZERO_UUID = uuid.UUID(int=0)


def _cluster_partitions(broker, name: str, count: int) -> list[dict]:
    """Multi-broker: each partition's leader, epoch, replicas and ISR as the controller set them."""
    fenced = {b.node_id for b in broker.membership.brokers.values() if b.fenced}
    out = []
    for i in range(count):
        state = broker.membership.partitions.get((name, i))
        if state is None:
            out.append({"error_code": ErrorCode.leader_not_available, "partition_index": i, "leader_id": -1,
                        "leader_epoch": -1, "replica_nodes": [], "isr_nodes": [], "offline_replicas": []})
            continue
        out.append({"error_code": ErrorCode.leader_not_available if state.leader < 0 else 0,
                    "partition_index": i, "leader_id": state.leader, "leader_epoch": state.leader_epoch,
                    "replica_nodes": list(state.replicas), "isr_nodes": list(state.isr),
                    "offline_replicas": [r for r in state.replicas if r in fenced]})
    return out


def topic_entry(broker, meta: TopicMeta) -> dict:
    if broker.membership is not None:
        return {"error_code": 0, "name": meta.name, "topic_id": meta.uuid, "is_internal": False,
                "topic_authorized_operations": _NO_OPS,
                "partitions": _cluster_partitions(broker, meta.name, meta.partitions)}
    return {
        "error_code": 0,
        "name": meta.name,
        "topic_id": meta.uuid,
        "is_internal": False,
        "topic_authorized_operations": _NO_OPS,
        "partitions": [
            {
                "error_code": 0,
                "partition_index": i,
                "leader_id": broker.node_id,
                "leader_epoch": meta.leader_epochs[i],
                "replica_nodes": [broker.node_id],
                "isr_nodes": [broker.node_id],
                "offline_replicas": [],
            }
            for i in range(meta.partitions)
        ],
    }


def internal_entry(broker, name: str) -> dict:
    """An internal topic (cluster/broker/internal_topics.py): every partition led here."""
    n = internal_topics.PARTITIONS[name]
    if broker.membership is not None:
        return {"error_code": 0, "name": name, "topic_id": broker.internal_topics.topic_id(name),
                "is_internal": True, "topic_authorized_operations": _NO_OPS,
                "partitions": _cluster_partitions(broker, name, n)}
    return {
        "error_code": 0,
        "name": name,
        "topic_id": broker.internal_topics.topic_id(name),
        "is_internal": True,
        "topic_authorized_operations": _NO_OPS,
        "partitions": [
            {"error_code": 0, "partition_index": i, "leader_id": broker.node_id, "leader_epoch": 0,
             "replica_nodes": [broker.node_id], "isr_nodes": [broker.node_id], "offline_replicas": []}
            for i in range(n)
        ],
    }


def _missing(name: str | None, code: int, topic_id: uuid.UUID | None = None) -> dict:
    return {
        "error_code": code,
        "name": name,
        "topic_id": topic_id or _ZERO_UUID,
        "is_internal": internal_topics.is_internal(name),
        "partitions": [],
        "topic_authorized_operations": _NO_OPS,
    }


def _may_auto_create(broker, name: str) -> bool:
    """KafkaApis: auto-creating a topic needs Create on the cluster or on the topic."""
    return (authz.allowed_cluster(broker, authz.Op.CREATE)
            or authz.allowed(broker, authz.Op.CREATE, authz.TOPIC, name))


def _described(broker, name: str) -> bool:
    return authz.allowed(broker, authz.Op.DESCRIBE, authz.TOPIC, name)


@handler(3, 0, 13)
async def metadata(broker, hdr, req) -> dict:
    topics: list[dict] = []
    if req.topics is None or (hdr.api_version == 0 and not req.topics):
        # All topics: those the principal may not Describe are left out, as in Kafka.
        topics = [topic_entry(broker, m) for m in list(broker.catalogue.topics.values())
                  if _described(broker, m.name) and not internal_topics.is_internal(m.name)]
        topics += [internal_entry(broker, n) for n in sorted(broker.internal_topics.used)
                   if _described(broker, n)]
    else:
        auto = getattr(req, "allow_auto_topic_creation", True)
        for t in req.topics:
            name = t.name
            tid = getattr(t, "topic_id", None)
            if name is None and tid is not None and tid != _ZERO_UUID:
                meta = broker.catalogue.by_id.get(tid)
                internal = broker.internal_topics.by_id(tid)
                if internal is not None and _described(broker, internal):
                    topics.append(internal_entry(broker, internal))
                elif meta is None:
                    topics.append(_missing(None, ErrorCode.unknown_topic_id, tid))
                elif not _described(broker, meta.name):  # ids are not secret; names are
                    topics.append(_missing(None, ErrorCode.topic_authorization_failed, tid))
                else:
                    topics.append(topic_entry(broker, meta))
                continue
            if not _described(broker, name or ""):
                topics.append(_missing(name, ErrorCode.topic_authorization_failed))
                continue
            try:
                check_topic_name(name or "")
            except TopicError as exc:
                topics.append(_missing(name, exc.code))
                continue
            if internal_topics.is_internal(name):  # listed after first use, as in Kafka
                topics.append(internal_entry(broker, name) if name in broker.internal_topics.used
                              else _missing(name, ErrorCode.unknown_topic_or_partition))
                continue
            meta = broker.topic(name)
            if meta is None and auto and broker.config.auto_create_topics and not name.startswith("__"):
                if not _may_auto_create(broker, name):
                    topics.append(_missing(name, ErrorCode.topic_authorization_failed))
                    continue
                if broker.membership is not None:
                    await broker.membership.create_topic(name, broker.config.default_partitions, 1, {})
                    meta = broker.topic(name)
                else:
                    meta = broker.maybe_auto_create(name)
            if meta is None:
                topics.append(_missing(name, ErrorCode.unknown_topic_or_partition))
            else:
                topics.append(topic_entry(broker, meta))
    if getattr(req, "include_topic_authorized_operations", False):
        for entry in topics:
            if entry["error_code"] == 0:
                entry["topic_authorized_operations"] = authz.authorized_operations(
                    broker, authz.TOPIC, entry["name"])
    cluster_ops = _NO_OPS
    if getattr(req, "include_cluster_authorized_operations", False) and hdr.api_version <= 10:
        cluster_ops = (authz.authorized_operations(broker, authz.CLUSTER, authz.CLUSTER_NAME)
                       if authz.allowed_cluster(broker, authz.Op.DESCRIBE) else 0)
    return {
        "throttle_time": 0,
        "brokers": [{"node_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack}
                    for b in broker.membership.live_brokers()] if broker.membership is not None else [
            {
                "node_id": broker.node_id,
                "host": broker.advertised_host,
                "port": broker.advertised_port,
                "rack": None,
            }
        ],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.controller_id,
        "topics": topics,
        "cluster_authorized_operations": cluster_ops,
        "error_code": 0,
    }
