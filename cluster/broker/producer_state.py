"""Idempotent producers: producer-id allocation and per-partition sequence checking.

Kafka's rules, per (partition, producer id): a batch's base sequence must follow the last
one (`last + 1`, wrapping at 2^31); a retried batch that matches one of the last five
batches is a duplicate and is answered with its original offsets without being appended
again; a lower epoch is fenced; a new epoch starts at sequence 0. State is rebuilt from the
batch headers in the log when the broker starts, so it survives kill -9 with the data.

Producer ids come from a block reserved on disk before use, so ids are never reused after
a crash (the unused rest of a block is simply skipped). A new cluster starts at a random
block: mirrored partitions carry the source cluster's producer ids, and after a failover
the target's own producers must not collide with them (same id, older epoch -> fenced).

Transactions, partition side: each partition also keeps a `PartitionTxnIndex` (first
offset of every open transaction -> last stable offset; aborted ranges for read_committed
fetches), fed by the same headers plus the COMMIT/ABORT type of control batches, including
batches that arrive through the mirror's offset-preserving path. Produce refuses control
batches from clients and, through `txn_guard` (installed by the transaction coordinator),
transactional batches for partitions not added to the producer's ongoing transaction.
"""

from __future__ import annotations

import json
import secrets
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kio.schema.errors import ErrorCode

from cluster.txn.partition_index import AbortedTxn, PartitionTxnIndex
from cluster.wire import control
from cluster.wire import record_batch as rb
from cluster.wire.records import InvalidBatch, decode_records

log = logging.getLogger(__name__)

DEDUP_WINDOW = 5  # Kafka keeps the last five batches per producer (max.in.flight <= 5)
_PID_BLOCK = 1000


@dataclass
class _BatchMeta:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque[_BatchMeta] = field(default_factory=lambda: deque(maxlen=DEDUP_WINDOW))
    last_timestamp: int = -1  # max timestamp of its last batch or marker (DescribeProducers)

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class SequenceError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def marker_is_commit(batch: bytes | memoryview) -> bool | None:
    """COMMIT (True) / ABORT (False) of a control batch; None if it is not a txn marker."""
    try:
        records = decode_records(batch, verify_crc=False)
        return control.parse_control_record(records[0])[0] if records else None
    except InvalidBatch:
        return None


