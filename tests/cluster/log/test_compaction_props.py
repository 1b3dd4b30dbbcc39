"""Properties: random keyed writes, compaction at random points -> a consumer replaying the
log ends with the same value per key as a dict fed every write, and the log's records are
a subsequence of the written ones (offsets, keys and values unchanged). With transactions:
the same against the read_committed view, and producer state rebuilt from the compacted log
still sees exactly the transactions left open."""

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


# ---------------------------------------------------------------- with transactions
PIDS = [7, 8]
op = st.one_of(
    st.tuples(st.just("plain"), st.lists(record, min_size=1, max_size=3)),
    st.tuples(st.sampled_from(PIDS), st.lists(record, min_size=1, max_size=3)),  # txn data
    st.tuples(st.just("end"), st.tuples(st.sampled_from(PIDS), st.booleans())),  # commit?
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=60), segment_bytes=st.integers(200, 600))
def test_transactional_compaction_matches_the_read_committed_model(ops, segment_bytes) -> None:
    from cluster.broker.producer_state import PartitionProducers, marker_is_commit
    from cluster.log.cleaner import scan_transactions
    from cluster.wire.control import build_control_batch
    from cluster.wire.record_batch import read_header
    from cluster.wire.records import decode_batch

    from .test_compaction_helpers import batches

    with tempfile.TemporaryDirectory() as tmp:
        log = PartitionLog.open(Path(tmp), ccfg(segment_bytes=segment_bytes, delete_retention_ms=1_000))
        seq = {pid: 0 for pid in PIDS}
        pending: dict[int, list] = {}  # pid -> records of its open transaction
        committed_view: list = []  # (offset, key, value) a read_committed consumer gets
        for kind, arg in ops:
            if kind == "plain":
                base = append(log, arg)
                committed_view += [(base + i, k.encode(), v) for i, (k, v) in enumerate(arg)]
            elif kind == "end":
                pid, commit = arg
                if pid in pending:
                    log.append([build_control_batch(pid, 0, commit, 1, 5)], leader_epoch=0, now_ms=0)
                    if commit:
                        committed_view += pending[pid]
                    del pending[pid]
            else:
                base = append(log, arg, producer_id=kind, producer_epoch=0, base_sequence=seq[kind],
                              transactional=True)
                seq[kind] += len(arg)
                pending.setdefault(kind, []).extend(
                    (base + i, k.encode(), v) for i, (k, v) in enumerate(arg))
        open_first = {pid: recs[0][0] for pid, recs in pending.items()}
        model = replay(sorted(committed_view))

        for now in (10_000, 10**9):  # tombstones and markers kept, then past every horizon
            log.compact(now_ms=now)
            view = scan_transactions(log)
            got = []
            for b in batches(log):
                h, recs = decode_batch(b)
                if not h.is_control and view.outcome(h) in ("plain", "committed"):
                    got += [(r.offset, r.key, r.value) for r in recs]
            assert set(got) <= set(committed_view)
            state = replay(got)
            for k, v in model.items():
                assert state.get(k) == v
            producers = PartitionProducers()
            for b in batches(log):
                h = read_header(b)
                producers.record(h, marker_is_commit(b) if h.is_control else None)
            assert producers.txns.ongoing == open_first
        log.close()
