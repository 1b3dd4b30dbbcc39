"""DeleteTopics (key 20), v0-v6: by name, or by topic id (v6).

Internal topics are refused with INVALID_TOPIC_EXCEPTION (Kafka 4.3.1 deletes them and
loses every group's offsets; see cluster/broker/internal_topics.py).
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler

_ZERO = uuid.UUID(int=0)


@handler(20, 0, 6)
async def delete_topics(broker, hdr, req) -> dict:
    if hdr.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in req.topics]
    else:
        wanted = [(n, None) for n in req.topic_names]
    results = []
    for name, tid in wanted:
        internal = name if internal_topics.is_internal(name) else broker.internal_topics.by_id(tid)
        if internal is not None:
            code = (ErrorCode.topic_authorization_failed
                    if not authz.allowed(broker, authz.Op.DELETE, authz.TOPIC, internal)
                    else ErrorCode.invalid_topic_exception)
            results.append({"name": name, "topic_id": tid or _ZERO, "error_code": code,
                            "error_message": None if code != ErrorCode.invalid_topic_exception
                            else internal_topics.refusal(internal, "deleting it")})
            continue
        meta = None
        if name is None and tid not in (None, _ZERO):
            meta = broker.catalogue.by_id.get(tid)
        elif name is not None:
            meta = broker.topic(name)
        if meta is not None and not authz.allowed(broker, authz.Op.DELETE, authz.TOPIC, meta.name):
            # Kafka does not disclose the name of a topic asked by id to a principal that
            # may not Describe it.
            shown = name if name is not None or authz.allowed(
                broker, authz.Op.DESCRIBE, authz.TOPIC, meta.name) else None
            results.append({"name": shown, "topic_id": tid or _ZERO,
                            "error_code": ErrorCode.topic_authorization_failed, "error_message": None})
            continue
        if meta is None and name is not None and not authz.allowed(broker, authz.Op.DELETE, authz.TOPIC, name):
            results.append({"name": name, "topic_id": _ZERO,
                            "error_code": ErrorCode.topic_authorization_failed, "error_message": None})
            continue
        if meta is None:
            code = ErrorCode.unknown_topic_id if name is None else ErrorCode.unknown_topic_or_partition
            results.append({"name": name, "topic_id": tid or _ZERO, "error_code": code,
                            "error_message": None})
            continue
        if broker.membership is not None:  # multi-broker: the controller deletes it everywhere
            out = await broker.membership.delete_topic(meta.name)
            results.append({"name": meta.name, "topic_id": meta.uuid, "error_code": out.error,
                            "error_message": out.message or None})
            continue
        broker.delete_topic(meta.name)
        results.append({"name": meta.name, "topic_id": meta.uuid, "error_code": 0,
                        "error_message": None})
    return {"throttle_time": 0, "responses": results}
