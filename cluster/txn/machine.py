"""The transaction coordinator as a pure state machine: requests in, (result, effects) out.

No I/O, no clock, no asyncio: the driver (`coordinator.py`) passes `now_ms`, supplies
producer ids, and carries out the returned effects in order (journal writes, markers,
group offset commits, then `complete()`). Rules follow Kafka's TransactionCoordinator:

- InitProducerId: a new transactional id gets a fresh producer id at epoch 0; a known one
  gets its epoch bumped (a new producer id once the epoch is exhausted), which fences any
  older instance. With an expected (producer id, epoch) (KIP-360, v3+) the request must
  match the current or previous epoch or it is fenced; matching the previous epoch is a
  retry and returns the current one. An Ongoing transaction is first aborted with a fenced
  epoch and the client told CONCURRENT_TRANSACTIONS, so its retry bumps the epoch again.
- AddPartitionsToTxn / AddOffsetsToTxn start or extend the Ongoing transaction.
- TxnOffsetCommit keeps offsets pending in the transaction until EndTxn(commit).
- EndTxn: Ongoing -> Prepare* (durable) -> markers -> Complete* (durable). A retried EndTxn
  after completion with the same outcome succeeds; the other outcome is INVALID_TXN_STATE.
- A transaction open longer than its timeout is aborted with a bumped epoch (the old
  producer is fenced, as in Kafka); a transactional id idle (no transaction) for longer
  than transactional.id.expiration.ms (7 days) is forgotten.
Fencing answers PRODUCER_FENCED from the request versions that know it (KIP-588) and
INVALID_PRODUCER_EPOCH before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from kio.schema.errors import ErrorCode

from cluster.txn.model import (
    MAX_EPOCH,
    NO_EPOCH,
    NO_PRODUCER_ID,
    CommitOffsets,
    Complete,
    Effect,
    PendingOffset,
    Persist,
    TopicPartition,
    TxnMetadata,
    TxnState,
    WriteMarkers,
)

log = logging.getLogger(__name__)
E = ErrorCode
S = TxnState

DEFAULT_MAX_TIMEOUT_MS = 900_000  # transaction.max.timeout.ms
DEFAULT_ID_EXPIRATION_MS = 7 * 24 * 3600 * 1000  # transactional.id.expiration.ms
# First request version whose clients understand PRODUCER_FENCED (KIP-588).
FENCED_SINCE = {"init": 4, "add_partitions": 2, "add_offsets": 2, "end": 2, "offset_commit": 3}


def fenced(api: str, version: int) -> ErrorCode:
    return E.producer_fenced if version >= FENCED_SINCE[api] else E.invalid_producer_epoch


@dataclass(frozen=True)
class InitResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_EPOCH


class TxnMachine:
    """Every transactional id this coordinator owns."""

    def __init__(
        self,
        allocate_pid: Callable[[], int],
        max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS,
        id_expiration_ms: int = DEFAULT_ID_EXPIRATION_MS,
    ) -> None:
        self.allocate_pid = allocate_pid
        self.max_timeout_ms = max_timeout_ms
        self.id_expiration_ms = id_expiration_ms
        self.txns: dict[str, TxnMetadata] = {}
        self.by_pid: dict[int, str] = {}

    # ------------------------------------------------------------------ restore
    def restore(self, live: dict[bytes, bytes]) -> None:
        for key, raw in live.items():
            tid = key.decode()
            md = TxnMetadata.decode(tid, raw)
            self.txns[tid] = md
            self.by_pid[md.producer_id] = tid

    def recover(self, now_ms: int) -> list[Effect]:
        """Finish transactions a crash left in Prepare*; Ongoing ones keep their timeout."""
        effects: list[Effect] = []
        for md in self.txns.values():
            if md.state.prepared:
                log.info("recovering %s transaction of %s", md.state.value, md.transactional_id)
                effects += self._finish(md)
        return effects

    # ------------------------------------------------------------------ helpers
    def _persist(self, md: TxnMetadata, now_ms: int) -> Persist:
        md.last_update_ms = now_ms
        return Persist(md.transactional_id, md.encode())

    def _finish(self, md: TxnMetadata) -> list[Effect]:
        commit = md.state == S.PREPARE_COMMIT
        effects: list[Effect] = []
        if md.partitions:
            effects.append(WriteMarkers(md.producer_id, md.producer_epoch, commit, tuple(sorted(md.partitions))))
        if commit:
            for group, offs in sorted(md.pending_offsets.items()):
                effects.append(CommitOffsets(group, tuple((t, p, o) for (t, p), o in sorted(offs.items()))))
        effects.append(Complete(md.transactional_id))
        return effects

    def _prepare(self, md: TxnMetadata, commit: bool, now_ms: int) -> list[Effect]:
        md.state = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
        return [self._persist(md, now_ms), *self._finish(md)]

    def _fence_epoch(self, md: TxnMetadata) -> None:
        """Bump the epoch so the current producer instance is fenced (if epochs remain).

        As in Kafka the previous epoch is forgotten, so the fenced instance cannot pass an
        InitProducerId off as a retry: it is PRODUCER_FENCED for good.
        """
        if md.producer_epoch < MAX_EPOCH - 1:
            md.producer_epoch += 1
        md.last_producer_epoch = NO_EPOCH

    def _check(self, md: TxnMetadata | None, pid: int, epoch: int, api: str, version: int) -> ErrorCode | None:
        if md is None or md.producer_id != pid:
            return E.invalid_producer_id_mapping
        if epoch != md.producer_epoch:
            return fenced(api, version)
        if md.state.prepared:
            return E.concurrent_transactions
        return None

    def _begin_if_needed(self, md: TxnMetadata, now_ms: int) -> None:
        if md.state != S.ONGOING:
            md.state = S.ONGOING
            md.start_ms = now_ms
            md.partitions = set()
            md.groups = set()
            md.pending_offsets = {}

    # ------------------------------------------------------------------ InitProducerId
    def init_producer_id(
        self, tid: str, timeout_ms: int, pid: int, epoch: int, now_ms: int, version: int
    ) -> tuple[InitResult, list[Effect]]:
        if timeout_ms <= 0 or timeout_ms > self.max_timeout_ms:
            return InitResult(E.invalid_transaction_timeout), []
        if (pid >= 0) != (epoch >= 0):
            return InitResult(E.invalid_request), []
        expected = (pid, epoch) if pid >= 0 or epoch >= 0 else None
        md = self.txns.get(tid)
        if md is None:
            if expected is not None:
                # As in Kafka: the id may have expired while the producer was idle; the
                # freshly created metadata has no epoch to fence against, so it starts over.
                log.info("init of unknown transactional id %s with expected %s", tid, expected)
            md = TxnMetadata(tid, self.allocate_pid(), 0, timeout_ms)
            self.txns[tid] = md
            self.by_pid[md.producer_id] = tid
            return InitResult(E.none, md.producer_id, 0), [self._persist(md, now_ms)]
        if md.state.prepared:
            return InitResult(E.concurrent_transactions), []
        if expected is not None and not self._valid_expected(md, *expected):
            return InitResult(fenced("init", version)), []
        if md.state == S.ONGOING:
            self._fence_epoch(md)
            log.info("aborting ongoing transaction of %s before re-initialising it", tid)
            return InitResult(E.concurrent_transactions), self._prepare(md, False, now_ms)
        md.timeout_ms = timeout_ms
        if expected is not None and self._is_retry(md, *expected):
            return InitResult(E.none, md.producer_id, md.producer_epoch), [self._persist(md, now_ms)]
        if md.producer_epoch >= MAX_EPOCH - 1:
            self.by_pid.pop(md.producer_id, None)
            md.previous_producer_id = md.producer_id
            md.producer_id = self.allocate_pid()
            md.producer_epoch = 0
            md.last_producer_epoch = NO_EPOCH
            self.by_pid[md.producer_id] = tid
        else:
            md.last_producer_epoch = md.producer_epoch
            md.producer_epoch += 1
        md.state = S.EMPTY
        md.partitions, md.groups, md.pending_offsets = set(), set(), {}
        return InitResult(E.none, md.producer_id, md.producer_epoch), [self._persist(md, now_ms)]

    @staticmethod
    def _is_retry(md: TxnMetadata, pid: int, epoch: int) -> bool:
        """The previous InitProducerId already bumped (or rotated) for this producer."""
        if pid == md.producer_id:
            return epoch == md.last_producer_epoch and epoch != NO_EPOCH
        return pid == md.previous_producer_id and md.state == S.EMPTY

    @staticmethod
    def _valid_expected(md: TxnMetadata, pid: int, epoch: int) -> bool:
        if md.producer_id == pid and epoch in (md.producer_epoch, md.last_producer_epoch):
            return True
        return md.previous_producer_id == pid and epoch >= MAX_EPOCH - 1

    # ------------------------------------------------------------------ AddPartitions / AddOffsets
    def add_partitions(
        self, tid: str, pid: int, epoch: int, partitions: Iterable[TopicPartition], now_ms: int, version: int
    ) -> tuple[ErrorCode, list[Effect]]:
        md = self.txns.get(tid)
        error = self._check(md, pid, epoch, "add_partitions", version)
        if error is not None:
            return error, []
        assert md is not None
        wanted = set(partitions)
        if md.state == S.ONGOING and wanted <= md.partitions:
            return E.none, []
        self._begin_if_needed(md, now_ms)
        md.partitions |= wanted
        return E.none, [self._persist(md, now_ms)]

    def add_offsets(self, tid: str, pid: int, epoch: int, group_id: str, now_ms: int, version: int) -> tuple[ErrorCode, list[Effect]]:
        md = self.txns.get(tid)
        error = self._check(md, pid, epoch, "add_offsets", version)
        if error is not None:
            return error, []
        assert md is not None
        self._begin_if_needed(md, now_ms)
        md.groups.add(group_id)
        return E.none, [self._persist(md, now_ms)]

    def txn_offset_commit(
        self, tid: str, pid: int, epoch: int, group_id: str,
        offsets: Iterable[tuple[str, int, PendingOffset]], now_ms: int, version: int,
    ) -> tuple[ErrorCode, list[Effect]]:
        md = self.txns.get(tid)
        error = self._check(md, pid, epoch, "offset_commit", version)
        if error is not None:
            return error, []
        assert md is not None
        if md.state != S.ONGOING or group_id not in md.groups:
            return E.invalid_txn_state, []
        pending = md.pending_offsets.setdefault(group_id, {})
        for topic, partition, value in offsets:
            pending[(topic, partition)] = value
        return E.none, [self._persist(md, now_ms)]

    # ------------------------------------------------------------------ EndTxn
    def end_txn(self, tid: str, pid: int, epoch: int, commit: bool, now_ms: int, version: int) -> tuple[ErrorCode, list[Effect]]:
        md = self.txns.get(tid)
        if md is None or md.producer_id != pid:
            return E.invalid_producer_id_mapping, []
        if epoch != md.producer_epoch:
            return fenced("end", version), []
        if md.state == S.ONGOING:
            return E.none, self._prepare(md, commit, now_ms)
        if md.state.prepared:
            return E.concurrent_transactions, []
        if md.state == (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT):
            return E.none, []  # a retry of the EndTxn that completed it
        return E.invalid_txn_state, []

    def complete(self, tid: str, now_ms: int) -> list[Effect]:
        md = self.txns[tid]
        if not md.state.prepared:
            return []
        md.state = S.COMPLETE_COMMIT if md.state == S.PREPARE_COMMIT else S.COMPLETE_ABORT
        md.partitions, md.groups, md.pending_offsets = set(), set(), {}
        md.start_ms = -1
        return [self._persist(md, now_ms)]

    # ------------------------------------------------------------------ timers and produce checks
    def expire(self, now_ms: int) -> list[Effect]:
        """Abort (with a fenced epoch) every transaction open longer than its timeout."""
        effects: list[Effect] = []
        for md in self.txns.values():
            if md.state == S.ONGOING and now_ms - md.start_ms > md.timeout_ms:
                log.info("transaction of %s timed out after %d ms: aborting",
                         md.transactional_id, now_ms - md.start_ms)
                self._fence_epoch(md)
                effects += self._prepare(md, False, now_ms)
        idle = (S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT)
        for tid, md in list(self.txns.items()):
            if md.state in idle and now_ms - md.last_update_ms > self.id_expiration_ms:
                log.info("transactional id %s expired after %d ms idle", tid, now_ms - md.last_update_ms)
                del self.txns[tid]
                if self.by_pid.get(md.producer_id) == tid:
                    del self.by_pid[md.producer_id]
                effects.append(Persist(tid, None))
        return effects

    def next_deadline_ms(self) -> int | None:
        deadlines = [md.start_ms + md.timeout_ms for md in self.txns.values() if md.state == S.ONGOING]
        return min(deadlines) if deadlines else None

    def check_produce(self, pid: int, epoch: int, tp: TopicPartition) -> tuple[int, str] | None:
        """None if a transactional batch of (pid, epoch) may go to `tp`, else (error, why)."""
        tid = self.by_pid.get(pid)
        md = self.txns.get(tid) if tid is not None else None
        if md is None:
            return E.invalid_producer_id_mapping, f"producer {pid} has no transactional id here"
        if epoch != md.producer_epoch:
            return E.invalid_producer_epoch, f"producer {pid} epoch {epoch} is not {md.producer_epoch}"
        if md.state != S.ONGOING or tp not in md.partitions:
            return E.invalid_txn_state, f"{tp[0]}-{tp[1]} is not part of an ongoing transaction of {tid}"
        return None

    def pending_offset_partitions(self, group_id: str) -> set[TopicPartition]:
        """Partitions of `group_id` with offsets waiting in an unfinished transaction."""
        out: set[TopicPartition] = set()
        for md in self.txns.values():
            if md.state == S.ONGOING or md.state.prepared:
                out |= md.pending_offsets.get(group_id, {}).keys()
        return out

    def owns(self, pid: int, tp: TopicPartition) -> bool:
        """Whether an open (or finishing) transaction of `pid` includes `tp`."""
        tid = self.by_pid.get(pid)
        md = self.txns.get(tid) if tid is not None else None
        return md is not None and (md.state == S.ONGOING or md.state.prepared) and tp in md.partitions

    def describe(self, tid: str) -> TxnMetadata | None:
        return self.txns.get(tid)
