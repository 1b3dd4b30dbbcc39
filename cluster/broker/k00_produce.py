"""Produce (key 0), v3-v11: validate RecordBatch v2 bytes and append them to partition logs.

Batches stay bytes: the broker checks each header, CRC32C and every record's structure
(`cluster.wire.batch_validator`, Kafka's LogValidator rules; records are walked, never
materialised), patches base offset and leader epoch in place, and writes. Errors follow
Kafka: magic < 2 -> UNSUPPORTED_FOR_MESSAGE_FORMAT, bad CRC or framing -> CORRUPT_MESSAGE,
malformed records or header fields -> INVALID_RECORD, a batch over max.message.bytes ->
MESSAGE_TOO_LARGE, unknown partition -> UNKNOWN_TOPIC_OR_PARTITION. A refused batch
changes nothing. acks=0 requests get no response at all. Idempotent/transactional
sequence checks live in the producer-state module (`broker.producer_state`). As Kafka,
transactional records in a Produce without a transactional id fail the whole request with
TRANSACTIONAL_ID_AUTHORIZATION_FAILED before any validation.
"""

from __future__ import annotations

import logging
import time

from kio.schema.errors import ErrorCode

from cluster.broker import authz, internal_topics, replicas, topic_config
from cluster.broker.recompress import recompress, target_codec
from cluster.broker.registry import handler
from cluster.wire import record_batch as rb
from cluster.wire.batch_validator import BatchRefused, CheckedBatch, Origin
from cluster.wire.dcmirror_api import FENCED, MIRROR_SOURCE

log = logging.getLogger(__name__)


def _error(index: int, code: int, message: str | None = None,
           record_index: int | None = None) -> dict:
    record_errors = [] if record_index is None else [
        {"batch_index": record_index, "batch_index_error_message": message}]
    return {
        "index": index,
        "error_code": code,
        "base_offset": -1,
        "log_append_time": None,
        "log_start_offset": -1,
        "record_errors": record_errors,
        "error_message": message,
    }




async def validated_batches(broker, topic: str, index: int, records: bytes | None,
                            origin: Origin):
    """(partition, batches, checks) with every batch validated, or an error response entry."""
    part = broker.partitions.get((topic, index))
    if part is None:
        return _error(index, ErrorCode.not_leader_or_follower if broker.led_elsewhere(topic, index)
                      else ErrorCode.unknown_topic_or_partition)
    meta = broker.catalogue.topics[topic]
    if not records:
        return _error(index, ErrorCode.corrupt_message, "empty records")
    try:
        batches = rb.split_batches(records)
    except rb.UnsupportedMagic as exc:
        return _error(index, ErrorCode.unsupported_for_message_format, str(exc))
    except rb.InvalidBatch as exc:
        return _error(index, ErrorCode.corrupt_message, str(exc))
    max_bytes = int(
        meta.configs.get("max.message.bytes", topic_config.DEFAULT_MAX_MESSAGE_BYTES)
    )
    for b in batches:
        if len(b) > max_bytes:
            return _error(
                index,
                ErrorCode.message_too_large,
                f"batch of {len(b)} bytes exceeds max.message.bytes={max_bytes}",
            )
    try:
        checks = await broker.batch_checks.validate(batches, origin)
    except BatchRefused as exc:
        log.info("refused a batch for %s-%d: %s", topic, index, exc.message)
        return _error(index, exc.code, exc.message)  # structural: no record_errors, as Kafka
    if broker.partitions.get((topic, index)) is not part:  # deleted while we checked
        return _error(index, ErrorCode.unknown_topic_or_partition)
    return part, batches, checks


def _refuse_keyless(index: int, checks: list[CheckedBatch]) -> dict | None:
    """Kafka refuses records without a key in a compacted topic (INVALID_RECORD)."""
    for c in checks:
        if c.keyless and not c.header.is_control:
            return _error(index, ErrorCode.invalid_record,
                          "Compacted topic cannot accept message without key", c.first_keyless)
    return None


def _refuse_timestamps(index: int, configs: dict[str, str], checks: list[CheckedBatch]) -> dict | None:
    """Kafka's message.timestamp.after.max.ms / before.max.ms for CreateTime topics,
    checked on every record's timestamp (the validator's min and max per batch)."""
    if configs.get("message.timestamp.type", "CreateTime") != "CreateTime":
        return None
    now = int(time.time() * 1000)
    after = int(configs.get("message.timestamp.after.max.ms", topic_config.DEFAULT_TS_AFTER_MAX_MS))
    before = int(configs.get("message.timestamp.before.max.ms", topic_config.DEFAULT_TS_BEFORE_MAX_MS))
    for c in checks:
        if c.header.is_control or c.header.records_count == 0:
            continue
        bad = c.max_timestamp if c.max_timestamp > now + after else (
            c.min_timestamp if 0 <= c.min_timestamp < now - before else None)
        if bad is not None:
            return _error(index, ErrorCode.invalid_timestamp,
                          f"timestamp {bad} is out of range (message.timestamp.after.max.ms={after}, "
                          f"before.max.ms={before})")
    return None


