"""read_ranges: the Fetch read as file ranges gives read_limited's bytes and budget exactly.

Randomised over batch sizes (small and bigger than the header walk's chunk), segment
sizes, index intervals, offsets, byte limits, max_offset (high watermark / LSO) and
min_one; plus the descriptor budget, and ranges that outlive their log, a deleted segment,
a compaction-style rename over it and an in-place cut.
"""

from __future__ import annotations

import os
import random

import pytest

from cluster.log import LogConfig, PartitionLog
from cluster.log.file_range import RangeBudget
from cluster.log.read_ranges import read_ranges

from .helpers import make_batch


def joined(pieces) -> bytes:
    return b"".join(p.read() if hasattr(p, "read") else bytes(p) for p in pieces)


def close_all(pieces) -> None:
    for p in pieces:
        if hasattr(p, "close"):
            p.close()


def random_log(tmp_path, rng: random.Random, name: str) -> PartitionLog:
    sizes = [rng.choice((1, 10, 100, 900, 5000, 40_000)) for _ in range(rng.randint(1, 60))]
    log = PartitionLog.open(tmp_path / name, LogConfig(
        segment_bytes=rng.choice((2_000, 20_000, 100_000, 1 << 30)),
        index_interval_bytes=rng.choice((0, 100, 4096, 50_000))))
    for i, size in enumerate(sizes):
        log.append([make_batch(rng.randint(1, 3), value_size=size, tag=i)], leader_epoch=0, now_ms=0)
    return log


@pytest.mark.parametrize("seed", range(int(os.environ.get("READ_RANGES_SEEDS", "12"))))
def test_ranges_equal_read_limited(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    log = random_log(tmp_path, rng, f"t-{seed}")
    budget = RangeBudget(10_000)
    try:
        leo = log.log_end_offset
        for _ in range(150):
            offset = rng.randint(0, leo)
            max_bytes = rng.choice((0, 1, 61, 500, 3_000, 20_000, 100_000, 1 << 30))
            max_offset = rng.choice((None, leo, rng.randint(0, leo)))
            min_one = rng.random() < 0.7
            want = log.read_limited(offset, max_bytes, max_offset=max_offset, min_one=min_one)
            pieces, used = read_ranges(log, offset, max_bytes, max_offset=max_offset,
                                       min_one=min_one, budget=budget)
            assert (joined(pieces), used) == (bytes(want[0]), want[1]), \
                (offset, max_bytes, max_offset, min_one)
            close_all(pieces)
        assert budget.count == 0
    finally:
        log.close()


def test_budget_spent_gives_bytes_and_released_ranges_free_descriptors(tmp_path) -> None:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(segment_bytes=3_000))
    for i in range(20):
        log.append([make_batch(1, value_size=900, tag=i)], leader_epoch=0, now_ms=0)
    budget = RangeBudget(2)
    try:
        close_all(read_ranges(log, 0, 1 << 20, budget=budget)[0])  # the shared read handles
        fds_before = len(os.listdir("/proc/self/fd"))
        pieces, _ = read_ranges(log, 0, 1 << 20, budget=budget)
        assert len(pieces) > 2  # several segments
        kinds = [type(p).__name__ for p in pieces]
        assert kinds[:2] == ["FileRange", "FileRange"] and set(kinds[2:]) == {"bytes"}
        assert budget.count == 2 and budget.refused == 2 * (len(pieces) - 2)
        assert joined(pieces) == bytes(log.read_limited(0, 1 << 20)[0])
        close_all(pieces)
        assert budget.count == 0
        for _ in range(200):
            pieces, _ = read_ranges(log, 0, 1 << 20, budget=budget)
            close_all(pieces)
        assert len(os.listdir("/proc/self/fd")) == fds_before
    finally:
        log.close()


def test_a_range_outlives_close_delete_rename_but_not_an_in_place_cut(tmp_path) -> None:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(segment_bytes=3_000))
    for i in range(10):
        log.append([make_batch(1, value_size=900, tag=i)], leader_epoch=0, now_ms=0)
    budget = RangeBudget(100)
    first, _ = read_ranges(log, 0, 1 << 20, budget=budget)
    want_first = joined(first)
    path = first[0].path
    log.close()  # as the LogPool closes a log under its descriptor budget
    os.rename(path, path + ".old")  # the cleaner renames a cleaned file over the name
    with open(path, "wb") as f:
        f.write(b"x" * 5000)
    assert joined(first) == want_first and first[0].valid
    os.unlink(path)  # retention deletes the file
    assert joined(first) == want_first and first[0].valid
    os.rename(path + ".old", path)
    close_all(first)

    # An in-place cut (DcMirrorTruncate) marks the ranges past it invalid, not the others.
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(segment_bytes=3_000))
    head, _ = read_ranges(log, 0, 1, budget=budget)
    tail, _ = read_ranges(log, 7, 1 << 20, budget=budget)  # batches 7-8, then segment 9
    assert tail[0].valid and head[0].valid
    log.truncate_to(8)  # segment 9 deleted, segment 6-8 cut in place at batch 8
    assert not tail[0].valid and head[0].valid
    close_all(head)
    close_all(tail)
    assert budget.count == 0
    log.close()
