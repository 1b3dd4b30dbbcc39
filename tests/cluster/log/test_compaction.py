"""Log compaction without sockets: batch filtering rules, then whole cleaning passes on logs."""

from __future__ import annotations

import os

import pytest

from cluster.log import PartitionLog
from cluster.log import cleaner as cleaner_mod
from cluster.log.cleaner import CHECKPOINT_FILE, Cleaner, CleanerCheckpoint
from cluster.log.compaction import OffsetMap, TxnView, filter_batch, has_keyless_record
from cluster.wire.batch_builder import build_batch
from cluster.wire.control import build_control_batch
from cluster.wire.record_batch import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    read_header,
    set_base_offset,
    validate,
)
from cluster.wire.records import decode_batch, decode_records

from .test_compaction_helpers import append, batches, ccfg, keyed, records, replay

CODECS = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]


def at(batch: bytes, base: int) -> bytes:
    buf = bytearray(batch)
    set_base_offset(buf, base)
    return bytes(buf)


def mapped(*batches_: bytes) -> OffsetMap:
    m = OffsetMap()
    for b in batches_:
        m.add_batch(read_header(b), b)
    return m


# ---------------------------------------------------------------- batch level
def test_batch_without_superseded_records_is_returned_as_is() -> None:
    b = at(keyed([("a", "1"), ("b", "2")]), 10)
    f = filter_batch(read_header(b), b, mapped(b), now_ms=0, horizon_ms=None, keep_header=False)
    assert not f.changed and f.data is b and f.removed == 0


@pytest.mark.parametrize("codec", CODECS)
def test_rebuilt_batch_keeps_identity_offsets_timestamps_and_codec(codec: int) -> None:
    old = at(build_batch([(b"a", b"1", [("h", b"x")], 5_000), (b"b", b"2", None, 4_000),
                          (b"c", b"3", None, 6_000), (b"d", b"4", None, 7_000)],
                         codec=codec, producer_id=77, producer_epoch=3, base_sequence=40,
                         partition_leader_epoch=9), 100)
    newer = at(keyed([("b", "new"), ("d", "new")]), 200)
    h = read_header(old)
    f = filter_batch(h, old, mapped(old, newer), now_ms=0, horizon_ms=None, keep_header=False)
    assert f.changed and f.kept == 2 and f.removed == 2
    nh = validate(f.data)  # CRC and framing
    for field in ("base_offset", "last_offset_delta", "partition_leader_epoch", "attributes",
                  "base_timestamp", "producer_id", "producer_epoch", "base_sequence"):
        assert getattr(nh, field) == getattr(h, field), field
    assert nh.compression == codec and nh.records_count == 2
    assert nh.max_timestamp == 6_000  # recomputed over what is left (CreateTime)
    _, recs = decode_batch(f.data)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in recs] == [
        (100, 5_000, b"a", b"1", (("h", b"x"),)), (102, 6_000, b"c", b"3", ()),
    ]


def test_log_append_time_batch_keeps_its_max_timestamp() -> None:
    old = build_batch([(b"a", b"1", None, 10), (b"b", b"2", None, 20)], log_append_time=True)
    buf = bytearray(old)
    from cluster.wire.record_batch import set_max_timestamp_log_append

    set_max_timestamp_log_append(buf, 99_999)
    old = bytes(buf)
    f = filter_batch(read_header(old), old, mapped(keyed([("b", "x")], base_offset=5)),
                     now_ms=0, horizon_ms=None, keep_header=False)
    assert read_header(f.data).max_timestamp == 99_999
    assert decode_batch(f.data)[1][0].timestamp == 99_999