async def produce_partition(broker, topic: str, index: int, records: bytes | None, *,
                            acks: int = 1, deadline: float = 0.0) -> dict:
    """Validate and append one partition's payload; returns its response entry.

    acks=all on a replicated partition (cluster/broker/replicas.py): refused with
    NOT_ENOUGH_REPLICAS before the append when the ISR is under min.insync.replicas, then
    answered once the high watermark covers the append (or its error, or
    REQUEST_TIMED_OUT at `deadline`, a time.monotonic() value).
    """
    if internal_topics.is_internal(topic):  # ReplicaManager: "Cannot append to internal topic"
        return _error(index, ErrorCode.invalid_topic_exception, f"Cannot append to internal topic {topic}")
    meta = broker.catalogue.topics.get(topic)
    if meta is not None and meta.configs.get(MIRROR_SOURCE):
        return _error(
            index,
            ErrorCode.invalid_request,
            f"topic {topic} is a read-only mirror of {meta.configs[MIRROR_SOURCE]};"
            " promote it with `dcmirror failover` before producing",
        )
    if meta is not None and meta.configs.get(FENCED):
        return _error(index, ErrorCode.invalid_request,
                      f"topic {topic} is fenced: it fails over to {meta.configs[FENCED]}, produce there")
    checked = await validated_batches(broker, topic, index, records, Origin.CLIENT)
    if isinstance(checked, dict):
        return checked
    part, batches, checks = checked
    if part.log.config.compact and (refused := _refuse_keyless(index, checks)) is not None:
        return refused
    if (refused := _refuse_timestamps(index, meta.configs if meta else {}, checks)) is not None:
        return refused
    forced = target_codec(meta.configs.get("compression.type", "producer")) if meta else None
    if forced is not None and any(c.header.compression != forced for c in checks):
        # Decoding and re-encoding is Python work: off the loop, one batch set at a time.
        batches = await broker.batch_checks.off_loop(
            lambda: [memoryview(recompress(b, forced)) for b in batches])
        if broker.partitions.get((topic, index)) is not part:
            return _error(index, ErrorCode.unknown_topic_or_partition)
    if part.follower is not None:  # this broker follows it: the client must re-route
        return _error(index, ErrorCode.not_leader_or_follower)
    if code := replicas.acks_all_precheck(part, acks):
        return _error(index, code)
    producer_state = getattr(broker, "producer_state", None)
    if producer_state is not None:
        dup = producer_state.check(part, batches)
        if dup is not None:
            return dup
    now_ms = int(time.time() * 1000)
    res = part.log.append(batches, leader_epoch=part.leader_epoch, now_ms=now_ms)
    if producer_state is not None:
        producer_state.record(part, batches, res)
    replicas.after_append(part)
    if code := await replicas.await_acks_all(part, res.last_offset + 1, acks, deadline):
        return _error(index, code)
    return appended(index, res.base_offset, part.log.log_start_offset, res.log_append_time_ms)


def appended(index: int, base_offset: int, log_start_offset: int, log_append_time_ms: int = -1) -> dict:
    """A successful partition entry of a Produce-shaped response."""
    return {
        "index": index,
        "error_code": 0,
        "base_offset": base_offset,
        "log_append_time": log_append_time_ms if log_append_time_ms >= 0 else None,
        "log_start_offset": log_start_offset,
        "record_errors": [],
        "error_message": None,
    }


async def produce_response(req, per_partition) -> dict | None:
    """Run the coroutine `per_partition(topic, index, records)` over a Produce-shaped request."""
    responses = []
    for t in req.topic_data:
        parts = [await per_partition(t.name, p.index, p.records) for p in t.partition_data]
        responses.append({"name": t.name, "partition_responses": parts})
    if req.acks == 0:
        return None
    return {"responses": responses, "throttle_time": 0}


def _all_partitions(req, code: int, message: str | None = None) -> dict:
    return {"throttle_time": 0, "responses": [
        {"name": t.name, "partition_responses": [_error(p.index, code, message) for p in t.partition_data]}
        for t in req.topic_data]}


def _has_transactional_records(req) -> bool:
    """Kafka's RequestUtils.hasTransactionalRecords: the first batch of some partition."""
    for t in req.topic_data:
        for p in t.partition_data:
            try:
                if p.records and rb.read_header(p.records).is_transactional:
                    return True
            except rb.InvalidBatch:
                continue  # refused later, partition by partition
    return False


@handler(0, 3, 11)
async def produce(broker, hdr, req) -> dict | bool | None:
    if req.acks not in (-1, 0, 1):
        return _all_partitions(req, ErrorCode.invalid_required_acks, f"acks={req.acks} is not -1, 0 or 1")
    # KafkaApis.handleProduceRequest, before anything else and with or without an authorizer:
    # transactional (or control) records in a Produce that names no transactional id fail
    # the whole request (acks=0: the connection is closed, as Kafka does when there is no
    # response to carry the error). With ACLs, the named transactional id needs Write too.
    tid = req.transactional_id
    txn = _has_transactional_records(req)
    if txn and (tid is None or not authz.allowed(broker, authz.Op.WRITE, authz.TXN_ID, tid)):
        if req.acks == 0:
            log.info("closing the connection: acks=0 Produce with transactional records "
                     "and no (authorized) transactional id")
            return False
        if tid is None:
            return _all_partitions(req, ErrorCode.transactional_id_authorization_failed,
                                   "transactional records in a Produce without a transactional id")
        return _all_partitions(req, ErrorCode.transactional_id_authorization_failed)
    deadline = time.monotonic() + req.timeout.total_seconds()
    if not authz.enforced(broker):
        return await produce_response(
            req, lambda t, i, r: produce_partition(broker, t, i, r, acks=req.acks, deadline=deadline))
    # every topic needs Write on itself
    writable = {t.name: authz.allowed(broker, authz.Op.WRITE, authz.TOPIC, t.name) for t in req.topic_data}

    async def checked(topic: str, index: int, records) -> dict:
        if not writable[topic]:
            return _error(index, ErrorCode.topic_authorization_failed)
        return await produce_partition(broker, topic, index, records, acks=req.acks, deadline=deadline)

    return await produce_response(req, checked)
