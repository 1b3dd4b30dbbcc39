"""A follower broker's fetch loop towards one leader broker (Kafka's ReplicaFetcherThread).

One `ReplicaFetcher` per leader this broker follows partitions from: one connection, one
Fetch at a time carrying every followed partition that is ready, each answered partition
applied by its pure `FollowerPartition` (cluster/replication/follower.py), which appends
the leader's batches as they are, truncates on DivergingEpoch and learns the high
watermark. What the fetcher adds is I/O: the connection (re-dialled after a failure), the
backoff after an error, ListOffsets when a partition is out of range, and waking the local
partition's waiters after an append.

Requests are Fetch v12 (topics by name, ReplicaId in the body): topic ids are per
broker's catalogue until the metadata store names them cluster-wide, and v12 already has
LastFetchedEpoch and DivergingEpoch. `FollowerPartition.replica_state()` is ready for v15+.
Which partitions to follow, from whom and in which leader epoch comes from the
controller's records: the caller calls `follow` with each new record and `unfollow` when
this broker stops following a partition (it became leader, or the replica moved).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from cluster.client.connection import BrokerConnection
from cluster.client.errors import KafkaError
from cluster.replication.follower import FetchState, FollowerPartition
from cluster.replication.state import PartitionAssignment

logger = logging.getLogger("cluster.broker.replica_fetcher")

FETCH_VERSION = 12
LIST_OFFSETS_VERSION = 4


@dataclass(frozen=True)
class FetcherConfig:
    """Kafka's replica.fetch.* settings, with its defaults where they are sensible here."""

    max_wait_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 10 << 20
    partition_max_bytes: int = 1 << 20
    backoff_s: float = 1.0


class _PartitionLog:
    """The partition's log as of each call: the broker's LogPool may close and reopen it
    between fetches, so the follower must never hold a PartitionLog object itself."""

    def __init__(self, part: Any) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        return getattr(self._part.log, name)


Connect = Callable[[str, int], Awaitable[BrokerConnection]]


