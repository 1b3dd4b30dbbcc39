"""Hypothesis: random appends, reads, truncations, deletions and reopens against a model.

The model is a plain list of (base, last, expected bytes) plus log start and end; every
read must return exactly the batches the model predicts, byte for byte, under the fetch
rules (containing batch first, at least one batch, whole batches up to max_bytes, nothing
starting at or past max_offset).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cluster.log import LogConfig, OffsetOutOfOrder, OffsetOutOfRange, PartitionLog

from cluster.wire.record_batch import set_base_offset, set_leader_epoch

from .helpers import make_batch

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=90, retention_ms=-1, retention_bytes=1200)


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="logmodel-"))
        self.log = PartitionLog.open(self.dir, CONFIG)
        self.batches: list[tuple[int, int, bytes]] = []
        self.log_start = 0
        self.leo = 0
        self.epoch = 0
        self.tag = 0
        self.stamps: dict[int, tuple[int, int]] = {}  # base offset -> (base ts, max ts)

    def teardown(self) -> None:
        self.log.abandon()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _new_batch(self, count: int, size: int, base: int, epoch: int) -> bytes:
        self.tag += 1
        self.stamps[base] = (self.tag * 10, self.tag * 10 + count - 1)
        return make_batch(count, value_size=size, base_offset=base, leader_epoch=epoch,
                          tag=self.tag, ts=self.tag * 10)

    @rule(count=st.integers(1, 5), size=st.integers(0, 150), bump=st.booleans())
    def append(self, count, size, bump):
        self.epoch += bump
        expected = self._new_batch(count, size, self.leo, self.epoch)
        sent = bytearray(expected)  # offset and epoch get overwritten by the log
        set_base_offset(sent, 12345)
        set_leader_epoch(sent, 99)
        r = self.log.append([bytes(sent)], leader_epoch=self.epoch, now_ms=0)
        assert (r.base_offset, r.last_offset) == (self.leo, self.leo + count - 1)
        self.batches.append((self.leo, self.leo + count - 1, expected))
        self.leo += count

    @rule(count=st.integers(1, 4), size=st.integers(0, 150), gap=st.integers(0, 6))
    def append_preserving(self, count, size, gap):
        base = self.leo + gap
        b = self._new_batch(count, size, base, self.epoch)
        r = self.log.append_preserving([b], now_ms=0)
        assert r.base_offset == base
        self.batches.append((base, base + count - 1, b))
        self.leo = base + count

    @precondition(lambda self: self.leo > 0)
    @rule()
    def append_preserving_backwards_fails(self):
        with pytest.raises(OffsetOutOfOrder):
            self.log.append_preserving([make_batch(1, base_offset=self.leo - 1)], now_ms=0)

    @rule(data=st.data(), max_bytes=st.integers(0, 1500), limit=st.booleans())
    def read(self, data, max_bytes, limit):
        offset = data.draw(st.integers(self.log_start, self.leo))
        max_offset = data.draw(st.integers(offset, self.leo)) if limit else None
        expected = []
        total = 0
        for base, last, b in self.batches:
            if last < offset:
                continue
            if max_offset is not None and base >= max_offset:
                break
            if expected and total + len(b) > max_bytes:
                break
            expected.append(b)
            total += len(b)
        assert self.log.read(offset, max_bytes, max_offset=max_offset) == b"".join(expected)

    @rule(data=st.data())
    def read_out_of_range(self, data):
        offset = data.draw(st.one_of(st.integers(self.leo + 1, self.leo + 10),
                                     st.integers(-5, self.log_start - 1) if self.log_start > -5 else st.nothing()))
        with pytest.raises(OffsetOutOfRange):
            self.log.read(offset, 100)

    @rule(data=st.data())
    def truncate(self, data):
        offset = data.draw(st.integers(self.log_start, self.leo + 2))
        self.log.truncate_to(offset)
        if offset >= self.leo:
            return
        kept = [b for b in self.batches if b[1] < offset]
        if offset > self.log_start and kept and kept[-1][1] >= self.log_start:
            assert self.log.log_end_offset == kept[-1][1] + 1
        else:
            # No readable batch is kept: the end falls back to where the first remaining
            # segment starts, which the model does not track; only bounds are known.
            assert self.log.log_end_offset <= offset
            kept = [b for b in kept if b[1] < self.log.log_end_offset]
        self.batches = kept
        self.leo = self.log.log_end_offset
        self.log_start = self.log.log_start_offset
        assert self.log_start <= self.leo

    @rule(data=st.data())
    def delete_records(self, data):
        offset = data.draw(st.integers(0, self.leo))
        assert self.log.delete_records_before(offset) == max(offset, self.log_start)
        self.log_start = max(offset, self.log_start)

    @rule()
    def retention_by_size(self):
        self.log.apply_retention(now_ms=0)
        assert self.log_start <= self.log.log_start_offset <= self.leo
        self.log_start = self.log.log_start_offset

    @rule(clean=st.booleans())
    def reopen(self, clean):
        if clean:
            self.log.close()
        else:
            self.log.abandon()
        self.log = PartitionLog.open(self.dir, CONFIG)

    @rule(garbage=st.binary(min_size=1, max_size=120))
    def crash_with_garbage_tail(self, garbage):
        """A crash that left junk after the last batch: recovery cuts it, nothing else changes."""
        self.log.abandon()
        last = sorted(self.dir.glob("*.log"))[-1]
        with open(last, "ab") as f:
            f.write(garbage)
        self.log = PartitionLog.open(self.dir, CONFIG)

    @rule(probe=st.integers(0, 2000))
    def time_lookup(self, probe):
        expected = None
        for base, last, _ in self.batches:
            if last < self.log_start:
                continue
            base_ts, max_ts = self.stamps[base]
            if max_ts >= probe:
                expected = (max(base, self.log_start), base_ts if base_ts >= probe else max_ts)
                break
        assert self.log.offset_for_timestamp(probe) == expected

    @invariant()
    def max_timestamp_is_the_newest_batch(self):
        # model timestamps only grow, so the newest batch holds the maximum
        if self.log_start >= self.leo:
            assert self.log.max_timestamp() is None
        else:
            base, last, _ = self.batches[-1]
            assert self.log.max_timestamp() == (max(last, self.log_start), self.stamps[base][1])

    @invariant()
    def offsets_agree(self):
        assert self.log.log_start_offset == self.log_start
        assert self.log.log_end_offset == self.leo

    @invariant()
    def headers_agree(self):
        got = [(h.base_offset, h.last_offset) for h in self.log.iter_batch_headers()]
        assert got == [(b, l) for b, l, _ in self.batches if l >= self.log_start]


TestLogModel = LogModel.TestCase
TestLogModel.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