class PartitionProducers:
    """Sequence state of every producer that wrote to one partition (pure)."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.txns = PartitionTxnIndex()

    def check(self, h: rb.BatchHeader) -> _BatchMeta | None:
        """Validate one batch; returns the original batch if `h` is a duplicate."""
        pid = h.producer_id
        if pid < 0 or h.base_sequence < 0:
            return None
        entry = self.producers.get(pid)
        if entry is None:
            return None  # unknown producer: accept (its state may have been removed)
        if h.producer_epoch < entry.epoch:
            raise SequenceError(
                ErrorCode.invalid_producer_epoch,
                f"producer {pid} epoch {h.producer_epoch} is older than {entry.epoch}",
            )
        if h.producer_epoch > entry.epoch:
            if h.base_sequence != 0:
                raise SequenceError(
                    ErrorCode.out_of_order_sequence_number,
                    f"producer {pid} new epoch {h.producer_epoch} must start at sequence 0",
                )
            return None
        for b in entry.batches:
            if b.first_seq == h.base_sequence and b.last_seq == h.last_sequence:
                return b
        expected = (entry.last_seq + 1) & 0x7FFFFFFF
        if entry.batches and h.base_sequence != expected:
            raise SequenceError(
                ErrorCode.out_of_order_sequence_number,
                f"producer {pid} sent sequence {h.base_sequence}, expected {expected}",
            )
        return None

    def record(self, h: rb.BatchHeader, commit: bool | None = None) -> None:
        """Remember an appended batch (h carries its assigned base offset).

        `commit` is the marker type when `h` is a control batch (None: not a txn marker).
        """
        if h.producer_id < 0:
            return
        if h.is_transactional:
            if not h.is_control:
                self.txns.on_data(h.producer_id, h.base_offset)
            elif commit is not None:
                self.txns.on_marker(h.producer_id, commit, h.base_offset)
        entry = self.producers.get(h.producer_id)
        if entry is None or h.producer_epoch > entry.epoch:
            entry = ProducerEntry(h.producer_epoch)
            self.producers[h.producer_id] = entry
        entry.last_timestamp = h.max_timestamp
        if h.base_sequence >= 0 and not h.is_control:
            entry.batches.append(
                _BatchMeta(h.base_sequence, h.last_sequence, h.base_offset, h.last_offset)
            )

    def describe(self) -> list[dict[str, int]]:
        """Every producer with state here, as DescribeProducers (Kafka's
        `kafka-transactions describe-producers`) reports them: epoch, last sequence (-1
        when none), last timestamp, and the first offset of its open transaction (-1)."""
        return [
            {
                "producer_id": pid,
                "producer_epoch": e.epoch,
                "last_sequence": e.last_seq,
                "last_timestamp": e.last_timestamp,
                "coordinator_epoch": -1,
                "current_txn_start_offset": self.txns.ongoing.get(pid, -1),
            }
            for pid, e in sorted(self.producers.items())
        ]


def _random_start() -> int:
    """A block start in [2^20, 2^46): far from other clusters' ids, far from overflow."""
    return (1 << 20) + secrets.randbelow((1 << 46) // _PID_BLOCK) * _PID_BLOCK


class ProducerIds:
    """Allocates producer ids from blocks reserved on disk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        start = json.loads(path.read_text())["next_block"] if path.exists() else _random_start()
        self._next = start
        self._limit = start
        self._reserve()

    def _reserve(self) -> None:
        from cluster.broker.topics import _atomic_write

        self._limit = self._next + _PID_BLOCK
        _atomic_write(self._path, json.dumps({"next_block": self._limit}).encode())

    def allocate(self) -> int:
        if self._next >= self._limit:
            self._reserve()
        pid = self._next
        self._next += 1
        return pid


class ProducerState:
    """The broker's hook object for Produce: sequence checks before append, records after."""

    def __init__(self, meta_dir: Path) -> None:
        self.ids = ProducerIds(meta_dir / "producer_ids.json")
        self._partitions: dict[Any, PartitionProducers] = {}
        # (partition, header) -> None to allow a transactional batch, else (code, message)
        self.txn_guard: Callable[[Any, rb.BatchHeader], tuple[int, str] | None] | None = None

    def for_partition(self, part: Any) -> PartitionProducers:
        state = self._partitions.get(part)
        if state is None:
            state = PartitionProducers()
            for h in part.log.iter_batch_headers(part.log.log_start_offset):
                commit = None
                if h.is_control and h.is_transactional:
                    raw = part.log.read(h.base_offset, h.size)[: h.size]
                    commit = marker_is_commit(raw)
                state.record(h, commit)
            self._partitions[part] = state
        return state

    # ---- transactions, partition side ------------------------------------------
    def last_stable_offset(self, part: Any) -> int:
        return self.for_partition(part).txns.last_stable_offset(part.high_watermark)

    def aborted_between(self, part: Any, start: int, end: int) -> list[AbortedTxn]:
        state = self.for_partition(part)
        state.txns.drop_before(part.log.log_start_offset)
        return state.txns.aborted_between(start, end)

    def ongoing_producers(self, part: Any) -> dict[int, int]:
        """producer_id -> first offset of its open transaction in this partition."""
        return dict(self.for_partition(part).txns.ongoing)

    def loaded(self) -> list[tuple[Any, PartitionProducers]]:
        """Partitions whose state has been built (touched since the broker started)."""
        return list(self._partitions.items())

    def forget(self, part: Any) -> None:
        self._partitions.pop(part, None)

    def check(self, part: Any, batches: Sequence[memoryview]) -> dict | None:
        """None to go ahead, or a produce response entry (duplicate or error)."""
        state = self.for_partition(part)
        for b in batches:
            h = rb.read_header(b)
            try:
                if h.is_control:
                    raise SequenceError(ErrorCode.invalid_record,
                                        "clients may not write control batches")
                dup = state.check(h)
                if dup is None and h.is_transactional and self.txn_guard is not None:
                    refused = self.txn_guard(part, h)
                    if refused is not None:
                        raise SequenceError(*refused)
            except SequenceError as exc:
                return {"index": part.index, "error_code": exc.code, "base_offset": -1,
                        "log_append_time": None, "log_start_offset": -1, "record_errors": [],
                        "error_message": str(exc)}
            if dup is not None:
                if len(batches) > 1:
                    continue
                return {"index": part.index, "error_code": 0, "base_offset": dup.first_offset,
                        "log_append_time": None, "log_start_offset": part.log.log_start_offset,
                        "record_errors": [], "error_message": None}
        return None

    def record_preserved(self, part: Any, batches: Sequence[memoryview]) -> None:
        """Mirrored batches keep their own base offsets."""
        state = self.for_partition(part)
        for b in batches:
            h = rb.read_header(b)
            state.record(h, marker_is_commit(b) if h.is_control and h.is_transactional else None)

    def append_marker(self, part: Any, producer_id: int, producer_epoch: int, commit: bool,
                      coordinator_epoch: int, now_ms: int, *, check_epoch: bool = True) -> int:
        """Append a COMMIT/ABORT control batch for `producer_id` to `part`, record it, wake
        fetchers; returns 0 or the error code that refused it (with `check_epoch`, an epoch
        older than the producer's latest here, as Kafka refuses it). Used by the transaction
        coordinator (which decided the epoch itself: no check) and by WriteTxnMarkers
        (`kafka-transactions abort`)."""
        state = self.for_partition(part)
        entry = state.producers.get(producer_id)
        if check_epoch and entry is not None and producer_epoch < entry.epoch:
            return ErrorCode.invalid_producer_epoch
        batch = control.build_control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now_ms)
        res = part.log.append([batch], leader_epoch=part.leader_epoch, now_ms=now_ms)
        h = rb.read_header(batch)
        h.base_offset = res.base_offset
        state.record(h, commit)
        part.notify()
        return 0

    def record(self, part: Any, batches: Sequence[memoryview], result: Any) -> None:
        state = self.for_partition(part)
        offset = result.base_offset
        for b in batches:
            h = rb.read_header(b)
            h.base_offset = offset
            state.record(h)
            offset += h.last_offset_delta + 1
