"""Crash recovery: torn and corrupt tails, lost or damaged indexes, clean-shutdown marker."""

from __future__ import annotations

import logging
import os
import random

import pytest

from cluster.log import LogConfig, PartitionLog
from cluster.log import segment as segment_mod
from cluster.wire.record_batch import read_header

from .helpers import make_batch, read_all


def cfg(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 700)
    kw.setdefault("index_interval_bytes", 120)
    kw.setdefault("retention_ms", -1)
    return LogConfig(**kw)


def build(tmp_path, n=30) -> list[tuple[int, int, bytes]]:
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(n):
        log.append([make_batch(1 + i % 3, value_size=30, tag=i)], leader_epoch=0, now_ms=0)
    written = read_all(log)
    log.abandon()  # a crash: no index write, no clean marker
    return written


def last_log(tmp_path):
    return sorted(tmp_path.glob("*.log"))[-1]


def test_unclean_reopen_keeps_everything(tmp_path):
    written = build(tmp_path)
    log = PartitionLog.open(tmp_path, cfg())
    assert read_all(log) == written


@pytest.mark.parametrize("tail", [b"\x00" * 100, bytes(range(256)) * 3, b"\x01\x02\x03"])
def test_garbage_tail_is_cut(tmp_path, tail, caplog):
    written = build(tmp_path)
    path = last_log(tmp_path)
    good_size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(tail)
    with caplog.at_level(logging.WARNING, logger="cluster.log"):
        log = PartitionLog.open(tmp_path, cfg())
    assert path.stat().st_size == good_size
    assert read_all(log) == written
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and path.name in warnings[0] and f"by {len(tail)} bytes" in warnings[0]
    r = log.append([make_batch(2)], leader_epoch=0, now_ms=0)
    assert r.base_offset == written[-1][1] + 1


def test_torn_last_batch_is_dropped(tmp_path):
    written = build(tmp_path)
    path = last_log(tmp_path)
    size = path.stat().st_size
    data = path.read_bytes()
    last_pos = size - (written[-1][2].__len__() + 61)
    assert read_header(data, last_pos).base_offset == written[-1][0]
    os.truncate(path, size - 7)
    log = PartitionLog.open(tmp_path, cfg())
    assert read_all(log) == written[:-1]
    assert log.log_end_offset == written[-2][1] + 1
    assert path.stat().st_size == last_pos
    r = log.append([make_batch(1, tag=99)], leader_epoch=0, now_ms=0)
    assert r.base_offset == written[-2][1] + 1
    assert read_all(log)[-1][2] == make_batch(1, tag=99)[61:]


@pytest.mark.parametrize("where", [21, 40, 70, -1])
def test_flipped_byte_in_last_batch(tmp_path, where):
    written = build(tmp_path)
    path = last_log(tmp_path)
    data = bytearray(path.read_bytes())
    last_pos = len(data) - (len(written[-1][2]) + 61)
    i = last_pos + where if where >= 0 else len(data) - 1
    data[i] ^= 0x40
    path.write_bytes(bytes(data))
    log = PartitionLog.open(tmp_path, cfg())
    assert read_all(log) == written[:-1]


