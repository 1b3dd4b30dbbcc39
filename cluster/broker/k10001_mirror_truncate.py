"""DcMirrorTruncate (private key 10001, v0): cut a mirror partition back to an offset.

Failback needs it: after an unplanned failover the old source holds records (acknowledged
there, never mirrored) beyond the point where the new primary took over. Once those are
saved elsewhere, the old source's partitions are truncated to that divergence point and
then brought up to date from the new primary with offsets preserved. Kafka has no public
API for this (DeleteRecords cuts the other end), so it is private.

Wire format: exactly DeleteRecords v2, under API key 10001; `offset` is the new log end
(batches whose last offset is at or beyond it are dropped whole), and the response's
`low_watermark` carries the resulting log end. Only topics marked as mirrors
(`dcmirror.mirror.source`) may be truncated, so a live topic can never be cut by mistake;
an offset at or beyond the log end changes nothing (running failback twice is harmless).
When ACLs apply, the caller needs ClusterAction on the cluster, and so does setting the
`dcmirror.mirror.source` marker (see configs.py): holding Alter on a topic is not enough.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.wire.dcmirror_api import DCMIRROR_TRUNCATE, MIRROR_SOURCE
from cluster.broker import authz
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


def truncate_partition(broker, topic: str, index: int, offset: int) -> dict:
    out = {"partition_index": index, "low_watermark": -1, "error_code": 0}
    meta = broker.topic(topic)
    part = broker.partitions.get((topic, index))
    if meta is None or part is None:
        return {**out, "error_code": ErrorCode.not_leader_or_follower if broker.led_elsewhere(topic, index)
                else ErrorCode.unknown_topic_or_partition}
    if not meta.configs.get(MIRROR_SOURCE):
        return {**out, "error_code": ErrorCode.invalid_request}
    plog = part.log
    if offset < plog.log_start_offset:
        return {**out, "error_code": ErrorCode.offset_out_of_range}
    if offset < plog.log_end_offset:
        before = plog.log_end_offset
        plog.truncate_to(offset)
        if broker.producer_state is not None:
            broker.producer_state.forget(part)  # rebuilt from the kept headers on next use
        part.notify()
        log.warning("truncated %s-%d from %d to %d (failback)", topic, index, before, plog.log_end_offset)
    return {**out, "low_watermark": plog.log_end_offset}


@handler(DCMIRROR_TRUNCATE, 0, 0)
async def mirror_truncate(broker, hdr, req) -> dict:
    if not authz.allowed_cluster(broker, authz.Op.CLUSTER_ACTION):
        log.warning("refused MirrorTruncate from %s: it needs ClusterAction on the cluster", authz.principal())
        return {"throttle_time": 0, "topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p.partition_index, "low_watermark": -1,
                 "error_code": ErrorCode.cluster_authorization_failed} for p in t.partitions]}
            for t in req.topics]}
    topics = []
    for t in req.topics:
        parts = [truncate_partition(broker, t.name, p.partition_index, p.offset) for p in t.partitions]
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
