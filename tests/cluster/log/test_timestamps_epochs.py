"""Time lookups (ListOffsets by timestamp / max timestamp) and the leader-epoch cache."""

from __future__ import annotations

from cluster.log import LogConfig, PartitionLog
from cluster.log.epoch_cache import LeaderEpochCache

from .helpers import make_batch


def cfg(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 600)
    kw.setdefault("index_interval_bytes", 150)
    kw.setdefault("retention_ms", -1)
    return LogConfig(**kw)


def brute_force_first(batches: list[tuple[int, list[int]]], ts: int) -> int | None:
    for base, stamps in batches:
        if max(stamps) >= ts:
            return base
    return None


def test_offset_for_timestamp_matches_brute_force(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    written = []
    # timestamps rise overall but wobble, as real producers' CreateTime does
    for i in range(60):
        stamps = [1000 + i * 100 + d for d in ((i * 37) % 90, (i * 53) % 150 - 60)]
        r = log.append([make_batch(2, timestamps=stamps, tag=i)], leader_epoch=0, now_ms=0)
        written.append((r.base_offset, stamps))
    assert log.segment_count > 3
    for probe in [0, 999, 1000, 1050, 1500, 3333, 4000, 6500, 6990, 7100, 10_000]:
        expect = brute_force_first(written, probe)
        got = log.offset_for_timestamp(probe)
        if expect is None:
            assert got is None, probe
        else:
            assert got is not None and got[0] == expect, probe
            stamps = dict(written)[expect]
            assert got[1] >= probe and got[1] in (stamps[0], max(stamps))
    log.close()
    log = PartitionLog.open(tmp_path, cfg())  # inactive segments now answer from disk
    for probe in [1000, 3333, 6500]:
        assert log.offset_for_timestamp(probe)[0] == brute_force_first(written, probe)


def test_offset_for_timestamp_refine_hook(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    log.append([make_batch(5, ts=100)], leader_epoch=0, now_ms=0)
    seen = []

    def refine(batch: bytes, ts: int):
        seen.append(len(batch))
        return (3, 103)

    assert log.offset_for_timestamp(102, refine=refine) == (3, 103)
    assert seen and seen[0] == len(make_batch(5, ts=100))


def test_offset_for_timestamp_respects_log_start(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    for i in range(10):
        log.append([make_batch(1, ts=i * 10)], leader_epoch=0, now_ms=0)
    log.delete_records_before(5)
    assert log.offset_for_timestamp(0) == (5, 50)


def test_max_timestamp(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    ts = [50, 900, 300, 900, 100] * 6
    for i, t in enumerate(ts):
        log.append([make_batch(2, ts=t, tag=i)], leader_epoch=0, now_ms=0)
    # batch 1 (offsets 2-3) holds the first 901; CreateTime reports the batch's last offset
    assert log.max_timestamp() == (3, 901)
    log.close()
    log = PartitionLog.open(tmp_path, cfg())
    assert log.max_timestamp() == (3, 901)


def test_leader_epoch_cache_follows_appends_truncation_and_reopen(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    for epoch, n in ((0, 5), (2, 3), (5, 4)):
        for _ in range(n):
            log.append([make_batch(2)], leader_epoch=epoch, now_ms=0)
    # epoch 0 starts at 0, epoch 2 at 10, epoch 5 at 16; LEO 24
    assert log.end_offset_for_epoch(0) == (0, 10)
    assert log.end_offset_for_epoch(1) == (0, 10)
    assert log.end_offset_for_epoch(2) == (2, 16)
    assert log.end_offset_for_epoch(4) == (2, 16)
    assert log.end_offset_for_epoch(5) == (5, 24)
    assert log.end_offset_for_epoch(6) == (-1, -1)
    log.close()
    log = PartitionLog.open(tmp_path, cfg())
    assert log.end_offset_for_epoch(3) == (2, 16)
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n3\n0 0\n2 10\n5 16\n"
    log.truncate_to(12)
    assert log.end_offset_for_epoch(2) == (2, 12)
    assert log.end_offset_for_epoch(5) == (-1, -1)
    log.delete_records_before(4)
    assert log.end_offset_for_epoch(0) == (0, 10)
    log.flush()
    assert LeaderEpochCache.load(tmp_path).entries[0].start_offset == 4


def test_epoch_cache_from_preserved_batches(tmp_path):
    log = PartitionLog.open(tmp_path, cfg())
    log.append_preserving([make_batch(2, base_offset=0, leader_epoch=3),
                           make_batch(2, base_offset=2, leader_epoch=3),
                           make_batch(2, base_offset=7, leader_epoch=4)], now_ms=0)
    assert log.end_offset_for_epoch(3) == (3, 7)
    assert log.end_offset_for_epoch(1) == (1, 0)  # older than any known epoch


def test_epochs_missing_from_checkpoint_are_replayed_after_a_crash(tmp_path):
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    log.append([make_batch(2)], leader_epoch=1, now_ms=0)
    log.append([make_batch(2)], leader_epoch=3, now_ms=0)
    log.abandon()  # the checkpoint was never written
    assert not (tmp_path / "leader-epoch-checkpoint").exists()
    log = PartitionLog.open(tmp_path, cfg(segment_bytes=1 << 20))
    assert log.end_offset_for_epoch(1) == (1, 2)
    assert log.end_offset_for_epoch(3) == (3, 4)
    assert LeaderEpochCache.load(tmp_path).entries[-1].epoch == 3  # saved during open


def test_damaged_epoch_checkpoint_is_ignored(tmp_path):
    (tmp_path / "leader-epoch-checkpoint").write_text("0\n5\n1 2\n")
    assert LeaderEpochCache.load(tmp_path).entries == []