def test_emptied_batch_disappears_unless_it_is_a_producers_last() -> None:
    old = at(keyed([("a", "1"), ("a", "2")], codec=CODEC_GZIP, producer_id=5, producer_epoch=1,
                   base_sequence=10), 50)
    m = mapped(at(keyed([("a", "3")]), 60))
    h = read_header(old)
    assert filter_batch(h, old, m, now_ms=0, horizon_ms=None, keep_header=False).data is None
    f = filter_batch(h, old, m, now_ms=0, horizon_ms=None, keep_header=True)
    nh = validate(f.data)
    assert nh.records_count == 0 and nh.compression == CODEC_NONE
    assert (nh.base_offset, nh.last_offset, nh.producer_id, nh.producer_epoch, nh.last_sequence) == (
        50, 51, 5, 1, 11)
    assert decode_records(f.data) == []


def test_keyless_records_are_dropped_and_detected() -> None:
    b = build_batch([(None, b"x", None, 1), (b"k", b"v", None, 2)])
    assert has_keyless_record(b) and not has_keyless_record(keyed([("k", "v")]))
    f = filter_batch(read_header(b), b, mapped(b), now_ms=0, horizon_ms=None, keep_header=False)
    assert [r.key for r in decode_records(f.data)] == [b"k"]


def test_tombstones_stay_until_their_horizon() -> None:
    b = keyed([("a", None), ("b", "1")])
    h, m = read_header(b), mapped(b)
    kept = filter_batch(h, b, m, now_ms=100, horizon_ms=None, keep_header=False)
    assert not kept.changed and kept.tombstones == 1
    assert filter_batch(h, b, m, now_ms=100, horizon_ms=101, keep_header=False).tombstones == 1
    gone = filter_batch(h, b, m, now_ms=101, horizon_ms=101, keep_header=False)
    assert [r.key for r in decode_records(gone.data)] == [b"b"] and gone.tombstones == 0


def test_transaction_outcomes_decide_what_maps_and_what_goes() -> None:
    def txn(pid: int, key: str, value: str, base: int) -> bytes:
        return at(keyed([(key, value)], producer_id=pid, producer_epoch=0, base_sequence=0,
                        transactional=True), base)

    log = [
        at(keyed([("a", "plain")]), 5),
        txn(9, "a", "aborted", 10), build_control_batch(9, 0, False, 1, 5, base_offset=11),
        txn(8, "a", "committed", 12), build_control_batch(8, 0, True, 1, 5, base_offset=13),
        txn(7, "a", "open", 14),
    ]
    view = TxnView()
    for b in log:
        view.feed(read_header(b), b)
    outcomes = [view.outcome(read_header(b)) for b in log]
    assert outcomes == ["plain", "aborted", "marker", "committed", "marker", "unknown"]
    assert view.first_unstable == 14 and view.marker_data == {11: [10], 13: [12]}
    m = OffsetMap()
    for b, o in zip(log, outcomes):
        m.add_batch(read_header(b), b, o)
    assert m.latest == {b"a": 12}  # the aborted and the open value supersede nothing
    aborted = log[1]
    h = read_header(aborted)
    assert filter_batch(h, aborted, m, now_ms=0, horizon_ms=None, keep_header=False,
                        outcome="aborted").data is None
    empty = filter_batch(h, aborted, m, now_ms=0, horizon_ms=None, keep_header=True, outcome="aborted")
    assert read_header(empty.data).records_count == 0 and read_header(empty.data).is_transactional
    for b, o in zip(log[2:], outcomes[2:]):
        if o != "committed":
            f = filter_batch(read_header(b), b, m, now_ms=0, horizon_ms=None, keep_header=False, outcome=o)
            assert f.data is b


# ---------------------------------------------------------------- log level
def build_log(tmp_path, n: int = 60, keys: int = 4, **kw) -> tuple[PartitionLog, list]:
    log = PartitionLog.open(tmp_path, ccfg(**kw))
    for i in range(n):
        append(log, [(f"k{i % keys}", f"v{i}")], codec=CODECS[i % len(CODECS)], ts=1_000 + i)
    return log, records(log)


