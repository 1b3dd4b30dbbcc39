"""PartitionLog.read_limited: the Fetch read, byte-bounded at batch boundaries.

What a Fetch partition consumes of its budget (the byte range read, partial tail included,
as Kafka counts it), the KIP-74 exception only with min_one, and that only the needed byte
range of a segment is ever read from disk or held in memory.
"""

from __future__ import annotations

import pytest

from cluster.log import LogConfig, PartitionLog
from cluster.log import segment as segment_module
from cluster.wire.record_batch import iter_batches

from .helpers import make_batch


def bases(data) -> list[int]:
    return [h.base_offset for _, h in iter_batches(data, allow_partial_tail=False)]


@pytest.fixture
def log(tmp_path):
    """40 batches of 1 record (all the same size) in segments of ~10 batches."""
    one = make_batch(1, value_size=1000)
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(segment_bytes=10 * len(one) + 1,
                                                         index_interval_bytes=2 * len(one)))
    for _ in range(40):
        log.append([one], leader_epoch=0, now_ms=0)
    assert log.segment_count == 4
    yield log
    log.close()


def size_of(log) -> int:
    return len(log.read(0, 1))


def test_consumed_counts_the_partial_tail_but_data_is_whole_batches(log) -> None:
    S = size_of(log)
    data, used = log.read_limited(0, 3 * S + S // 2)
    assert bases(data) == [0, 1, 2]
    assert used == 3 * S + S // 2
    # Cut without a copy: the view pins its read buffer, which is exactly what was counted.
    assert isinstance(data, memoryview) and len(data.obj) == used
    data, used = log.read_limited(0, 3 * S)
    assert (bases(data), used) == ([0, 1, 2], 3 * S)


def test_min_one_is_the_only_way_past_the_limit(log) -> None:
    S = size_of(log)
    data, used = log.read_limited(5, S // 2)
    assert (bases(data), used) == ([5], S)
    assert log.read_limited(5, S // 2, min_one=False) == (b"", 0)
    assert log.read_limited(5, 0, min_one=False) == (b"", 0)
    data, used = log.read_limited(5, S, min_one=False)
    assert (bases(data), used) == ([5], S)


def test_max_offset_cut_holds_only_what_it_returns(log) -> None:
    S = size_of(log)
    data, used = log.read_limited(0, 8 * S, max_offset=3)
    assert bases(data) == [0, 1, 2]
    assert used == 3 * S == len(data)
    assert isinstance(data, bytes)  # copied out of the 8 S read buffer, which is freed
    assert log.read_limited(3, 8 * S, max_offset=3) == (b"", 0)


def test_reads_across_segments_within_the_limit(log) -> None:
    S = size_of(log)
    data, used = log.read_limited(8, 5 * S)
    assert bases(data) == [8, 9, 10, 11, 12]
    assert used == 5 * S


def test_only_the_needed_byte_range_is_read(log, monkeypatch) -> None:
    S = size_of(log)
    reads: list[tuple[int, int]] = []
    real = segment_module.pread_exact

    def spy(fd: int, n: int, pos: int) -> bytes:
        reads.append((n, pos))
        return real(fd, n, pos)

    monkeypatch.setattr(segment_module, "pread_exact", spy)
    data, _ = log.read_limited(25, 2 * S)
    assert bases(data) == [25, 26]
    # The offset index put the scan next to offset 25 (not the segment start) and the data
    # read is exactly the 2 S range; the locate scan reads at most one 64 KiB chunk.
    data_reads = [r for r in reads if r[0] == 2 * S]
    assert data_reads and all(pos > 0 for _, pos in data_reads)
    assert all(n <= max(2 * S, segment_module.LOCATE_CHUNK) for n, _ in reads)
    assert sum(n for n, _ in reads) < 10 * S  # far less than the segment
