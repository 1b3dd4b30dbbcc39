"""The asyncio driver of the transaction coordinator: journal, markers, offsets, timers.

It owns the pure `TxnMachine` and carries out its effects in order, on the broker's event
loop and without awaiting in between, so no locks are needed:
- `Persist` -> one framed record in `<data_dir>/__transactions/journal` (the group store's
  journal class: O_APPEND writes that survive kill -9, torn tails truncated on replay);
- `WriteMarkers` -> a COMMIT/ABORT control batch appended to each partition log through
  the normal append path, then fed to the partition-side index (`producer_state`);
- `CommitOffsets` -> the group coordinator's committed offsets (journaled there);
- `Complete` -> the machine's `complete()`, whose `Persist` follows.
On start the journal is replayed and transactions caught in Prepare* are finished; Ongoing
ones keep their persisted start time and are aborted when their timeout passes.

Orphans: a mirrored partition carries the source cluster's open transactions, whose
markers arrive only through the mirror. Once the topic is no longer a mirror (failover
promoted it), nobody would ever end them and the last stable offset would stay stuck, so
the tick aborts every open transaction in a non-mirror partition that no transaction of
this coordinator owns (`abort_orphans`, also callable directly by failover code).

It is also the broker's `txns` hook object: Fetch asks it for the last stable offset and
the aborted transactions, InitProducerId with a transactional id is answered here, and
Produce asks it (through `producer_state.txn_guard`) whether a transactional batch belongs
to an ongoing transaction of its producer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from kio.schema.errors import ErrorCode

from cluster.periodic import start_ticker, stop_ticker
from cluster.groups.store import GroupStore
from cluster.txn.machine import TxnMachine
from cluster.txn.model import (
    CommitOffsets,
    Complete,
    Effect,
    PendingOffset,
    Persist,
    TxnMetadata,
    WriteMarkers,
)
from cluster.wire import record_batch as rb

log = logging.getLogger(__name__)
E = ErrorCode
COORDINATOR_EPOCH = 0  # one coordinator per cluster, never moved: epoch stays 0


def wall_ms() -> int:
    return int(time.time() * 1000)


class TransactionCoordinator:
    def __init__(
        self,
        broker: Any,
        data_dir: Path,
        *,
        fsync: str = "never",
        tick_interval_s: float = 0.5,
        clock: Callable[[], int] = wall_ms,
        max_timeout_ms: int | None = None,
    ) -> None:
        self.broker = broker
        self.store = GroupStore(Path(data_dir), fsync=fsync)
        self.clock = clock
        self.tick_interval_s = tick_interval_s
        kwargs = {} if max_timeout_ms is None else {"max_timeout_ms": max_timeout_ms}
        self.machine = TxnMachine(broker.producer_state.ids.allocate, **kwargs)
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.machine.restore(self.store.open())
        self.broker.producer_state.txn_guard = self._guard
        self._apply(self.machine.recover(self.clock()))
        log.info("transaction coordinator: %d transactional ids restored", len(self.machine.txns))
        self.tick()  # transactions that timed out while the broker was down
        self._ticker = start_ticker(self.tick, self.tick_interval_s, "txn-tick", log)

    async def close(self) -> None:
        await stop_ticker(self._ticker)
        self._ticker = None
        if self.broker.producer_state is not None:
            self.broker.producer_state.txn_guard = None
        self.store.close()

    def tick(self) -> None:
        self._apply(self.machine.expire(self.clock()))
        self.abort_orphans()
        if self.store.fsync == "interval":
            self.store.sync()

    def abort_orphans(self) -> int:
        """ABORT open transactions in non-mirror partitions that no local transaction owns."""
        from cluster.wire.dcmirror_api import MIRROR_SOURCE

        aborted = 0
        catalogue = self.broker.catalogue
        for part, state in self.broker.producer_state.loaded():
            if not state.txns.ongoing:
                continue
            meta = catalogue.topics.get(part.topic) if catalogue is not None else None
            if meta is None or meta.configs.get(MIRROR_SOURCE):
                continue
            for pid in list(state.txns.ongoing):
                if self.machine.owns(pid, (part.topic, part.index)):
                    continue
                entry = state.producers.get(pid)
                epoch = entry.epoch if entry is not None else 0
                log.warning("aborting orphaned transaction of producer %d in %s-%d (first offset %d)",
                            pid, part.topic, part.index, state.txns.ongoing[pid])
                self._write_markers(WriteMarkers(pid, epoch, False, ((part.topic, part.index),)))
                aborted += 1
        return aborted

    # ------------------------------------------------------------------ effects
    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Persist):
                self.store.append([(effect.transactional_id.encode(), effect.value)])
            elif isinstance(effect, WriteMarkers):
                self._write_markers(effect)
            elif isinstance(effect, CommitOffsets):
                self._commit_offsets(effect)
            elif isinstance(effect, Complete):
                self._apply(self.machine.complete(effect.transactional_id, self.clock()))

    def _write_markers(self, m: WriteMarkers) -> None:
        now = self.clock()
        for topic, index in m.partitions:
            part = self.broker.partitions.get((topic, index))
            if part is None:
                log.warning("no partition %s-%d for a %s marker of producer %d",
                            topic, index, "COMMIT" if m.commit else "ABORT", m.producer_id)
                continue
            self.broker.producer_state.append_marker(
                part, m.producer_id, m.producer_epoch, m.commit, COORDINATOR_EPOCH, now,
                check_epoch=False)

    def _commit_offsets(self, c: CommitOffsets) -> None:
        groups = self.broker.groups
        if groups is None:
            log.warning("no group coordinator: dropping transactional offsets of %s", c.group_id)
            return
        rows = [(t, p, o.offset, o.leader_epoch, o.metadata) for t, p, o in c.offsets]
        groups.commit_transactional_offsets(c.group_id, rows)

    # ------------------------------------------------------------------ hooks for Fetch / Produce
    def last_stable_offset(self, part: Any) -> int:
        return self.broker.producer_state.last_stable_offset(part)

    def aborted_between(self, part: Any, start: int, end: int) -> list[dict]:
        return [
            {"producer_id": a.producer_id, "first_offset": a.first_offset}
            for a in self.broker.producer_state.aborted_between(part, start, end)
        ]

    def has_pending_offsets(self, group_id: str, topic: str, partition: int) -> bool:
        """For OffsetFetch with require_stable (KIP-447): answer UNSTABLE_OFFSET_COMMIT
        while a transaction still holds an offset for this group and partition."""
        return (topic, partition) in self.machine.pending_offset_partitions(group_id)

    def _guard(self, part: Any, h: rb.BatchHeader) -> tuple[int, str] | None:
        return self.machine.check_produce(h.producer_id, h.producer_epoch, (part.topic, part.index))

    # ------------------------------------------------------------------ APIs
    async def init_producer_id(self, req: Any, version: int = 3) -> dict:
        timeout = req.transaction_timeout
        timeout_ms = int(timeout.total_seconds() * 1000) if hasattr(timeout, "total_seconds") else int(timeout)
        result, effects = self.machine.init_producer_id(
            req.transactional_id, timeout_ms,
            getattr(req, "producer_id", -1), getattr(req, "producer_epoch", -1),
            self.clock(), version,
        )
        self._apply(effects)
        return {"throttle_time": 0, "error_code": result.error,
                "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}

    def add_partitions(self, tid: str, pid: int, epoch: int, partitions: list[tuple[str, int]], version: int) -> ErrorCode:
        error, effects = self.machine.add_partitions(tid, pid, epoch, partitions, self.clock(), version)
        self._apply(effects)
        return error

    def add_offsets(self, tid: str, pid: int, epoch: int, group_id: str, version: int) -> ErrorCode:
        error, effects = self.machine.add_offsets(tid, pid, epoch, group_id, self.clock(), version)
        self._apply(effects)
        return error

    def txn_offset_commit(
        self, tid: str, pid: int, epoch: int, group_id: str,
        offsets: list[tuple[str, int, PendingOffset]], version: int,
        generation_id: int = -1, member_id: str = "",
    ) -> ErrorCode:
        error = self._group_member_error(group_id, generation_id, member_id)
        if error is not None:
            return error
        error, effects = self.machine.txn_offset_commit(tid, pid, epoch, group_id, offsets, self.clock(), version)
        self._apply(effects)
        return error

    def _group_member_error(self, group_id: str, generation_id: int, member_id: str) -> ErrorCode | None:
        """KIP-447 (v3+): a consumer's generation must still be current, as for OffsetCommit."""
        if generation_id < 0 or self.broker.groups is None:
            return None
        group = getattr(self.broker.groups, "groups", {}).get(group_id)
        if group is None:
            return None
        if hasattr(group, "commit_error"):  # a KIP-848 consumer group: the field is the member epoch
            return group.commit_error(member_id, generation_id)
        if member_id not in group.members:
            return E.unknown_member_id
        if generation_id != group.generation_id:
            return E.illegal_generation
        return None

    def end_txn(self, tid: str, pid: int, epoch: int, commit: bool, version: int) -> ErrorCode:
        error, effects = self.machine.end_txn(tid, pid, epoch, commit, self.clock(), version)
        self._apply(effects)
        return error

    def describe(self, tid: str) -> TxnMetadata | None:
        return self.machine.describe(tid)