def test_pass_keeps_latest_per_key_offsets_unchanged_active_untouched(tmp_path) -> None:
    log, before = build_log(tmp_path)
    active_base = log.segments[-1].base_offset
    active_before = [r for r in before if r[0] >= active_base]
    stats = log.compact(now_ms=10_000)
    assert stats is not None and stats.records_removed > 0 and stats.first_dirty == active_base
    after = records(log)
    assert set(after) <= set(before)  # same (offset, key, value): nothing rewritten
    assert [o for o, _, _ in after] == sorted({o for o, _, _ in after})
    cleaned = [r for r in after if r[0] < active_base]
    assert len({k for _, k, _ in cleaned}) == len(cleaned)  # one record per key below the active segment
    assert [r for r in after if r[0] >= active_base] == active_before
    assert replay(after) == replay(before)
    assert log.log_end_offset == before[-1][0] + 1
    for b in batches(log):  # codecs survive the rebuild
        h = read_header(b)
        assert h.compression == CODECS[(h.base_offset) % len(CODECS)] or h.records_count == 0


def test_unchanged_batches_are_byte_identical(tmp_path) -> None:
    log = PartitionLog.open(tmp_path, ccfg())
    for i in range(30):  # offsets 2i (unique key) and 2i+1 ("hot")
        append(log, [(f"unique{i}", f"v{i}"), ("hot", f"h{i}")], codec=CODEC_ZSTD)
    for i in range(30):  # offsets 60..89, nothing superseded
        append(log, [(f"other{i}", "x")], codec=CODEC_LZ4)
    raw_before = batches(log)
    log.compact(now_ms=10_000)
    after = {read_header(b).base_offset: b for b in batches(log)}
    assert len(after) == len(raw_before)
    for b in raw_before:
        base = read_header(b).base_offset
        if base < 58:  # lost its "hot" record: rebuilt, still zstd
            nh = read_header(after[base])
            assert nh.records_count == 1 and nh.compression == CODEC_ZSTD and nh.last_offset == base + 1
        else:  # holds the latest "hot", or nothing superseded: the very same bytes
            assert after[base] == b


def test_nothing_to_do_the_second_time_and_small_segments_merge(tmp_path) -> None:
    log, _ = build_log(tmp_path, n=80)
    assert log.compact(now_ms=10_000) is not None
    segments_after_first = log.segment_count
    assert log.compact(now_ms=10_000) is None  # nothing dirty, no horizon due
    for i in range(80, 120):
        append(log, [(f"k{i % 4}", f"v{i}")], ts=1_000 + i)
    before = records(log)
    assert log.compact(now_ms=10_000) is not None
    assert log.segment_count < segments_after_first + 5  # cleaned leftovers were merged
    assert replay(records(log)) == replay(before)


def test_reopen_after_compaction_clean_and_unclean(tmp_path) -> None:
    log, _ = build_log(tmp_path)
    log.compact(now_ms=10_000)
    expected = records(log)
    log.close()
    log = PartitionLog.open(tmp_path, ccfg())
    assert records(log) == expected
    for off, _, _ in expected:  # indexes of the new segments point at the right batches
        assert log.read(off, 1)[:8] != b""
    log.abandon()
    log = PartitionLog.open(tmp_path, ccfg())
    assert records(log) == expected
    r = append(log, [("k0", "after")])
    assert r == expected[-1][0] + 1


def test_tombstones_removed_after_delete_retention(tmp_path) -> None:
    log = PartitionLog.open(tmp_path, ccfg(delete_retention_ms=1_000))
    for i in range(20):
        append(log, [(f"k{i % 3}", f"v{i}")])
    append(log, [("k0", None)])
    for i in range(20):
        append(log, [("filler", f"f{i}")])
    log.compact(now_ms=5_000)
    assert (b"k0", None) in [(k, v) for _, k, v in records(log)]
    horizons = CleanerCheckpoint.load(tmp_path).horizons
    assert list(horizons.values()) == [6_000]
    assert log.compact(now_ms=5_999) is None  # horizon not reached: no pass due
    assert log.compact(now_ms=6_000) is not None
    after = records(log)
    assert b"k0" not in {k for _, k, _ in after}
    assert replay(after) == {k: v for k, v in replay(records(log)).items() if v is not None}
    assert CleanerCheckpoint.load(tmp_path).horizons == {}


