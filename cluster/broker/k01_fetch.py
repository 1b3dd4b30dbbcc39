"""Fetch (key 1), v4-v16: raw batches out of partition logs, with long-polling.

Supports many partitions per request, high watermark, last stable offset (read_committed
stops there), log start offset, leader-epoch fencing, topic ids (v13+).

Byte limits follow Apache Kafka's ReplicaManager.readFromLog (KIP-74): the response budget
is min(request max_bytes, the broker's fetch.max.bytes); partitions are read in request
order, each up to min(partition_max_bytes, what is left of the budget). Until some
partition has returned data, the first batch at the fetch offset comes whole even when it
alone exceeds those limits (so a consumer can never be stuck behind a big batch); after
that nothing goes past the budget. A partition's read counts what Kafka counts: the byte
range read, including a trailing partial batch, which Kafka sends and we drop. Only those
byte ranges are read from the segment files, so a response holds at most its budget (plus
that one oversize batch) in memory.

On a connection that can send from files (plaintext TCP: `session.sendfile`), the log
bytes are not read at all: each partition's records are file ranges (`read_ranges`: the
same batches and budget as the bytes read) that the connection sends with `os.sendfile`
(cluster/broker/sendfile.py). Over TLS, and where the range budget is spent, they are
read with pread as before. A long poll closes the ranges of each attempt it discards.

A topic the principal may not Read is answered TOPIC_AUTHORIZATION_FAILED (KafkaApis).

Fetch sessions (KIP-227, v7+): the request's session metadata picks a context
(cluster/broker/fetch_session.py): sessionless, full (a session is created at response
time if the cache has a slot; a follower's is privileged) or incremental (the session's
partitions are read, and only those with news are answered); a bad session id or epoch
is a top-level error with no partitions, as Kafka answers.
`max.incremental.fetch.session.cache.slots` 0 turns sessions off: every fetch is then
full and answered with session_id 0.
"""

from __future__ import annotations

import time
import uuid

from kio.schema.errors import ErrorCode

from cluster.broker import authz, fetch_session, replicas, session
from cluster.broker.registry import PreEncoded, handler
from cluster.wire.fetch_response import fetch_response_parts
from cluster.broker.partition import wait_for_change
from cluster.log import OffsetOutOfRange
from cluster.log.file_range import FileRange
from cluster.log.read_ranges import read_ranges

_READ_COMMITTED = 1


def _leader_epoch_error(part, current_leader_epoch: int) -> int:
    if current_leader_epoch < 0 or current_leader_epoch == part.leader_epoch:
        return 0
    if current_leader_epoch > part.leader_epoch:
        return ErrorCode.unknown_leader_epoch
    return ErrorCode.fenced_leader_epoch


def _partition_result(broker, part, p, isolation: int, budget: int,
                      min_one: bool, ranges: bool) -> tuple[dict, int]:
    """One partition's response entry and the bytes it consumed of the budget."""
    hw = part.high_watermark
    lso = broker.txns.last_stable_offset(part) if broker.txns is not None else hw
    entry = {
        "partition_index": p.partition,
        "error_code": 0,
        "high_watermark": hw,
        "last_stable_offset": lso,
        "log_start_offset": part.log.log_start_offset,
        "aborted_transactions": None,
        "preferred_read_replica": -1,
        "records": b"",
    }
    code = _leader_epoch_error(part, getattr(p, "current_leader_epoch", -1))
    if part.follower is not None:  # consumers read from the leader only
        code = ErrorCode.not_leader_or_follower
    if code:
        entry["error_code"] = code
        return entry, 0
    limit = lso if isolation == _READ_COMMITTED else hw
    max_bytes = max(0, min(p.partition_max_bytes, budget))
    try:
        data, used = _read(broker, ranges)(part, p.fetch_offset, max_bytes, limit, min_one)
    except OffsetOutOfRange:
        # Kafka answers an out-of-range fetch with unknown (-1) watermarks and log start:
        # the client must ask ListOffsets, it gets no hint here.
        entry.update(error_code=ErrorCode.offset_out_of_range, high_watermark=-1,
                     last_stable_offset=-1, log_start_offset=-1)
        return entry, 0
    if isolation == _READ_COMMITTED and broker.txns is not None:
        entry["aborted_transactions"] = broker.txns.aborted_between(part, p.fetch_offset, limit)
    entry["records"] = data
    return entry, used


def _read(broker, ranges: bool) -> replicas.Read:
    """The log read for this connection: file ranges for sendfile, else bytes."""
    def read(part, offset: int, max_bytes: int, limit: int | None, min_one: bool):
        if not ranges:
            return part.log.read_limited(offset, max_bytes, max_offset=limit, min_one=min_one)
        pieces, used = read_ranges(part.log, offset, max_bytes, max_offset=limit, min_one=min_one,
                                   min_range=broker.config.fetch_sendfile_min_bytes)
        one = len(pieces) == 1 and not isinstance(pieces[0], FileRange)
        return (pieces[0] if one else (pieces or b"")), used
    return read


