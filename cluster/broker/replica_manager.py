"""A broker's replicas: the controller's records turned into leader and follower roles.

Kafka's ReplicaManager in small. The control plane (cluster/metadata/) hands every new
partition record to `apply`; the manager makes this broker the partition's leader
(`Partition.lead`), a follower fetching from the leader (one `ReplicaFetcher` per leader
broker), or neither. For partitions it leads it checks for lagging followers every
`check_interval_s` (Kafka: half of replica.lag.time.max.ms) and sends each ISR change the
leader state proposes — shrinks from that check, expansions from follower fetches — to
the controller through `alter_partition`, one in flight per partition; the controller's
answer (the new record, or None when it refused) is applied at once, so the leader never
waits for the record to come around through the metadata watch.

The high watermark a new leader starts from is what it knew as a follower (0 after a
restart: nothing on disk says more yet); until it reaches the start of its epoch the leader
state hides it (`LeaderPartition.visible_high_watermark`), so no consumer is ever shown
records a later leader could lack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from cluster.broker import replicas
from cluster.broker.replica_fetcher import FetcherConfig, ReplicaFetcher, known_high_watermark
from cluster.replication.leader import ReplicationConfig
from cluster.replication.state import NO_LEADER, IsrProposal, PartitionAssignment

logger = logging.getLogger("cluster.broker.replica_manager")

# (proposal, this broker's epoch) -> the controller's new record, or None if refused.
AlterPartition = Callable[[IsrProposal, int], Awaitable["PartitionAssignment | None"]]
AddressOf = Callable[[int], "tuple[str, int] | None"]


class ReplicaManager:
    """Leader/follower roles of this broker's partitions, from the controller's records."""

    def __init__(self, broker: Any, broker_epoch: int, alter_partition: AlterPartition,
                 address_of: AddressOf, *, replica_lag_time_max_ms: int = 30_000,
                 check_interval_s: float | None = None,
                 fetcher_config: FetcherConfig = FetcherConfig()) -> None:
        self.broker = broker
        self.broker_epoch = broker_epoch
        self._alter = alter_partition
        self._address_of = address_of
        self.lag_ms = replica_lag_time_max_ms
        self.check_interval_s = (replica_lag_time_max_ms / 2000 if check_interval_s is None
                                 else check_interval_s)
        self.fetcher_config = fetcher_config
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._in_flight: dict[tuple[str, int], IsrProposal] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        broker.replica_manager = self

    def config_for(self, topic: str) -> ReplicationConfig:
        meta = self.broker.catalogue.topics.get(topic)
        min_isr = int(meta.configs.get("min.insync.replicas", "1")) if meta is not None else 1
        return ReplicationConfig(self.lag_ms, min_isr)

    # -- records from the controller ----------------------------------------------------
    def apply(self, topic: str, index: int, record: PartitionAssignment) -> None:
        """Take on the role `record` gives this broker for topic-index."""
        part = self.broker.partitions.get((topic, index))
        if part is None:
            return
        me = self.broker.node_id
        lp = part.replica
        hw = known_high_watermark(part)
        if lp is not None and record.leader_epoch < lp.leader_epoch:
            return  # an older record arriving late
        if record.leader == me:
            self._unfollow(topic, index)
            if lp is not None and lp.leader_epoch == record.leader_epoch:
                if lp.on_isr_committed(record, replicas.now_ms()):
                    part.notify()
            else:
                part.lead(me, record, self.config_for(topic), high_watermark=hw, now_ms=replicas.now_ms())
            self._in_flight.pop((topic, index), None)
            return
        part.replica = None
        part.notify()  # waiting acks=all produces learn they lost the leadership
        self._unfollow(topic, index, keep=record.leader)
        if record.leader == NO_LEADER or me not in record.replicas:
            return
        self._fetcher(record.leader).follow(part, record, self.broker_epoch, high_watermark=hw)

    def _unfollow(self, topic: str, index: int, keep: int | None = None) -> None:
        for leader_id, fetcher in self.fetchers.items():
            if leader_id != keep and (topic, index) in fetcher.followed:
                fetcher.unfollow(topic, index)

    def _fetcher(self, leader_id: int) -> ReplicaFetcher:
        fetcher = self.fetchers.get(leader_id)
        address = self._address_of(leader_id)
        if fetcher is not None and address is not None and fetcher.address != address:
            fetcher.address = address  # the leader restarted elsewhere: dial there next time
        if fetcher is None:
            if address is None:
                raise LookupError(f"no address for broker {leader_id}")
            fetcher = ReplicaFetcher(self.broker, leader_id, *address, self.fetcher_config)
            self.fetchers[leader_id] = fetcher
            if self._task is not None:
                fetcher.start()
        return fetcher

    # -- ISR changes ----------------------------------------------------------------------
    def propose_soon(self) -> None:
        """A follower fetch left an ISR expansion pending: send it without waiting a tick."""
        self._wake.set()

    async def check_once(self) -> None:
        """Shrink lagging ISRs and send every pending proposal not yet sent."""
        now = replicas.now_ms()
        for key, part in list(self.broker.partitions.items()):
            lp = part.replica
            if lp is None:
                continue
            if lp.pending is None:
                lp.maybe_shrink_isr(now)
            if lp.pending is not None and self._in_flight.get(key) is not lp.pending.proposal:
                self._in_flight[key] = lp.pending.proposal
                await self._send(part, lp.pending.proposal)

    async def _send(self, part: Any, proposal: IsrProposal) -> None:
        try:
            record = await self._alter(proposal, self.broker_epoch)
        except Exception as exc:  # the controller is unreachable: try again next tick
            logger.warning("%s-%d: AlterPartition failed: %s", part.topic, part.index, exc)
            record = None
        lp = part.replica
        if lp is None or lp.pending is None or lp.pending.proposal is not proposal:
            return  # the role changed meanwhile
        if record is None:
            lp.on_isr_rejected()
            self._in_flight.pop((part.topic, part.index), None)
        else:
            self.apply(part.topic, part.index, record)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        for fetcher in self.fetchers.values():
            fetcher.start()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.check_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.check_once()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for fetcher in self.fetchers.values():
            await fetcher.stop()