def test_min_compaction_lag_protects_recent_segments(tmp_path) -> None:
    log = PartitionLog.open(tmp_path, ccfg(min_compaction_lag_ms=500))
    for i in range(40):
        append(log, [("k", f"v{i}")], ts=1_000 + i * 100)  # ts up to 4_900
    before = records(log)
    stats = log.compact(now_ms=3_000)
    assert stats is not None
    young = [r for r in before if r[0] >= stats.first_dirty]
    assert young and [r for r in records(log) if r[0] >= stats.first_dirty] == young
    assert all(1_000 + o * 100 <= 3_000 - 500 or o >= stats.first_dirty for o, _, _ in records(log))


def test_dirty_ratio_gates_a_pass(tmp_path) -> None:
    log, _ = build_log(tmp_path, n=60)
    log.compact(now_ms=10_000)
    log.update_config(ccfg(min_cleanable_dirty_ratio=0.9))
    for i in range(20):
        append(log, [(f"k{i % 4}", f"w{i}")])
    assert log.compact(now_ms=10_000) is None
    log.update_config(ccfg(min_cleanable_dirty_ratio=0.9, max_compaction_lag_ms=1))
    assert log.compact(now_ms=10_000) is not None  # the first dirty batch is older than max lag


def test_retention_only_with_delete_policy(tmp_path) -> None:
    log, _ = build_log(tmp_path, retention_ms=1)
    n = log.segment_count
    assert log.apply_retention(now_ms=10**12) == 0 and log.segment_count == n
    log.update_config(ccfg(retention_ms=1, delete=True))
    assert log.apply_retention(now_ms=10**12) == n - 1


def test_producers_last_batch_survives_as_empty(tmp_path) -> None:
    log = PartitionLog.open(tmp_path, ccfg())
    for seq in range(0, 40, 2):
        append(log, [("a", f"p{seq}"), ("b", f"p{seq}")], producer_id=7, producer_epoch=0,
               base_sequence=seq)
    for i in range(20):
        append(log, [("a", f"x{i}"), ("b", f"x{i}")])  # supersedes every producer record
    log.compact(now_ms=10_000)
    mine = [read_header(b) for b in batches(log) if read_header(b).producer_id == 7]
    assert len(mine) == 1 and mine[0].records_count == 0 and mine[0].last_sequence == 39


def test_cleaner_steps_and_abandons_when_the_log_changes(tmp_path) -> None:
    log, before = build_log(tmp_path, n=80)
    c = Cleaner(log, check_interval_ms=0)
    assert c.step(10_000, segments=1) is None  # one segment mapped, pass in progress
    append(log, [("k1", "during")])  # appends are fine
    log.delete_records_before(log.segments[1].base_offset)  # the first segment vanishes
    assert c.step(10_000, segments=1000) is None  # abandoned
    assert not [p for p in os.listdir(tmp_path) if p.endswith((".cleaned", ".swap"))]
    assert c.step(10_001, segments=1000) is not None  # a fresh pass completes
    assert records(log)[-1] == (before[-1][0] + 1, b"k1", b"during")