def _resolve(broker, version: int, t) -> tuple[str | None, dict]:
    if version >= 13:
        meta = broker.catalogue.by_id.get(t.topic_id)
        return (meta.name if meta else None), {"topic_id": t.topic_id, "topic": meta.name if meta else ""}
    return t.topic, {"topic": t.topic, "topic_id": uuid.UUID(int=0)}


def fetch_budget(broker, req) -> int:
    """The response's byte budget: request max_bytes capped by the broker's fetch.max.bytes."""
    return max(0, min(req.max_bytes, broker.config.fetch_max_bytes))


def close_ranges(responses: list[dict]) -> None:
    """Give back the descriptors of a collected reply that will not be sent."""
    for t in responses:
        for p in t["partitions"]:
            records = p.get("records")
            if isinstance(records, list):
                for piece in records:
                    if isinstance(piece, FileRange):
                        piece.close()


def _collect(broker, version: int, req, topics) -> tuple[list[dict], int, bool]:
    budget = fetch_budget(broker, req)
    ranges = session.current().sendfile
    total = 0
    errors = False
    responses = []
    min_one = True  # Kafka's minOneMessage: until a partition has returned data
    replica_id, replica_epoch = replicas.replica_of(version, req)
    for t in topics:
        name, head = _resolve(broker, version, t)
        parts = []
        denied = name is not None and (replicas.cluster_action_denied(broker) if replica_id >= 0 else
                                       not authz.allowed(broker, authz.Op.READ, authz.TOPIC, name))
        for p in t.partitions:
            part = broker.partitions.get((name, p.partition)) if name is not None and not denied else None
            if part is None:
                code = ErrorCode.unknown_topic_id if version >= 13 else ErrorCode.unknown_topic_or_partition
                if denied:
                    code = (ErrorCode.cluster_authorization_failed if replica_id >= 0
                            else ErrorCode.topic_authorization_failed)
                elif broker.led_elsewhere(name, p.partition):
                    code = ErrorCode.not_leader_or_follower
                parts.append(
                    {
                        "partition_index": p.partition,
                        "error_code": code,
                        "high_watermark": -1,
                        "last_stable_offset": -1,
                        "log_start_offset": -1,
                        "aborted_transactions": None,
                        "preferred_read_replica": -1,
                        "records": b"",
                    }
                )
                errors = True
                continue
            if replica_id >= 0:  # a follower: beyond the HW, epochs checked (replicas.py)
                entry, n = replicas.partition_result(broker, part, p, replica_id, replica_epoch,
                                                     max(0, budget - total), min_one,
                                                     _read(broker, ranges))
            else:
                entry, n = _partition_result(
                    broker, part, p, getattr(req, "isolation_level", 0), max(0, budget - total),
                    min_one, ranges)
            if entry["error_code"] or "diverging_epoch" in entry:
                errors = True  # answer now (a diverged follower must truncate first)
            if n:
                min_one = False
            total += n
            parts.append(entry)
        responses.append({**head, "partitions": parts})
    return responses, total, errors


def _wanted_partitions(broker, version: int, topics) -> list:
    out = []
    for t in topics:
        name, _ = _resolve(broker, version, t)
        for p in t.partitions:
            part = broker.partitions.get((name, p.partition)) if name is not None else None
            if part is not None:
                out.append(part)
    return out


@handler(1, 4, 16)
async def fetch(broker, hdr, req) -> PreEncoded:
    version = hdr.api_version
    sessions = broker.fetch_sessions
    ctx = fetch_session.new_context(sessions, version, req, replicas.now_ms(),
                                    privileged=replicas.replica_of(version, req)[0] >= 0)
    if ctx.error:
        return PreEncoded(lambda cid: fetch_response_parts(cid, version, [], error_code=ctx.error))
    topics = ctx.topics
    max_wait_s = req.max_wait.total_seconds()
    deadline = time.monotonic() + max_wait_s
    while True:
        responses, total, errors = _collect(broker, version, req, topics)
        remaining = deadline - time.monotonic()
        if total >= min(req.min_bytes, fetch_budget(broker, req)) or errors or remaining <= 0 or not topics:
            break
        close_ranges(responses)
        await wait_for_change(_wanted_partitions(broker, version, topics), remaining)
    code, session_id, answer = fetch_session.respond(sessions, ctx, responses, replicas.now_ms())
    if code:
        close_ranges(responses)
    # Every version is encoded by hand around the log's buffers: kio would copy each
    # partition's records into its own buffer, and the whole reply once more.
    return PreEncoded(lambda cid: fetch_response_parts(cid, version, answer, error_code=code,
                                                       session_id=session_id))
