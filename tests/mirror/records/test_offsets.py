"""The offset-sync store's stated invariants, checked against a simulated copier."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.records.offsets import (
    Checkpoint,
    OffsetRecordError,
    OffsetSync,
    OffsetSyncIndex,
    OffsetSyncStore,
    checkpoints_topic,
    decode_checkpoint,
    decode_sync,
    encode_checkpoint,
    encode_sync,
    offset_syncs_topic,
)


@dataclass
class Sim:
    """A copier mirroring one partition: the truth the store is checked against."""

    upstream_batches: list[tuple[int, int, list[int]]] = field(default_factory=list)  # base, next, offsets
    copies: dict[int, list[int]] = field(default_factory=dict)  # upstream offset -> downstream offsets
    syncs: list[OffsetSync] = field(default_factory=list)
    downstream_end: int = 0

    def copy(self, index: int, foreign_before: int) -> OffsetSync:
        """Produce upstream batch ``index`` downstream, after ``foreign_before`` other records."""
        base, nxt, offsets = self.upstream_batches[index]
        self.downstream_end += foreign_before
        d_base = self.downstream_end
        for i, up in enumerate(offsets):
            self.copies.setdefault(up, []).append(d_base + i)
        self.downstream_end += len(offsets)
        sync = OffsetSync("t", 0, base, d_base, nxt, self.downstream_end)
        self.syncs.append(sync)
        return sync

    def safe_limit(self, u: int) -> int:
        """The furthest downstream offset a group at ``u`` may resume from without losing a
        record: every upstream record >= u must have a copy at or after it."""
        later = [max(pos) for up, pos in self.copies.items() if up >= u]
        return min(later) if later else self.downstream_end


batch_shapes = st.lists(
    st.tuples(
        st.integers(0, 3),  # upstream gap before the batch (deleted batches, control records)
        st.integers(1, 6),  # upstream span of the batch
        st.integers(0, 2),  # foreign downstream records before it (other writers)
        st.data(),
    ),
    min_size=1,
    max_size=40,
)


def build(shapes: list, start: int, dstart: int) -> Sim:
    sim = Sim(downstream_end=dstart)
    u = start
    for gap, span, _, data in shapes:
        u += gap
        # compaction may remove records inside a batch, but never all of them
        offsets = sorted(data.draw(st.sets(st.integers(u, u + span - 1), min_size=1)))
        sim.upstream_batches.append((u, u + span, offsets))
        u += span
    return sim


def check_never_skips_and_monotonic(sim: Sim, store: OffsetSyncStore, lo: int, hi: int) -> None:
    previous = None
    for u in range(lo, hi):
        d = store.translate(u)
        if d is None:
            assert previous is None, "translation must not vanish above a translatable offset"
            continue
        assert d <= sim.safe_limit(u), f"translate({u}) = {d} would skip records"
        if previous is not None:
            assert d >= previous, "translation must be monotonic"
        previous = d


@settings(max_examples=150, deadline=None)
@given(batch_shapes, st.integers(0, 50), st.integers(0, 50))
def test_exact_at_boundaries_never_skips_and_monotonic(shapes: list, start: int, dstart: int) -> None:
    sim = build(shapes, start, dstart)
    store = OffsetSyncStore()
    for i, (_, _, foreign, _) in enumerate(shapes):
        store.add(sim.copy(i, foreign))
    first, last = sim.syncs[0], sim.syncs[-1]
    for sync in sim.syncs:
        assert store.translate(sync.upstream_offset) == sync.downstream_offset
        # inside a batch: that batch's start, so at most one batch is re-delivered
        for u in range(sync.upstream_offset, sync.upstream_next or 0):
            assert store.translate(u) == sync.downstream_offset
    assert store.translate(last.upstream_next or 0) == last.downstream_next
    assert store.translate((last.upstream_next or 0) + 1000) == last.downstream_next
    assert store.translate(first.upstream_offset - 1) is None
    check_never_skips_and_monotonic(sim, store, first.upstream_offset - 2, (last.upstream_next or 0) + 3)


@settings(max_examples=100, deadline=None)
@given(batch_shapes, st.integers(4, 12))
def test_bounded_memory_keeps_invariants(shapes: list, max_points: int) -> None:
    sim = build(shapes, 0, 0)
    store = OffsetSyncStore(max_points=max_points)
    for i, (_, _, foreign, _) in enumerate(shapes):
        store.add(sim.copy(i, foreign))
        assert len(store) <= max_points
    last = sim.syncs[-1]
    assert store.translate(last.upstream_offset) == last.downstream_offset
    assert store.translate(last.upstream_next or 0) == last.downstream_next
    first = sim.syncs[0]  # the oldest point survives thinning
    assert store.translate(first.upstream_offset) == first.downstream_offset
    check_never_skips_and_monotonic(sim, store, -1, (last.upstream_next or 0) + 3)


@settings(max_examples=100, deadline=None)
@given(batch_shapes, st.data())
def test_copier_rewinds_never_cause_skips(shapes: list, data: st.DataObject) -> None:
    """A restarted copier re-produces from an earlier batch: duplicates downstream, no loss."""
    sim = build(shapes, 0, 0)
    store = OffsetSyncStore()
    n = len(shapes)
    for i in range(n):
        store.add(sim.copy(i, shapes[i][2]))
    restart = data.draw(st.integers(0, n - 1))
    for i in range(restart, n):
        store.add(sim.copy(i, 0))
    last = sim.syncs[-1]
    assert store.translate(last.upstream_offset) == last.downstream_offset
    check_never_skips_and_monotonic(sim, store, -1, (last.upstream_next or 0) + 3)


@settings(max_examples=100, deadline=None)
@given(batch_shapes, st.data())
def test_forget_before_keeps_translation_for_groups_at_or_after(shapes: list, data: st.DataObject) -> None:
    sim = build(shapes, 0, 0)
    store = OffsetSyncStore()
    for i, (_, _, foreign, _) in enumerate(shapes):
        store.add(sim.copy(i, foreign))
    end = sim.syncs[-1].upstream_next or 0
    committed = data.draw(st.integers(0, end + 2))
    before = {u: store.translate(u) for u in range(committed, end + 3)}
    store.forget_before(committed)
    assert {u: store.translate(u) for u in range(committed, end + 3)} == before
    assert len(store) <= len(sim.syncs) * 2


def test_translation_examples() -> None:
    store = OffsetSyncStore()
    store.add(OffsetSync("t", 0, 100, 0, 110, 10))
    store.add(OffsetSync("t", 0, 110, 12, 120, 20))  # two foreign records at 10, 11
    assert store.translate(99) is None
    assert store.translate(100) == 0
    assert store.translate(105) == 0  # inside the first batch: re-deliver it
    assert store.translate(110) == 12  # the next batch's start wins over the previous end
    assert store.translate(119) == 12
    assert store.translate(120) == 20
    assert store.translate(500) == 20  # not copied yet: they will arrive after 20


def test_downstream_going_back_resets() -> None:
    store = OffsetSyncStore()
    store.add(OffsetSync("t", 0, 0, 50, 10, 60))
    store.add(OffsetSync("t", 0, 10, 0, 20, 10))  # target topic recreated
    assert store.points() == [(10, 0), (20, 10)]
    assert store.translate(5) is None


def test_invalid_syncs() -> None:
    with pytest.raises(ValueError):
        OffsetSync("t", 0, -1, 0)
    with pytest.raises(ValueError):
        OffsetSync("t", 0, 5, 5, 5, 6)
    with pytest.raises(ValueError):
        OffsetSync("t", 0, 5, 5, 6, None)
    with pytest.raises(ValueError):
        OffsetSyncStore(max_points=2)


def test_index_per_partition() -> None:
    index = OffsetSyncIndex()
    index.add_all([OffsetSync("a", 0, 0, 10, 5, 15), OffsetSync("a", 1, 0, 100, 5, 105), OffsetSync("b", 0, 7, 0)])
    assert index.translate("a", 0, 3) == 10
    assert index.translate("a", 1, 5) == 105
    assert index.translate("b", 0, 9) == 0
    assert index.translate("c", 0, 0) is None
    index.forget_before("a", 0, 5)
    assert index.store("a", 0) is not None and index.store("a", 0).points() == [(5, 15)]  # type: ignore[union-attr]
    index.drop_topic("a")
    assert index.translate("a", 0, 5) is None and index.translate("a", 1, 5) is None
    assert index.translate("b", 0, 9) == 0


# -- record encoding ---------------------------------------------------------------------

topics = st.text(min_size=1, max_size=60)
offsets = st.integers(0, 2**63 - 2)


@given(topics, st.integers(0, 2**31 - 1), offsets, offsets, st.booleans())
def test_sync_records_round_trip(topic: str, partition: int, up: int, down: int, with_next: bool) -> None:
    nxt = (up + 1, down + 1) if with_next else (None, None)
    sync = OffsetSync(topic, partition, up, down, *nxt)
    key, value = encode_sync(sync)
    assert decode_sync(key, value) == sync
    # newer writers may append fields within the same version
    assert decode_sync(key + b"\x00", value + b"\x01\x02") == sync


@given(offsets, st.integers(1, 2**62))
def test_a_sync_carries_its_possible_duplicates_and_old_values_read_as_zero(up: int, doubtful: int) -> None:
    sync = OffsetSync("t", 0, up, up, up + 1, up + 1, possible_duplicates=doubtful)
    key, value = encode_sync(sync)
    assert decode_sync(key, value) == sync
    plain_key, plain = encode_sync(OffsetSync("t", 0, up, up, up + 1, up + 1))
    assert value.startswith(plain) and decode_sync(plain_key, plain).possible_duplicates == 0


@given(st.text(max_size=40), topics, st.integers(0, 2**31 - 1), offsets, offsets,
       st.one_of(st.none(), st.text(max_size=100)), st.integers(0, 2**62))
def test_checkpoint_records_round_trip(group: str, topic: str, partition: int, up: int, down: int,
                                       metadata: str | None, ts: int) -> None:
    cp = Checkpoint(group, topic, partition, up, down, metadata, ts)
    key, value = encode_checkpoint(cp)
    assert decode_checkpoint(key, value) == cp


def test_record_keys_identify_the_partition() -> None:
    k1, _ = encode_sync(OffsetSync("t", 0, 1, 1))
    k2, _ = encode_sync(OffsetSync("t", 0, 9, 9))
    k3, _ = encode_sync(OffsetSync("t", 1, 1, 1))
    assert k1 == k2 != k3
    c1, _ = encode_checkpoint(Checkpoint("g", "t", 0, 1, 1))
    c2, _ = encode_checkpoint(Checkpoint("g", "t", 0, 5, 5, "m", 7))
    assert c1 == c2


def test_bad_records_are_refused_with_a_reason() -> None:
    key, value = encode_sync(OffsetSync("t", 0, 1, 2, 3, 4))
    with pytest.raises(OffsetRecordError, match="truncated"):
        decode_sync(key, value[:-3])
    with pytest.raises(OffsetRecordError, match="truncated"):
        decode_sync(key[:3], value)
    with pytest.raises(OffsetRecordError, match="version 7"):
        decode_sync(key, b"\x00\x07" + value[2:])
    ck, cv = encode_checkpoint(Checkpoint("g", "t", 0, 1, 1))
    with pytest.raises(OffsetRecordError, match="version"):
        decode_checkpoint(b"\x7f\x00" + ck[2:], cv)
    with pytest.raises(OffsetRecordError, match="UTF-8"):
        decode_checkpoint(b"\x00\x00\x00\x01\xff" + ck[5:], cv)


def test_topic_names() -> None:
    assert offset_syncs_topic("east-to-west") == "__dcmirror.offset-syncs.east-to-west"
    assert checkpoints_topic("east-to-west") == "__dcmirror.checkpoints.east-to-west"