def test_unreadable_checkpoint_means_everything_is_dirty(tmp_path) -> None:
    log, before = build_log(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_text("{garbage")
    assert log.compact(now_ms=10_000) is not None
    assert replay(records(log)) == replay(before)
    assert cleaner_mod.CleanerCheckpoint.load(tmp_path).first_dirty == log.segments[-1].base_offset


def test_transactions_aborted_data_goes_markers_follow_open_txn_untouched(tmp_path) -> None:
    from cluster.broker.producer_state import PartitionProducers, marker_is_commit

    log = PartitionLog.open(tmp_path, ccfg(delete_retention_ms=1_000))
    seq = {9: 0, 8: 0, 7: 0}

    def txn(pid: int, pairs) -> int:
        base = append(log, pairs, producer_id=pid, producer_epoch=0, base_sequence=seq[pid],
                      transactional=True)
        seq[pid] += len(pairs)
        return base

    def marker(pid: int, commit: bool) -> int:
        return log.append([build_control_batch(pid, 0, commit, 1, 5)], leader_epoch=0, now_ms=0).base_offset

    append(log, [("a", "plain-a"), ("b", "plain-b")])
    aborted = [txn(9, [("a", "ABORTED"), ("x", "ABORTED")])]
    abort_marker = marker(9, False)
    committed = txn(8, [("b", "committed-b"), ("c", "committed-c")])
    commit_marker = marker(8, True)
    txn(9, [("d", "committed-d")])
    last_marker_9 = marker(9, True)
    for i in range(10):
        append(log, [("c", f"plain-c{i}")])  # supersedes the committed c
    open_first = txn(7, [("a", "OPEN")])
    for i in range(30):
        append(log, [("a", f"late{i}")])
    before = records(log)
    log.compact(now_ms=10_000)
    after = records(log)
    assert all(o < open_first or (o, k, v) in after for o, k, v in before)  # beyond the LSO: untouched
    assert b"ABORTED" not in {v for _, _, v in after}
    cleaned = {(k, v) for o, k, v in after if o < open_first}
    assert {(b"b", b"committed-b"), (b"d", b"committed-d"), (b"c", b"plain-c9")} <= cleaned
    assert (b"a", b"plain-a") in cleaned  # the aborted and the open "a" supersede nothing
    bases = {read_header(b).base_offset for b in batches(log)}
    assert aborted[0] not in bases and abort_marker in bases  # marker waits for its horizon
    assert committed in bases and commit_marker in bases
    log.compact(now_ms=11_000)
    bases = {read_header(b).base_offset for b in batches(log)}
    assert abort_marker not in bases  # its transaction has no batch left, horizon passed
    assert commit_marker in bases and last_marker_9 in bases  # data left / producer's last batch

    state = PartitionProducers()  # producer state rebuilt from the compacted log
    for b in batches(log):
        h = read_header(b)
        state.record(h, marker_is_commit(b) if h.is_control else None)
    assert state.txns.ongoing == {7: open_first}
    assert state.producers[9].epoch == 0


def test_truncation_forgets_the_cleaner_checkpoint(tmp_path) -> None:
    log, _ = build_log(tmp_path, delete_retention_ms=1_000)
    append(log, [("k0", None)])
    for i in range(20):
        append(log, [("filler", f"f{i}")])
    log.compact(now_ms=10_000)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    log.truncate_to(log.segments[-2].base_offset)
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    before = records(log)
    log.compact(now_ms=10_000)  # everything dirty again: still correct
    assert replay(records(log)) == replay(before)


def test_delete_and_compact_both_apply(tmp_path) -> None:
    log = PartitionLog.open(tmp_path, ccfg(delete=True, retention_ms=5_000))
    for i in range(40):
        append(log, [(f"k{i % 3}", f"old{i}")], ts=1_000)
    for i in range(40):
        append(log, [(f"k{i % 3}", f"new{i}")], ts=100_000 + i)
    assert log.compact(now_ms=100_000) is not None  # compaction: one record per key left below
    assert log.apply_retention(now_ms=100_000) > 0  # retention: the segments of old data go
    after = records(log)
    assert after and all(v.startswith(b"new") for _, _, v in after)
    assert log.log_start_offset == log.segments[0].base_offset
    for i in range(40):
        append(log, [(f"k{i % 3}", f"newer{i}")], ts=200_000 + i)
    before = records(log)
    assert log.compact(now_ms=200_000) is not None  # the checkpoint below the new log start is fine
    assert replay(records(log)) == replay(before)


def test_a_pass_yields_inside_big_segments(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cleaner_mod, "STEP_BYTES", 200)
    log, before = build_log(tmp_path, n=80)
    steps = 0
    gen = cleaner_mod.clean_steps(log, 10_000)
    while True:
        try:
            next(gen)
            steps += 1
        except StopIteration as stop:
            assert stop.value is not None
            break
    assert steps > 2 * (log.segment_count)  # more than one step per segment and phase
    assert replay(records(log)) == replay(before)
