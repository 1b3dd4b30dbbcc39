"""Property: random keyed writes, compaction at random points -> a consumer replaying the
log ends with the same value per key as a dict fed every write, and the log's records are
a subsequence of the written ones (offsets, keys and values unchanged)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.log import PartitionLog

from .test_compaction_helpers import append, ccfg, records, replay

KEYS = [f"k{i}" for i in range(6)]
value = st.one_of(st.none(), st.binary(min_size=0, max_size=12))
record = st.tuples(st.sampled_from(KEYS), value)
batch = st.tuples(st.lists(record, min_size=1, max_size=4), st.integers(0, 4),
                  st.booleans())  # records, codec, idempotent producer
writes = st.lists(batch, min_size=1, max_size=60)


def _write(log: PartitionLog, batches, seq: list[int]) -> None:
    for pairs, codec, idempotent in batches:
        kw = {}
        if idempotent:
            kw = dict(producer_id=1, producer_epoch=0, base_sequence=seq[0])
            seq[0] += len(pairs)
        append(log, pairs, codec=codec, **kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes=writes, split=st.integers(0, 60), segment_bytes=st.integers(150, 600))
def test_compaction_matches_a_dict_model(writes, split, segment_bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cfg = ccfg(segment_bytes=segment_bytes, delete_retention_ms=1_000)
        log = PartitionLog.open(directory, cfg)
        seq = [0]
        _write(log, writes[:split], seq)
        log.compact(now_ms=10_000)
        _write(log, writes[split:], seq)
        written = records(log) if split == 0 else None
        log.compact(now_ms=10_000)
        after = records(log)

        # What was written, replayed: rebuild from the inputs (the first pass already ran).
        offset, original = 0, []
        for pairs, _, _ in writes:
            for k, v in pairs:
                original.append((offset, k.encode(), v))
                offset += 1
        if written is not None:
            assert written == original
        model = replay(original)

        assert set(after) <= set(original)
        assert [o for o, _, _ in after] == sorted({o for o, _, _ in after})
        assert replay(after) == model  # tombstones still within delete.retention.ms
        active = log.segments[-1].base_offset
        assert [r for r in after if r[0] >= active] == [r for r in original if r[0] >= active]
        below = [k for o, k, _ in after if o < active]
        assert len(below) == len(set(below))  # one record per key in the cleaned part
        assert log.log_end_offset == len(original)

        # Past every delete horizon, tombstones below the active segment go too.
        log.compact(now_ms=10**9)
        final = records(log)
        assert set(final) <= set(after)
        got = replay(final)
        for k, v in model.items():
            assert got.get(k) == v
        assert all(v is not None for o, _, v in final if o < active)

        # And all of it survives a crash-style reopen.
        log.abandon()
        reopened = PartitionLog.open(directory, cfg)
        assert records(reopened) == final
        reopened.close()
