"""Many idle partitions stay cheap: one descriptor each plus a capped shared read cache."""

from __future__ import annotations

import os

from cluster.log import LogConfig, PartitionLog
from cluster.log.handles import READ_HANDLES, HandleCache

from .helpers import make_batch


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_thousand_idle_partitions_stay_small(tmp_path):
    batch = make_batch(5, value_size=60)
    fds_before, rss_before = open_fds(), rss_bytes()
    logs = []
    for i in range(1000):
        log = PartitionLog.open(tmp_path / f"topic-{i}", LogConfig())
        log.append([batch, batch], leader_epoch=0, now_ms=0)
        logs.append(log)
    assert open_fds() - fds_before <= 1000  # the active segment's descriptor only
    assert rss_bytes() - rss_before < 100 * 1024 * 1024  # no per-partition preallocation
    for log in logs:
        log.abandon()  # close() is tested elsewhere; skipping its fsyncs keeps this fast
    assert open_fds() - fds_before <= 0


def test_reads_of_many_inactive_segments_share_a_capped_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(READ_HANDLES, "capacity", 40)
    cfg = LogConfig(segment_bytes=2048, index_interval_bytes=256)
    batch = make_batch(5, value_size=60)
    fds_before = open_fds()
    logs = []
    for i in range(30):
        log = PartitionLog.open(tmp_path / f"topic-{i}", cfg)
        for _ in range(12):
            log.append([batch], leader_epoch=0, now_ms=0)
        logs.append(log)
    assert sum(log.segment_count - 1 for log in logs) > READ_HANDLES.capacity
    for log in logs:  # touch every inactive segment
        assert len(log.read(0, 1 << 20)) == 12 * len(batch)
        assert log.offset_for_timestamp(0) == (0, 1000)
    assert open_fds() - fds_before <= 30 + READ_HANDLES.capacity
    for log in logs:
        log.close()


def test_handle_cache_closes_least_recently_used(tmp_path):
    cache = HandleCache(capacity=2)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}"
        p.write_bytes(bytes([i]) * 4)
        paths.append(str(p))
    fd0 = cache.get(paths[0])
    cache.get(paths[1])
    assert cache.get(paths[0]) == fd0  # a hit refreshes recency
    cache.get(paths[2])  # evicts paths[1]
    assert len(cache) == 2
    assert os.pread(cache.get(paths[0]), 4, 0) == b"\x00" * 4
    cache.evict_under(str(tmp_path))
    assert len(cache) == 0
