"""OffsetFetch (key 9), v1-v8: committed offsets of one group (v1-v7) or several (v8).

Null topics (v2+) fetch every committed offset of the group. `require_stable` (v7+) is
ignored: offsets of transactions are only made visible at commit by the transaction
coordinator, so there are never pending offsets to wait for here. Versions 9+ (KIP-848
member epochs, topic ids) are not served.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.registry import handler


def _topics(requested) -> dict[str, list[int]] | None:
    if requested is None:
        return None
    return {t.name: list(t.partition_indexes) for t in requested}


async def _one(broker, group_id: str, topics: dict[str, list[int]] | None, version: int) -> dict:
    if broker.groups is None:
        return {"group_id": group_id, "error_code": ErrorCode.coordinator_not_available, "topics": []}
    result = await broker.groups.offset_fetch(group_id, topics)
    if version < 2 and topics is None:
        result["topics"] = []
    return result


@handler(9, 0, 8)
async def offset_fetch(broker, hdr, req) -> dict:
    if hdr.api_version >= 8:
        groups = [await _one(broker, g.group_id, _topics(g.topics), hdr.api_version) for g in req.groups]
        return {"throttle_time": 0, "groups": groups}
    result = await _one(broker, req.group_id, _topics(req.topics), hdr.api_version)
    return {"throttle_time": 0, "topics": result["topics"], "error_code": result["error_code"]}