def test_deleted_and_damaged_indexes_are_rebuilt(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(60):
        log.append([make_batch(2, ts=i * 10, value_size=30, tag=i)], leader_epoch=0, now_ms=0)
    written = read_all(log)
    log.close()
    indexes = sorted(tmp_path.glob("*.index"))
    assert len(indexes) > 4
    originals = {p: p.read_bytes() for p in indexes}
    os.unlink(indexes[0])
    os.unlink(sorted(tmp_path.glob("*.timeindex"))[1])
    indexes[2].write_bytes(b"\xff" * 13)  # not a whole number of entries
    indexes[3].write_bytes(b"\x7f\xff\xff\xff" * 2)  # points past the end of the file
    log = PartitionLog.open(tmp_path, cfg())
    for p, content in originals.items():
        assert p.read_bytes() == content, p.name
    assert read_all(log) == written
    for offset in range(0, 120, 7):
        h = read_header(log.read(offset, 1))
        assert h.base_offset <= offset <= h.last_offset
    assert log.offset_for_timestamp(300)[0] == 60


def test_corrupt_middle_segment_without_index_cuts_the_log_there(tmp_path, caplog):
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(60):
        log.append([make_batch(2, value_size=30, tag=i)], leader_epoch=0, now_ms=0)
    log.close()
    logs = sorted(tmp_path.glob("*.log"))
    victim = logs[2]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 1  # last batch of the third segment
    victim.write_bytes(bytes(data))
    os.unlink(victim.with_suffix(".index"))
    with caplog.at_level(logging.WARNING, logger="cluster.log"):
        log = PartitionLog.open(tmp_path, cfg())
    assert sorted(tmp_path.glob("*.log")) == logs[:3]
    assert log.segment_count == 3
    assert log.log_end_offset < int(logs[3].stem)
    assert any("truncated" in r.getMessage() for r in caplog.records)
    r = log.append([make_batch()], leader_epoch=0, now_ms=0)
    assert r.base_offset == log.log_end_offset - 1


def test_clean_shutdown_skips_the_crc_scan(tmp_path, monkeypatch):
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(30):
        log.append([make_batch(2, tag=i)], leader_epoch=0, now_ms=0)
    written = read_all(log)
    log.close()
    assert (tmp_path / ".clean-shutdown").exists()
    calls = []
    real = segment_mod.validated_scan
    monkeypatch.setattr(segment_mod, "validated_scan", lambda *a: calls.append(a) or real(*a))
    log = PartitionLog.open(tmp_path, cfg())
    assert not (tmp_path / ".clean-shutdown").exists()
    assert calls == []
    assert read_all(log) == written
    log.append([make_batch()], leader_epoch=0, now_ms=0)
    log.abandon()
    PartitionLog.open(tmp_path, cfg())  # unclean this time: the last segment is scanned
    assert len(calls) == 1


def test_clean_marker_with_torn_tail_falls_back_to_scan(tmp_path):
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    for i in range(30):
        log.append([make_batch(2, tag=i)], leader_epoch=0, now_ms=0)
    written = read_all(log)
    log.close()
    path = last_log(tmp_path)
    os.truncate(path, path.stat().st_size - 3)
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    assert read_all(log) == written[:-1]


def test_log_start_beyond_recovered_end_restarts_there(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(5):
        log.append([make_batch(2, tag=i)], leader_epoch=0, now_ms=0)
    log.abandon()
    (tmp_path / "log-start-offset").write_text("50\n")
    log = PartitionLog.open(tmp_path, cfg())
    assert (log.log_start_offset, log.log_end_offset) == (50, 50)


def test_random_tail_damage_loses_at_most_the_last_batch(tmp_path):
    rng = random.Random(7)
    for trial in range(15):
        d = tmp_path / str(trial)
        written = build(d, n=12)
        path = last_log(d)
        data = bytearray(path.read_bytes())
        last_len = len(written[-1][2]) + 61
        # a bit flip anywhere the CRC covers (from the crc field on) must be caught
        cut = rng.randrange(len(data) - last_len + 17, len(data))
        data[cut] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data[: rng.randrange(cut + 1, len(data) + 1)]))
        log = PartitionLog.open(d, cfg())
        got = read_all(log)
        assert got == written[: len(got)] and len(got) >= len(written) - 1
        log.close()


def test_batch_beyond_the_segments_relative_offsets_is_cut(tmp_path, caplog):
    # Index entries hold offsets relative to the segment base as int32; the log rolls
    # before a batch would pass that, so recovery meeting one cuts there instead of
    # overflowing the index (found by tests/fuzz, target `recovery`).
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    log.append([make_batch(2)], leader_epoch=0, now_ms=0)
    log.abandon()
    seg = last_log(tmp_path)
    good_size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(make_batch(1, base_offset=1 << 31))
    with caplog.at_level(logging.WARNING):
        log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    assert log.log_end_offset == 2 and seg.stat().st_size == good_size
    assert "int32 range" in caplog.text
    log.close()
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    assert log.log_end_offset == 2
    log.close()
