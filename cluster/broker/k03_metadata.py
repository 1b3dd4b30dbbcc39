"""Metadata (key 3), v0-v13: brokers, controller, topics with partitions and topic ids.

Auto-creates topics named in the request when the broker allows it and the request asks
(v4+ `allow_auto_topic_creation`; always for older versions), as Kafka does.
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from cluster.broker.registry import handler
from cluster.broker.topics import TopicError, TopicMeta, check_topic_name

_NO_OPS = -(2**31)
_ZERO_UUID = uuid.UUID(int=0)


def topic_entry(broker, meta: TopicMeta) -> dict:
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


def _missing(name: str | None, code: int, topic_id: uuid.UUID | None = None) -> dict:
    return {
        "error_code": code,
        "name": name,
        "topic_id": topic_id or _ZERO_UUID,
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": _NO_OPS,
    }


@handler(3, 0, 13)
async def metadata(broker, hdr, req) -> dict:
    topics: list[dict] = []
    if req.topics is None or (hdr.api_version == 0 and not req.topics):
        topics = [topic_entry(broker, m) for m in list(broker.catalogue.topics.values())]
    else:
        auto = getattr(req, "allow_auto_topic_creation", True)
        for t in req.topics:
            name = t.name
            tid = getattr(t, "topic_id", None)
            if name is None and tid is not None and tid != _ZERO_UUID:
                meta = broker.catalogue.by_id.get(tid)
                topics.append(
                    topic_entry(broker, meta)
                    if meta
                    else _missing(None, ErrorCode.unknown_topic_id, tid)
                )
                continue
            try:
                check_topic_name(name or "")
            except TopicError as exc:
                topics.append(_missing(name, exc.code))
                continue
            meta = broker.maybe_auto_create(name) if auto else broker.topic(name)
            if meta is None:
                topics.append(_missing(name, ErrorCode.unknown_topic_or_partition))
            else:
                topics.append(topic_entry(broker, meta))
    return {
        "throttle_time": 0,
        "brokers": [
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
        "cluster_authorized_operations": _NO_OPS,
        "error_code": 0,
    }
