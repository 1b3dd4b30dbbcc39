"""Idempotent producers: producer-id allocation and per-partition sequence checking.

Kafka's rules, per (partition, producer id): a batch's base sequence must follow the last
one (`last + 1`, wrapping at 2^31); a retried batch that matches one of the last five
batches is a duplicate and is answered with its original offsets without being appended
again; a lower epoch is fenced; a new epoch starts at sequence 0. State is rebuilt from the
batch headers in the log when the broker starts, so it survives kill -9 with the data.

Producer ids come from a block reserved on disk before use, so ids are never reused after
a crash (the unused rest of a block is simply skipped).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kio.schema.errors import ErrorCode

from cluster.wire import record_batch as rb

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

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class SequenceError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class PartitionProducers:
    """Sequence state of every producer that wrote to one partition (pure)."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

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

    def record(self, h: rb.BatchHeader) -> None:
        """Remember an appended batch (h carries its assigned base offset)."""
        if h.producer_id < 0:
            return
        entry = self.producers.get(h.producer_id)
        if entry is None or h.producer_epoch > entry.epoch:
            entry = ProducerEntry(h.producer_epoch)
            self.producers[h.producer_id] = entry
        if h.base_sequence >= 0 and not h.is_control:
            entry.batches.append(
                _BatchMeta(h.base_sequence, h.last_sequence, h.base_offset, h.last_offset)
            )


class ProducerIds:
    """Allocates producer ids from blocks reserved on disk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        start = json.loads(path.read_text())["next_block"] if path.exists() else 1000
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

    def for_partition(self, part: Any) -> PartitionProducers:
        state = self._partitions.get(part)
        if state is None:
            state = PartitionProducers()
            for h in part.log.iter_batch_headers(part.log.log_start_offset):
                state.record(h)
            self._partitions[part] = state
        return state

    def forget(self, part: Any) -> None:
        self._partitions.pop(part, None)

    def check(self, part: Any, batches: Sequence[memoryview]) -> dict | None:
        """None to go ahead, or a produce response entry (duplicate or error)."""
        state = self.for_partition(part)
        for b in batches:
            h = rb.read_header(b)
            try:
                dup = state.check(h)
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
            state.record(rb.read_header(b))

    def record(self, part: Any, batches: Sequence[memoryview], result: Any) -> None:
        state = self.for_partition(part)
        offset = result.base_offset
        for b in batches:
            h = rb.read_header(b)
            h.base_offset = offset
            state.record(h)
            offset += h.last_offset_delta + 1
