"""WriteTxnMarkers (key 27), v1: append COMMIT/ABORT markers on an administrator's behalf.

Kafka's coordinators send this to partition leaders; here the coordinator lives in the
broker and appends its markers directly, so the API serves the other caller Kafka has:
`kafka-transactions.sh abort` (AdminClient.abortTransaction), which ends a hanging
transaction on one partition after `describe-producers` / `find-hanging` found it. The
marker is refused with INVALID_PRODUCER_EPOCH when the producer has written to the
partition with a newer epoch, as in Kafka; a partition the broker lacks is
UNKNOWN_TOPIC_OR_PARTITION. A mirror topic refuses it with POLICY_VIOLATION (and a log
line), as it refuses producers: its open transactions end when the source's marker is
copied, a local marker would shift every offset after it away from the source's, and
promotion aborts what is still open. v2 (KIP-890 transaction versions) is not advertised.
"""

from __future__ import annotations

import logging
import time

from kio.schema.errors import ErrorCode

from cluster.wire.dcmirror_api import MIRROR_SOURCE
from cluster.broker import authz
from cluster.broker.registry import handler

log = logging.getLogger(__name__)


def _write(broker, marker, topic: str, index: int) -> dict:
    part = broker.partitions.get((topic, index))
    if part is None:
        return {"partition_index": index, "error_code": ErrorCode.unknown_topic_or_partition}
    meta = broker.catalogue.topics.get(topic)
    if meta is not None and meta.configs.get(MIRROR_SOURCE):
        log.warning("refused a transaction marker on %s-%d: a read-only mirror of %s",
                    topic, index, meta.configs[MIRROR_SOURCE])
        return {"partition_index": index, "error_code": ErrorCode.policy_violation}
    code = broker.producer_state.append_marker(
        part, int(marker.producer_id), int(marker.producer_epoch), bool(marker.transaction_result),
        int(marker.coordinator_epoch), int(time.time() * 1000))
    if code == 0:
        log.info("%s marker written for producer %d epoch %d on %s-%d at an administrator's request",
                 "COMMIT" if marker.transaction_result else "ABORT", marker.producer_id,
                 marker.producer_epoch, topic, index)
    return {"partition_index": index, "error_code": code}


@handler(27, 1, 1)
async def write_txn_markers(broker, hdr, req) -> dict:
    if not authz.allowed_cluster(broker, authz.Op.CLUSTER_ACTION):
        return {"markers": [
            {"producer_id": m.producer_id, "topics": [
                {"name": t.name, "partitions": [
                    {"partition_index": i, "error_code": ErrorCode.cluster_authorization_failed}
                    for i in t.partition_indexes]} for t in m.topics]} for m in req.markers]}
    return {"markers": [
        {"producer_id": m.producer_id,
         "topics": [{"name": t.name, "partitions": [_write(broker, m, t.name, i) for i in t.partition_indexes]}
                    for t in m.topics]}
        for m in req.markers]}
