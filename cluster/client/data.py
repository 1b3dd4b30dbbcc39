"""Produce, Fetch, ListOffsets and OffsetForLeaderEpoch, moving RecordBatch bytes only.

Records are never decoded here: produce sends whole v2 batches as given, and fetch hands
back the broker's bytes trimmed to whole batches (a broker may cut the last batch at the
size limit). That keeps the mirror's hot path a byte copy.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from kio.schema.errors import ErrorCode
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_delay

from .connection import BrokerConnection
from .core import TP, ClientCore, backoff
from .errors import KafkaConnectionError, KafkaProtocolError, check
from .fetch_session import FetchSessionHandler, SessionRequest, sessionless

log = logging.getLogger(__name__)

PRODUCE, FETCH, LIST_OFFSETS, OFFSET_FOR_LEADER_EPOCH, INIT_PRODUCER_ID = 0, 1, 2, 23, 22
EARLIEST, LATEST, MAX_TIMESTAMP = -2, -1, -3
MiB = 1024 * 1024
_BATCH_PREFIX = struct.Struct(">qi")  # base_offset, batch_length

#: Fetch errors worth re-routing and retrying inside one fetch call; others (offset out of
#: range, unknown topic) go straight back to the caller, who knows what they mean.
_FETCH_REROUTE = frozenset(
    int(c)
    for c in (
        ErrorCode.not_leader_or_follower,
        ErrorCode.leader_not_available,
        ErrorCode.fenced_leader_epoch,
        ErrorCode.unknown_leader_epoch,
        ErrorCode.network_exception,
        ErrorCode.unknown_topic_id,
        ErrorCode.kafka_storage_error,
    )
)


@dataclass(frozen=True)
class ProduceResult:
    base_offset: int
    log_append_time: int  # ms since epoch, -1 unless the topic uses LogAppendTime
    log_start_offset: int


@dataclass(frozen=True)
class FetchPosition:
    offset: int
    max_bytes: int = 1 * MiB
    current_leader_epoch: int = -1


@dataclass(frozen=True)
class FetchResult:
    error_code: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: tuple[tuple[int, int], ...] = ()  # (producer_id, first_offset)
    records: bytes = b""


def whole_batches(data: bytes | None) -> bytes:
    """`data` cut after its last complete batch (by the 12-byte offset/length prefix)."""
    if not data:
        return b""
    pos, end = 0, len(data)
    while end - pos >= _BATCH_PREFIX.size:
        _, length = _BATCH_PREFIX.unpack_from(data, pos)
        if length <= 0 or pos + 12 + length > end:
            break
        pos += 12 + length
    return bytes(data) if pos == end else bytes(data[:pos])


def _ms(value: datetime.datetime | int | None) -> int:
    if value is None:
        return -1
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


class _RetryFetch(Exception):
    """Some partitions of a fetch need another routing attempt."""


class DataMixin(ClientCore):
    # -- produce ---------------------------------------------------------------------------

    async def produce(
        self, topic: str, partition: int, records: bytes, *, acks: int = -1, timeout_ms: int = 30000
    ) -> ProduceResult:
        """Append whole v2 batches to topic-partition on its leader.

        Retries on connection loss and leader changes; note a retry after a lost response
        can duplicate the batch unless it carries an idempotent producer id/sequence.
        With acks=0 nothing is awaited and the result is all -1.
        """
        return await self.retrying(
            lambda: self._produce_once(topic, partition, records, acks, timeout_ms), "Produce"
        )

    async def _produce_once(
        self, topic: str, partition: int, records: bytes, acks: int, timeout_ms: int
    ) -> ProduceResult:
        node = await self.leader(topic, partition)
        conn = await self.connection(node)
        version = conn.version_for(PRODUCE)
        topic_id = self._meta.topic_id(topic)
        if version >= 13 and topic_id is None:
            version = conn.version_for(PRODUCE, 12)
        body = conn.build(
            PRODUCE,
            {
                "acks": acks,
                "timeout": timeout_ms,
                "topic_data": [
                    {"name": topic, "topic_id": topic_id, "partition_data": [{"index": partition, "records": records}]}
                ],
            },
            version,
        )
        if acks == 0:
            await conn.send_no_response(body)
            return ProduceResult(-1, -1, -1)
        resp = await conn.send(body, self.request_timeout_s + timeout_ms / 1000)
        for t in resp.responses:
            for p in t.partition_responses:
                if int(p.index) != partition:
                    continue
                self.check_partition(p.error_code, getattr(p, "error_message", None), context=f"Produce {topic}-{partition}")
                return ProduceResult(int(p.base_offset), _ms(getattr(p, "log_append_time", None)),
                                     int(getattr(p, "log_start_offset", -1)))
        raise KafkaProtocolError(ErrorCode.unknown_server_error, "no result for the partition", context="Produce")

    async def init_producer_id(self, *, producer_id: int = -1, producer_epoch: int = -1) -> tuple[int, int]:
        """(producer id, epoch) of a new idempotent producer (no transactional id), so the
        brokers drop a re-sent batch instead of appending it twice; with the current id and
        epoch (InitProducerId v3+, KIP-360) the same id comes back at the next epoch.

        Any broker answers. Retried while the broker says retriable errors (Apache Kafka
        answers COORDINATOR_LOAD_IN_PROGRESS until its producer-id block has arrived)."""

        async def once() -> tuple[int, int]:
            conn = await self.any_connection()
            version = conn.version_for(INIT_PRODUCER_ID)
            fields: dict = {"transactional_id": None, "transaction_timeout": 60000}
            if version >= 3:
                fields.update(producer_id=producer_id, producer_epoch=producer_epoch)
            resp = await conn.send(conn.build(INIT_PRODUCER_ID, fields, version))
            check(resp.error_code, context="InitProducerId")
            return int(resp.producer_id), int(resp.producer_epoch)

        return await self.retrying(once, "InitProducerId")

    # -- fetch -----------------------------------------------------------------------------

    async def fetch(
        self,
        requests: dict[TP, FetchPosition],
        *,
        max_wait_ms: int = 500,
        min_bytes: int = 1,
        max_bytes: int = 50 * MiB,
        isolation: str = "read_uncommitted",
    ) -> dict[TP, FetchResult]:
        """Fetch raw batches for many partitions: one request per leader, in parallel.

        The first batch may start before the asked offset (brokers return whole batches);
        callers skip records below it. Partition errors come back in FetchResult.error_code. Leader changes and lost
        connections are re-routed and retried until the retry deadline; after it, the last
        error code is returned for the partitions still failing.
        """
        if isolation not in ("read_uncommitted", "read_committed"):
            raise ValueError(f"isolation must be read_uncommitted or read_committed, not {isolation!r}")
        level = 1 if isolation == "read_committed" else 0
        results: dict[TP, FetchResult] = {}
        pending = dict(requests)

        async def attempt() -> None:
            groups: dict[int, dict[TP, FetchPosition]] = {}
            for tp, pos in list(pending.items()):
                try:
                    node = await self.leader(*tp)
                except KafkaProtocolError as exc:
                    results[tp] = FetchResult(exc.error_code)
                    if exc.error_code in _FETCH_REROUTE:
                        continue
                    pending.pop(tp)
                    continue
                groups.setdefault(node, {})[tp] = pos

            async def one(node: int, parts: dict[TP, FetchPosition]) -> None:
                try:
                    conn = await self.connection(node, fetch=True)
                    got = await self._fetch_from(conn, parts, max_wait_ms, min_bytes, max_bytes, level)
                except KafkaConnectionError as exc:
                    log.info("fetch from broker %d failed: %s", node, exc)
                    got = {tp: FetchResult(ErrorCode.network_exception) for tp in parts}
                for tp, res in got.items():
                    results[tp] = res
                    if res.error_code not in _FETCH_REROUTE:
                        pending.pop(tp, None)

            await asyncio.gather(*(one(n, ps) for n, ps in groups.items()))
            if pending:
                self.invalidate()
                raise _RetryFetch()

        retryer = AsyncRetrying(
            stop=stop_after_delay(self.retry_deadline_s),
            wait=backoff(),
            retry=retry_if_exception_type(_RetryFetch),
        )
        try:
            async for a in retryer:
                with a:
                    await attempt()
        except RetryError:
            pass
        return {tp: results.get(tp, FetchResult(ErrorCode.network_exception)) for tp in requests}

    async def _fetch_from(
        self,
        conn: BrokerConnection,
        parts: dict[TP, FetchPosition],
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
        level: int,
    ) -> dict[TP, FetchResult]:
        """One broker's share of a fetch, through its fetch session (cluster/client/fetch_session.py)."""
        version = conn.version_for(FETCH)
        ids = {t: self._meta.topic_id(t) for t, _ in parts}
        if version >= 13 and any(i is None for i in ids.values()):
            version = conn.version_for(FETCH, 12)
        handler = self._fetch_sessions.setdefault(conn.node_id, FetchSessionHandler())
        if handler.busy or not self.fetch_sessions:
            return await self._fetch_request(conn, sessionless(parts, ids, version), None,
                                             max_wait_ms, min_bytes, max_bytes, level)
        handler.busy = True
        try:
            for _ in range(2):  # an incremental request the broker refuses is asked again in full
                out = await self._fetch_request(conn, handler.build(parts, ids, version), handler,
                                                max_wait_ms, min_bytes, max_bytes, level)
                if out is not None:
                    return out
            return {tp: FetchResult(ErrorCode.unknown_server_error) for tp in parts}
        except BaseException:
            handler.reset()  # sent or not, answered or not: the broker's epoch is unknown
            raise
        finally:
            handler.busy = False

    async def _fetch_request(self, conn: BrokerConnection, sreq: SessionRequest,
                             handler: FetchSessionHandler | None, max_wait_ms: int, min_bytes: int,
                             max_bytes: int, level: int) -> dict[TP, FetchResult] | None:
        """Send one Fetch; None when the broker refused the session (the handler is reset)."""
        ids = sreq.ids
        by_topic: dict[str, list[dict]] = {}
        for (t, p), pos in sreq.send.items():
            by_topic.setdefault(t, []).append(
                {"partition": p, "fetch_offset": pos.offset, "partition_max_bytes": pos.max_bytes,
                 "current_leader_epoch": pos.current_leader_epoch, "log_start_offset": -1}
            )
        forgotten: dict[str, list[int]] = {}
        for t, p in sreq.forget:
            forgotten.setdefault(t, []).append(p)
        body = conn.build(
            FETCH,
            {
                "replica_id": -1,
                "max_wait": max_wait_ms,
                "min_bytes": min_bytes,
                "max_bytes": max_bytes,
                "isolation_level": level,
                "session_id": sreq.session_id,
                "session_epoch": sreq.epoch,
                "topics": [{"topic": t, "topic_id": ids[t], "partitions": ps} for t, ps in by_topic.items()],
                "forgotten_topics_data": [{"topic": t, "topic_id": handler.ids.get(t) if handler else None,
                                           "partitions": ps} for t, ps in forgotten.items()],
            },
            sreq.version,
        )
        resp = await conn.send(body, self.request_timeout_s + max_wait_ms / 1000)
        top = int(getattr(resp, "error_code", 0))
        if handler is not None and not handler.answered(sreq, top, int(getattr(resp, "session_id", 0))):
            log.info("fetch session %d on broker %d refused (error %d): asking in full",
                     sreq.session_id, conn.node_id, top)
            return None
        if top != 0:
            return {tp: FetchResult(top) for tp in sreq.wanted}
        out = self._fetch_results(resp, sreq)
        if handler is not None:
            for tp in sreq.wanted:
                if tp in out:
                    handler.last[tp] = out[tp]
                elif not sreq.full and tp in handler.last:  # omitted: nothing new since the last answer
                    last = handler.last[tp]
                    out[tp] = FetchResult(0, last.high_watermark, last.last_stable_offset,
                                          last.log_start_offset)
        for tp in sreq.wanted:
            out.setdefault(tp, FetchResult(ErrorCode.unknown_server_error))
        return out

    @staticmethod
    def _fetch_results(resp: Any, sreq: SessionRequest) -> dict[TP, FetchResult]:
        names_by_id: dict[uuid.UUID, str] = {i: t for t, i in sreq.ids.items() if i is not None}
        out: dict[TP, FetchResult] = {}
        for t in resp.responses:
            name = getattr(t, "topic", None) or names_by_id.get(getattr(t, "topic_id", None))
            for p in t.partitions:
                tp = (name, int(p.partition_index))
                if tp not in sreq.wanted:
                    continue
                aborted = tuple(
                    (int(a.producer_id), int(a.first_offset)) for a in (getattr(p, "aborted_transactions", None) or ())
                )
                out[tp] = FetchResult(
                    error_code=int(p.error_code),
                    high_watermark=int(p.high_watermark),
                    last_stable_offset=int(getattr(p, "last_stable_offset", -1)),
                    log_start_offset=int(getattr(p, "log_start_offset", -1)),
                    aborted_transactions=aborted,
                    records=whole_batches(p.records),
                )
        return out

    # -- offsets ---------------------------------------------------------------------------

    async def list_offsets(
        self,
        topic: str,
        partitions: list[int] | None,
        timestamp: int,
        *,
        isolation: str = "read_uncommitted",
    ) -> dict[int, tuple[int, int]]:
        """{partition: (offset, timestamp)} for EARLIEST (-2), LATEST (-1), MAX_TIMESTAMP (-3)
        or the first offset at/after a timestamp in ms (offset -1 when there is none).
        `partitions=None` means all partitions of the topic."""
        if partitions is None:
            meta = await self.metadata([topic])
            if topic not in meta.topics:
                check(meta.topic_errors.get(topic, ErrorCode.unknown_topic_or_partition), context=topic)
            partitions = sorted(meta.topics[topic].partitions)
        found = await self.offsets_at([(topic, p) for p in partitions], timestamp, isolation=isolation)
        return {p: found[(t, p)] for t, p in found}

    async def offsets_at(
        self, tps: Iterable[TP], timestamp: int, *, isolation: str = "read_uncommitted"
    ) -> dict[TP, tuple[int, int]]:
        """{(topic, partition): (offset, timestamp)} like `list_offsets`, for partitions of
        any number of topics in one ListOffsets per leader (failover and status read
        thousands at once; a request per topic would be thousands of round trips)."""
        wanted = sorted(set(tps))
        if not wanted:
            return {}
        level = 1 if isolation == "read_committed" else 0

        async def per_broker(conn: BrokerConnection, parts: list[TP]) -> dict[TP, tuple[int, int]]:
            by_topic: dict[str, list[int]] = {}
            for t, p in parts:
                by_topic.setdefault(t, []).append(p)
            body = conn.build(
                LIST_OFFSETS,
                {
                    "replica_id": -1,
                    "isolation_level": level,
                    "timeout": int(self.request_timeout_s * 1000),
                    "topics": [{"name": t, "partitions": [
                        {"partition_index": p, "current_leader_epoch": -1, "timestamp": timestamp}
                        for p in ps]} for t, ps in by_topic.items()],
                },
            )
            resp = await conn.send(body)
            out = {}
            for t in resp.topics:
                for p in t.partitions:
                    self.check_partition(p.error_code, context=f"ListOffsets {t.name}-{p.partition_index}")
                    out[(t.name, int(p.partition_index))] = (int(p.offset), int(p.timestamp))
            return out

        return await self.retrying(lambda: self.by_leader(wanted, per_broker), "ListOffsets")

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        """Log end offset (high watermark) of each partition, any topics, one request per leader."""
        return {tp: off for tp, (off, _) in (await self.offsets_at(tps, LATEST)).items()}

    async def start_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        """Log start offset of each partition, any topics, one request per leader."""
        return {tp: off for tp, (off, _) in (await self.offsets_at(tps, EARLIEST)).items()}

    async def offset_ranges(self, tps: Iterable[TP]) -> dict[TP, tuple[int, int]]:
        """(log start, log end) of each partition: what a partition holds, in two
        ListOffsets per leader sent together."""
        wanted = sorted(set(tps))
        starts, ends = await asyncio.gather(self.start_offsets(wanted), self.end_offsets(wanted))
        return {tp: (starts[tp], ends[tp]) for tp in wanted}

    async def offset_for_leader_epoch(
        self, topic: str, epochs: dict[int, int], *, current_leader_epoch: int = -1
    ) -> dict[int, tuple[int, int]]:
        """{partition: (leader_epoch, end_offset)}: the end offset of the largest epoch
        <= the asked epoch on the leader, as followers use it to find divergence."""

        async def per_broker(conn: BrokerConnection, tps: list[TP]) -> dict[int, tuple[int, int]]:
            body = conn.build(
                OFFSET_FOR_LEADER_EPOCH,
                {
                    "replica_id": -1,
                    "topics": [{"topic": topic, "partitions": [
                        {"partition": p, "current_leader_epoch": current_leader_epoch, "leader_epoch": epochs[p]}
                        for _, p in tps
                    ]}],
                },
            )
            resp = await conn.send(body)
            out = {}
            for t in resp.topics:
                for p in t.partitions:
                    self.check_partition(p.error_code, context=f"OffsetForLeaderEpoch {topic}-{p.partition}")
                    out[int(p.partition)] = (int(getattr(p, "leader_epoch", -1)), int(p.end_offset))
            return out

        return await self.retrying(
            lambda: self.by_leader([(topic, p) for p in epochs], per_broker), "OffsetForLeaderEpoch"
        )