class ReplicaFetcher:
    """Fetches, for broker `broker_id`, the partitions it follows from one leader."""

    def __init__(self, broker: Any, leader_id: int, host: str, port: int,
                 config: FetcherConfig = FetcherConfig(), connect: Connect | None = None) -> None:
        self.broker = broker
        self.leader_id = leader_id
        self.address = (host, port)
        self.config = config
        self._connect = connect or (lambda h, p: BrokerConnection.open(h, p, client_id=f"replica-{broker.node_id}"))
        self.followed: dict[tuple[str, int], FollowerPartition] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- what to follow -----------------------------------------------------------------
    def follow(self, part: Any, assignment: PartitionAssignment, broker_epoch: int = -1,
               high_watermark: int | None = None) -> FollowerPartition:
        """Follow `part` from this fetcher's leader in `assignment.leader_epoch`, starting
        from `high_watermark` (default: what this broker knew, as leader or follower, else
        0: a log's end is not known to be committed)."""
        if assignment.leader != self.leader_id:
            raise ValueError(f"{assignment} is not led by broker {self.leader_id}")
        key = (part.topic, part.index)
        fp = self.followed.get(key)
        if fp is None:
            if high_watermark is None:
                high_watermark = known_high_watermark(part)
            fp = FollowerPartition(part.topic, part.index, self.broker.node_id, broker_epoch, assignment,
                                   _PartitionLog(part), high_watermark=high_watermark)
            self.followed[key] = fp
        else:
            fp.become_follower(assignment)
        part.replica = None
        part.follower = fp
        part.leader_epoch = assignment.leader_epoch
        self._changed.set()
        return fp

    def unfollow(self, topic: str, index: int) -> None:
        self.followed.pop((topic, index), None)
        part = self.broker.partitions.get((topic, index))
        if part is not None and part.follower is not None:
            part.follower = None

    # -- the loop -------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Cancel the loop and wait for it. Cancelled again until it ends: a cancellation
        that lands while BrokerConnection.close awaits its reader is swallowed there."""
        task, self._task = self._task, None
        self._stopping = True
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    async def run(self) -> None:
        conn: BrokerConnection | None = None
        try:
            while not self._stopping:
                if not any(fp.ready() for fp in self.followed.values()):
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect(*self.address)
                    if await self.fetch_once(conn):
                        await asyncio.sleep(self.config.backoff_s)
                except (KafkaError, OSError) as exc:
                    logger.warning("fetch from broker %d at %s:%d failed: %s", self.leader_id,
                                   *self.address, exc)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(self.config.backoff_s)
        finally:
            if conn is not None:
                await conn.close()

    async def fetch_once(self, conn: BrokerConnection) -> bool:
        """One Fetch for every ready partition; True if some partition wants a backoff."""
        ready = [fp for fp in self.followed.values() if fp.ready()]
        topics: dict[str, list[dict]] = {}
        for fp in ready:
            fp.state = FetchState.FETCHING
            topics.setdefault(fp.topic, []).append(fp.fetch_request_fields(self.config.partition_max_bytes))
        body = {"replica_id": self.broker.node_id, "max_wait": self.config.max_wait_ms,
                "min_bytes": self.config.min_bytes, "max_bytes": self.config.max_bytes,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [], "rack_id": ""}
        resp = await conn.send(conn.build(1, body, FETCH_VERSION),
                               timeout_s=self.config.max_wait_ms / 1000 + conn.request_timeout_s)
        backoff = False
        for t in resp.responses:
            for p in t.partitions:
                fp = self.followed.get((t.topic, p.partition_index))
                if fp is None:
                    continue
                state = await self._apply(conn, fp, p)
                backoff = backoff or state is FetchState.BACKOFF
        return backoff

    async def _apply(self, conn: BrokerConnection, fp: FollowerPartition, p: Any) -> FetchState:
        div = p.diverging_epoch
        applied = fp.on_fetch_response(
            error_code=p.error_code, high_watermark=p.high_watermark,
            log_start_offset=p.log_start_offset, records=p.records,
            diverging_epoch=(div.epoch, div.end_offset) if div is not None and div.end_offset >= 0 else None,
            now_ms=int(time.time() * 1000))  # the log's clock (segment.ms), not the lag clock
        if applied.state is FetchState.NEEDS_OFFSETS:
            try:
                start, end = await self._leader_offsets(conn, fp)
            except KafkaError as exc:  # fetch again after the backoff, and ask again
                logger.info("%s-%d: %s", fp.topic, fp.partition, exc)
                fp.state = FetchState.BACKOFF
                return fp.state
            applied = fp.on_leader_offsets(start, end)
        if applied.appended_batches or applied.truncated_to is not None:
            part = self.broker.partitions.get((fp.topic, fp.partition))
            if part is not None:
                part.notify()
        if applied.state is FetchState.FAILED:
            logger.error("%s-%d: stopped following broker %d", fp.topic, fp.partition, self.leader_id)
        return applied.state

    async def _leader_offsets(self, conn: BrokerConnection, fp: FollowerPartition) -> tuple[int, int]:
        async def one(timestamp: int) -> int:
            body = {"replica_id": self.broker.node_id, "isolation_level": 0, "topics": [
                {"name": fp.topic, "partitions": [{"partition_index": fp.partition,
                                                   "current_leader_epoch": fp.leader_epoch,
                                                   "timestamp": timestamp}]}]}
            resp = await conn.send(conn.build(2, body, LIST_OFFSETS_VERSION))
            answer = resp.topics[0].partitions[0]
            if answer.error_code:
                raise KafkaError(f"ListOffsets for {fp.topic}-{fp.partition} from broker "
                                 f"{self.leader_id}: error {answer.error_code}")
            return answer.offset
        return await one(-2), await one(-1)


def known_high_watermark(part: Any) -> int:
    """The high watermark this broker knows for `part` from replication state, else 0."""
    if part.replica is not None:
        return part.replica.high_watermark
    if part.follower is not None:
        return part.follower.high_watermark
    return 0
