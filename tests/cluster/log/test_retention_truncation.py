"""Removing data: retention by time and size, DeleteRecords, truncation for failback."""

from __future__ import annotations

import pytest

from cluster.log import LogConfig, OffsetOutOfRange, PartitionLog
from cluster.wire.record_batch import read_header

from .helpers import make_batch, read_all


def cfg(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 500)
    kw.setdefault("index_interval_bytes", 100)
    kw.setdefault("retention_ms", -1)
    return LogConfig(**kw)


def fill(log: PartitionLog, n: int, *, ts0: int = 0, step: int = 1000) -> None:
    for i in range(n):
        log.append([make_batch(2, ts=ts0 + i * step, value_size=40, tag=i)], leader_epoch=0, now_ms=0)


def test_retention_by_time_deletes_old_whole_segments(tmp_path):
    log = PartitionLog.open(tmp_path, cfg(retention_ms=10_000))
    fill(log, 40)  # batch i has timestamps i*1000 .. i*1000+1
    segs_before = log.segment_count
    assert segs_before > 5
    assert log.apply_retention(now_ms=0) == 0
    removed = log.apply_retention(now_ms=30_000)
    assert removed > 0 and log.segment_count == segs_before - removed
    # every remaining batch that is readable is recent enough, or shares a segment with one
    first = read_all(log)[0]
    assert log.log_start_offset == first[0]
    assert log.read(log.log_start_offset, 1)
    with pytest.raises(OffsetOutOfRange):
        log.read(0, 1)
    # the active segment survives even when everything is expired
    log.apply_retention(now_ms=10**12)
    assert log.segment_count == 1
    assert log.log_end_offset == 80
    log.close()
    reopened = PartitionLog.open(tmp_path, cfg(retention_ms=10_000))
    assert reopened.log_start_offset == log.log_start_offset


def test_retention_by_size_keeps_at_least_retention_bytes(tmp_path):
    log = PartitionLog.open(tmp_path, cfg(retention_bytes=1500))
    fill(log, 60)
    total = log.size_bytes()
    removed = log.apply_retention(now_ms=0)
    assert removed > 0
    assert 1500 <= log.size_bytes() < total
    # removing one more segment would go below the limit
    assert log.apply_retention(now_ms=0) == 0


def test_unlimited_retention_removes_nothing(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 30)
    assert log.apply_retention(now_ms=10**15) == 0
    assert log.log_start_offset == 0


def test_delete_records_before_is_persisted(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 40)
    segs = log.segment_count
    assert log.delete_records_before(31) == 31
    assert log.segment_count < segs
    assert read_header(log.read(31, 1)).base_offset == 30  # the containing batch starts earlier
    with pytest.raises(OffsetOutOfRange):
        log.read(30, 1)
    assert log.delete_records_before(10) == 31  # never moves backwards
    with pytest.raises(OffsetOutOfRange):
        log.delete_records_before(81)
    log.close()
    log = PartitionLog.open(tmp_path, cfg())
    assert log.log_start_offset == 31
    assert log.iter_batch_headers().__next__().base_offset == 30


def test_delete_all_records_then_append(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 10)
    assert log.delete_records_before(20) == 20
    assert log.size_bytes() == 0 and log.segment_count == 1
    assert log.read(20, 100) == b""
    r = log.append([make_batch()], leader_epoch=0, now_ms=0)
    assert r.base_offset == 20


def test_truncate_to_batch_boundary(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 40)
    keep = read_all(log)[:13]
    log.truncate_to(26)
    assert log.log_end_offset == 26
    assert read_all(log) == keep
    r = log.append([make_batch(3)], leader_epoch=1, now_ms=0)
    assert r.base_offset == 26
    log.close()
    log = PartitionLog.open(tmp_path, cfg())
    assert log.log_end_offset == 29
    assert read_all(log)[:13] == keep


def test_truncate_mid_batch_drops_the_whole_batch(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 10)
    log.truncate_to(7)
    assert log.log_end_offset == 6
    log.truncate_to(100)  # beyond the end: nothing happens
    assert log.log_end_offset == 6


def test_truncate_below_first_segment_restarts_log(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    log.start_at(500)
    fill(log, 10)
    log.truncate_to(400)
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes()) == (400, 400, 0)
    log.truncate_to(400)  # at the end already: a no-op
    assert log.log_end_offset == 400
    log.truncate_to(0)  # below the log start, as Kafka: restart the log there
    assert (log.log_start_offset, log.log_end_offset) == (0, 0)


def test_truncate_below_log_start_clamps_log_start(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    fill(log, 20)
    log.delete_records_before(15)
    log.truncate_to(15)
    assert log.log_end_offset == 14 and log.log_start_offset == 14
    assert log.read(14, 100) == b""
