"""A decompression bomb already in a compacted log (written before every write path
validated, or planted on disk) meets the cleaner: decoding stops at the cap, the batch is
kept whole and out of the offset map, and the rest of the log is still cleaned."""

from __future__ import annotations

import resource
import struct

import cramjam

from cluster.log import PartitionLog
from cluster.log.cleaner import Cleaner
from cluster.wire.record_batch import CODEC_ZSTD, iter_batches
from tests.cluster.wire.malformed import reseal, with_payload

from .test_compaction_helpers import append, ccfg

MiB = 1 << 20


def _zstd_6gib_bomb() -> bytes:
    c = cramjam.zstd.Compressor(level=1)
    zeros = b"\0" * (64 * MiB)
    for _ in range(96):
        c.compress(zeros)
    b = bytearray(with_payload(b"", 1)[:61]) + bytes(c.finish())
    struct.pack_into(">h", b, 21, CODEC_ZSTD)
    return reseal(b)


def _batches(log: PartitionLog) -> dict[int, bytes]:
    data = memoryview(log.read(log.log_start_offset, 1 << 30))
    return {h.base_offset: bytes(data[pos:pos + h.size]) for pos, h in iter_batches(data)}


def _run_pass(log: PartitionLog):
    cleaner = Cleaner(log, check_interval_ms=0)
    for i in range(1000):
        if (stats := cleaner.step(10_000 + i, segments=100)) is not None:
            return stats
    raise AssertionError("the cleaning pass never finished")


def test_bomb_in_the_log_is_kept_and_the_rest_is_cleaned(tmp_path) -> None:
    bomb = _zstd_6gib_bomb()
    log = PartitionLog.open(tmp_path / "t-0", ccfg())
    append(log, [("a", "old"), ("b", "old")])
    bomb_offset = log.append([bomb], leader_epoch=0, now_ms=0).base_offset
    append(log, [("a", "new")])
    append(log, [("b", "new")])
    for i in range(12):  # unique keys: segments roll (400 bytes), so the above is cleanable
        append(log, [(f"f{i}", "x")])
    before = _batches(log)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = _run_pass(log)
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grew_mib < 300, f"peak RSS grew by {grew_mib:.0f} MiB"
    after = _batches(log)
    assert after[bomb_offset] == before[bomb_offset]  # byte for byte
    assert 0 not in after and stats.records_removed == 2  # a=old, b=old superseded
    assert set(after) == set(before) - {0}
    # A later pass meets the bomb again: still kept, and the new dirty data is cleaned.
    append(log, [("a", "newest")])
    for i in range(12):
        append(log, [(f"g{i}", "x")])
    assert _run_pass(log).records_removed == 1
    again = _batches(log)
    assert again[bomb_offset] == before[bomb_offset] and 3 not in again
