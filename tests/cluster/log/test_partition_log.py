"""PartitionLog appends and reads: offsets, segment rolls, fetch size rules, reopen."""

from __future__ import annotations

import os

import pytest

from cluster.log import LogConfig, OffsetOutOfOrder, OffsetOutOfRange, PartitionLog
from cluster.log.errors import LogClosed, LogError
from cluster.wire.record_batch import iter_batches, read_header, validate

from .helpers import make_batch, read_all


def small(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 1024)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


def test_new_log_is_empty(tmp_path):
    log = PartitionLog.open(tmp_path / "t-0", small())
    assert (log.log_start_offset, log.log_end_offset) == (0, 0)
    assert log.read(0, 1000) == b""
    assert log.max_timestamp() is None
    assert log.offset_for_timestamp(0) is None
    assert (tmp_path / "t-0" / "00000000000000000000.log").exists()


def test_append_assigns_offsets_and_patches_header(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    b1 = make_batch(3, base_offset=999, leader_epoch=77)
    r1 = log.append([b1], leader_epoch=5, now_ms=10)
    r2 = log.append([memoryview(make_batch(2, ts=5000))], leader_epoch=5, now_ms=11)
    assert (r1.base_offset, r1.last_offset, r1.log_append_time_ms) == (0, 2, -1)
    assert (r2.base_offset, r2.last_offset) == (3, 4)
    assert (r2.max_timestamp, r2.offset_of_max_timestamp) == (5001, 4)
    assert log.log_end_offset == 5
    data = log.read(0, 1 << 20)
    batches = [h for _, h in iter_batches(data, allow_partial_tail=False)]
    assert [(h.base_offset, h.partition_leader_epoch) for h in batches] == [(0, 5), (3, 5)]
    # base offset and epoch sit outside the CRC: the stored batch still validates
    first = data[: batches[0].size]
    validate(first)
    assert first[12 + 5 :] == b1[12 + 5 :]  # everything from magic on is untouched


def test_log_append_time_rewrites_timestamps(tmp_path):
    log = PartitionLog.open(tmp_path, small(message_timestamp_type="LogAppendTime"))
    r = log.append([make_batch(2, ts=1), make_batch(1, ts=2)], leader_epoch=0, now_ms=123_456)
    assert (r.log_append_time_ms, r.max_timestamp, r.offset_of_max_timestamp) == (123_456, 123_456, 0)
    for pos, h in iter_batches(log.read(0, 1 << 20)):
        assert h.log_append_time and h.max_timestamp == h.base_timestamp == 123_456
    validate(log.read(0, 1)[: read_header(log.read(0, 1)).size])


def test_round_trip_across_many_rolls(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    sent = []
    for i in range(200):
        count = 1 + i % 4
        b = make_batch(count, value_size=20 + i % 50, tag=i)
        r = log.append([b], leader_epoch=0, now_ms=i)
        sent.append((r.base_offset, r.last_offset, b[61:]))
    assert log.segment_count > 10
    assert all(os.path.getsize(p) <= 1024 for p in tmp_path.glob("*.log"))
    assert read_all(log) == sent
    log.close()
    reopened = PartitionLog.open(tmp_path, small())
    assert read_all(reopened) == sent
    assert reopened.log_end_offset == sent[-1][1] + 1


def test_multi_batch_append_may_span_segments(tmp_path):
    log = PartitionLog.open(tmp_path, small(segment_bytes=300))
    batches = [make_batch(2, value_size=40, tag=i) for i in range(10)]
    r = log.append(batches, leader_epoch=0, now_ms=0)
    assert (r.base_offset, r.last_offset) == (0, 19)
    assert log.segment_count > 1
    assert [b[61:] for b in batches] == [rec for _, _, rec in read_all(log)]


def test_read_mid_batch_returns_containing_batch(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    for i in range(50):
        log.append([make_batch(5, tag=i)], leader_epoch=0, now_ms=0)
    for offset in (0, 3, 7, 122, 249):
        h = read_header(log.read(offset, 1))
        assert h.base_offset == offset - offset % 5
    assert log.read(250, 100) == b""
    with pytest.raises(OffsetOutOfRange):
        log.read(251, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)


def test_max_bytes_whole_batches_and_at_least_one(tmp_path):
    log = PartitionLog.open(tmp_path, small(segment_bytes=1 << 20))
    sizes = []
    for i in range(10):
        b = make_batch(1, value_size=100)
        sizes.append(len(b))
        log.append([b], leader_epoch=0, now_ms=0)
    one = sizes[0]
    assert len(log.read(0, 1)) == one  # KIP-74: a batch bigger than max_bytes still comes
    assert len(log.read(0, 0)) == one
    assert len(log.read(0, 3 * one + one // 2)) == 3 * one
    assert len(log.read(0, 1 << 20)) == 10 * one
    assert len(log.read(9, 1 << 20)) == one


def test_read_continues_across_segments(tmp_path):
    log = PartitionLog.open(tmp_path, small(segment_bytes=400))
    for i in range(30):
        log.append([make_batch(1, value_size=50, tag=i)], leader_epoch=0, now_ms=0)
    assert log.segment_count > 5
    data = log.read(0, 1 << 20)
    assert [h.base_offset for _, h in iter_batches(data)] == list(range(30))


def test_max_offset_limits_reads(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    for i in range(10):
        log.append([make_batch(2)], leader_epoch=0, now_ms=0)
    bases = lambda d: [h.base_offset for _, h in iter_batches(d)]
    assert bases(log.read(0, 1 << 20, max_offset=6)) == [0, 2, 4]
    assert bases(log.read(5, 1 << 20, max_offset=7)) == [4, 6]
    assert log.read(6, 1 << 20, max_offset=6) == b""
    assert bases(log.read(0, 1 << 20, max_offset=0)) == []


def test_large_batch_bigger_than_read_chunks(tmp_path):
    # a sparse index forces locate() to hop over the big batch by its header
    log = PartitionLog.open(tmp_path, small(segment_bytes=1 << 22, index_interval_bytes=1 << 22))
    small_b = make_batch(1)
    big = make_batch(3, value_size=300_000)
    log.append([small_b], leader_epoch=0, now_ms=0)
    log.append([big], leader_epoch=0, now_ms=0)
    log.append([small_b], leader_epoch=0, now_ms=0)
    assert read_header(log.read(4, 10)).base_offset == 4
    assert len(log.read(2, 10)) == len(big)
    assert log.read(1, 10)[61:] == big[61:]


def test_append_preserving_keeps_offsets_and_allows_gaps(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    r = log.append_preserving([make_batch(3, base_offset=0, leader_epoch=4)], now_ms=0)
    assert (r.base_offset, r.last_offset) == (0, 2)
    r = log.append_preserving([make_batch(2, base_offset=10, leader_epoch=6),
                               make_batch(1, base_offset=12, leader_epoch=6)], now_ms=0)
    assert (r.base_offset, r.last_offset, log.log_end_offset) == (10, 12, 13)
    # an offset in the gap reads the next batch
    assert read_header(log.read(5, 1)).base_offset == 10
    assert [h.partition_leader_epoch for _, h in iter_batches(log.read(0, 1 << 20))] == [4, 6, 6]
    with pytest.raises(OffsetOutOfOrder):
        log.append_preserving([make_batch(1, base_offset=12)], now_ms=0)
    with pytest.raises(OffsetOutOfOrder):  # overlapping batches within one call: nothing written
        log.append_preserving([make_batch(2, base_offset=20), make_batch(1, base_offset=21)], now_ms=0)
    assert log.log_end_offset == 13
    # a gap too large for 32-bit relative offsets rolls a segment at the batch's offset
    far = 13 + (1 << 31) + 5
    log.append_preserving([make_batch(1, base_offset=far)], now_ms=0)
    assert log.log_end_offset == far + 1
    assert read_header(log.read(far, 1)).base_offset == far
    assert read_header(log.read(14, 1)).base_offset == far
    log.close()
    log = PartitionLog.open(tmp_path, small())
    assert log.log_end_offset == far + 1
    assert read_header(log.read(far, 1)).base_offset == far


def test_start_at_sets_empty_log_offsets(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    log.start_at(1000)
    assert (log.log_start_offset, log.log_end_offset) == (1000, 1000)
    with pytest.raises(OffsetOutOfRange):
        log.read(999, 10)
    log.append_preserving([make_batch(2, base_offset=1000)], now_ms=0)
    with pytest.raises(LogError):
        log.start_at(5)
    log.close()
    log = PartitionLog.open(tmp_path, small())
    assert (log.log_start_offset, log.log_end_offset) == (1000, 1002)
    assert read_header(log.read(1000, 1)).base_offset == 1000


def test_roll_by_time(tmp_path):
    log = PartitionLog.open(tmp_path, small(segment_bytes=1 << 20, segment_ms=100))
    log.append([make_batch()], leader_epoch=0, now_ms=1000)
    log.append([make_batch()], leader_epoch=0, now_ms=1050)
    assert log.segment_count == 1
    log.append([make_batch()], leader_epoch=0, now_ms=1100)
    assert log.segment_count == 2
    assert [b for b, _, _ in read_all(log)] == [0, 1, 2]


def test_update_config_applies_to_next_append(tmp_path):
    log = PartitionLog.open(tmp_path, small(segment_bytes=1 << 20))
    for _ in range(5):
        log.append([make_batch(value_size=100)], leader_epoch=0, now_ms=0)
    log.update_config(small(segment_bytes=200))
    log.append([make_batch(value_size=100)], leader_epoch=0, now_ms=0)
    assert log.segment_count == 2
    with pytest.raises(ValueError):
        LogConfig(fsync="sometimes")


def test_closed_log_refuses_use(tmp_path):
    log = PartitionLog.open(tmp_path, small())
    log.close()
    log.close()  # idempotent
    with pytest.raises(LogClosed):
        log.read(0, 10)


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_fsync_policies_append_and_flush(tmp_path, policy):
    log = PartitionLog.open(tmp_path, small(fsync=policy, fsync_interval_ms=10))
    for i in range(20):
        log.append([make_batch(tag=i)], leader_epoch=0, now_ms=i * 5)
        log.maybe_flush(i * 5)
    log.flush()
    assert len(read_all(log)) == 20


def test_delete_removes_the_directory(tmp_path):
    log = PartitionLog.open(tmp_path / "t-3", small())
    for i in range(20):
        log.append([make_batch(tag=i, value_size=60)], leader_epoch=0, now_ms=0)
    log.delete()
    assert not (tmp_path / "t-3").exists()
    with pytest.raises(LogClosed):
        log.append([make_batch()], leader_epoch=0, now_ms=0)


def test_iter_batch_headers_survives_handle_cache_churn(tmp_path, monkeypatch):
    from cluster.log.handles import READ_HANDLES

    monkeypatch.setattr(READ_HANDLES, "capacity", 2)
    a = PartitionLog.open(tmp_path / "a", small(segment_bytes=300))
    b = PartitionLog.open(tmp_path / "b", small(segment_bytes=300))
    for i in range(30):
        a.append([make_batch(2, value_size=40, tag=i)], leader_epoch=0, now_ms=0)
        b.append([make_batch(1, value_size=40, tag=i)], leader_epoch=0, now_ms=0)
    it = a.iter_batch_headers(from_offset=7)
    first = next(it)
    assert (first.base_offset, first.last_offset) == (6, 7)
    assert len(read_all(b)) == 30  # cycles many other files through the 2-slot cache
    rest = [h.base_offset for h in it]
    assert rest == list(range(8, 60, 2))
