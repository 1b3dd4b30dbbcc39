"""Index encodings: round trips, damage detection, and on-disk lookups matching in-memory ones."""

from __future__ import annotations

import os

from cluster.log import index as ix


def test_offset_index_round_trip_and_lookup(tmp_path):
    idx = ix.OffsetIndex.empty()
    for rel, pos in [(3, 100), (9, 250), (20, 600)]:
        idx.append(rel, pos)
    data = idx.to_bytes()
    again = ix.OffsetIndex.from_bytes(data, log_size=1000)
    assert again is not None and list(again.rel) == [3, 9, 20]
    path = tmp_path / "x.index"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for rel in range(0, 30):
            assert ix.file_offset_lookup(fd, len(data), rel) == idx.lookup(rel)
        assert ix.quick_check_offset_file(fd, len(data), 1000)
        assert not ix.quick_check_offset_file(fd, len(data), 600)  # points past the log end
    finally:
        os.close(fd)
    assert idx.lookup(2) == 0 and idx.lookup(9) == 250 and idx.lookup(19) == 250


def test_offset_index_rejects_damage():
    idx = ix.OffsetIndex.empty()
    idx.append(5, 10)
    idx.append(4, 20)  # offsets going backwards
    assert ix.OffsetIndex.from_bytes(idx.to_bytes(), 100) is None
    assert ix.OffsetIndex.from_bytes(b"\x00" * 7, 100) is None


def test_time_index_only_records_new_maxima(tmp_path):
    ti = ix.TimeIndex.empty()
    for ts, rel in [(100, 0), (90, 1), (100, 2), (150, 3), (400, 9)]:
        ti.maybe_append(ts, rel)
    assert list(ti.ts) == [100, 150, 400]
    assert ti.lookup(100) is None and ti.lookup(101) == 0 and ti.lookup(401) == 9
    data = ti.to_bytes()
    path = tmp_path / "x.timeindex"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for ts in (0, 100, 120, 150, 151, 500):
            assert ix.file_time_lookup(fd, len(data), ts) == ti.lookup(ts)
        assert ix.file_last_time_entry(fd, len(data)) == (400, 9)
    finally:
        os.close(fd)
    ti.truncate_to_offset(3)
    assert list(ti.rel) == [0]
