"""DcMirrorAppend (private key 10000, v0): the mirror's offset-preserving append path.

Wire format: exactly Produce v9 (request and response), under API key 10000, advertised in
ApiVersions so the mirror can tell a dcmirror cluster from any other. Semantics differ
from Produce in five ways, all needed to make the target an exact copy of the source:
- each batch keeps its base offset and partition leader epoch (gaps allowed, e.g. after
  compaction or retention on the source);
- batches whose offsets the partition already holds are skipped, so a mirror that crashed
  and re-sends its last request duplicates nothing;
- an empty partition first moves its log start to the first batch's offset, so a source
  that lost old records to retention is mirrored with the same log start;
- batches are validated with the MIRROR rules (a compacted source's gaps and control
  markers are allowed; offsets must fit an int64), so a source sending garbage cannot
  corrupt the copy;
- only topics marked as mirrors (`dcmirror.mirror.source` config) accept it, and ordinary
  producers are refused on those topics until failover promotes them.
Idempotent and transactional producer state is rebuilt from the appended headers, so
read_committed semantics hold on the copy. Offsets are taken as given, so they are checked
first: a batch whose base offset is negative or whose next offset (the new log end) would
not fit an int64 is refused with INVALID_RECORD and nothing is written. When ACLs apply, the
caller needs ClusterAction on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise).
"""

from __future__ import annotations

import logging
import time

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.k00_produce import (
    _error,
    appended,
    produce_response,
    validated_batches,
)
from cluster.broker.registry import handler
from cluster.wire.dcmirror_api import DCMIRROR_APPEND, MIRROR_SOURCE
from cluster.log import OffsetOutOfOrder
from cluster.wire import record_batch as rb
from cluster.wire.batch_validator import Origin

log = logging.getLogger(__name__)

MAX_OFFSET = (1 << 63) - 1  # the largest log end offset Kafka's int64 fields can carry


def offset_problem(h: rb.BatchHeader) -> str | None:
    """Why a batch's offsets cannot be kept as given, or None."""
    if h.base_offset < 0 or h.last_offset_delta < 0:
        return f"batch offsets [{h.base_offset}, +{h.last_offset_delta}] are negative"
    if h.next_offset > MAX_OFFSET:
        return (f"batch [{h.base_offset}, {h.last_offset}] ends past the largest log end "
                f"offset {MAX_OFFSET}")
    return None


async def mirror_partition(broker, topic: str, index: int, records: bytes | None) -> dict:
    meta = broker.catalogue.topics.get(topic)
    if meta is not None and not meta.configs.get(MIRROR_SOURCE):
        return _error(index, ErrorCode.invalid_request,
                      f"topic {topic} is not a mirror topic (no {MIRROR_SOURCE} config)")
    checked = await validated_batches(broker, topic, index, records, Origin.MIRROR)
    if isinstance(checked, dict):
        return checked
    part, batches, _ = checked
    log = part.log
    fresh = []
    for b in batches:
        h = rb.read_header(b)
        if (problem := offset_problem(h)) is not None:
            return _error(index, ErrorCode.invalid_record, problem)
    for b in batches:
        h = rb.read_header(b)
        if h.next_offset <= log.log_end_offset:
            continue  # already mirrored: a re-sent request
        if h.base_offset < log.log_end_offset:
            return _error(index, ErrorCode.invalid_request,
                          f"batch [{h.base_offset}, {h.last_offset}] straddles the log end "
                          f"{log.log_end_offset}")
        fresh.append(b)
    if not fresh:
        return appended(index, log.log_end_offset, log.log_start_offset)
    first = rb.read_header(fresh[0]).base_offset
    if log.log_end_offset == log.log_start_offset and first > log.log_end_offset:
        log.start_at(first)
    if broker.producer_state is not None:
        # Load (or rebuild from the log) the partition's producer and transaction state
        # before appending, so the batches below are recorded exactly once.
        broker.producer_state.for_partition(part)
    try:
        res = log.append_preserving(fresh, now_ms=int(time.time() * 1000))
    except OffsetOutOfOrder as exc:
        return _error(index, ErrorCode.invalid_request, str(exc))
    if broker.producer_state is not None:
        broker.producer_state.record_preserved(part, fresh)
    part.notify()
    return appended(index, res.base_offset, log.log_start_offset)


@handler(DCMIRROR_APPEND, 0, 0)
async def mirror_append(broker, hdr, req) -> dict | None:
    if not authz.allowed_cluster(broker, authz.Op.CLUSTER_ACTION):
        log.warning("refused DcMirrorAppend from %s: it needs ClusterAction on the cluster", authz.principal())

        async def refuse(topic: str, index: int, records) -> dict:
            return _error(index, ErrorCode.cluster_authorization_failed)
        return await produce_response(req, refuse)
    return await produce_response(req, lambda t, i, r: mirror_partition(broker, t, i, r))
