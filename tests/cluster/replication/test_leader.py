"""LeaderPartition: follower progress, high watermark, ISR shrink/expand, acks=all rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from kio.schema.errors import ErrorCode

from cluster.replication.leader import AcksAll, LeaderPartition, ReplicationConfig
from cluster.replication.state import PartitionAssignment

LAG = 10_000


def assignment(isr=(1, 2, 3), replicas=(1, 2, 3), epoch=5, pepoch=7) -> PartitionAssignment:
    return PartitionAssignment(leader=1, leader_epoch=epoch, isr=tuple(isr), replicas=tuple(replicas),
                               partition_epoch=pepoch)


def leader(isr=(1, 2, 3), replicas=(1, 2, 3), min_isr=2, leo=0, hw=0, now=1_000_000) -> LeaderPartition:
    return LeaderPartition.become_leader(
        "t", 0, 1, assignment(isr, replicas), ReplicationConfig(LAG, min_isr),
        log_end_offset=leo, high_watermark=hw, now_ms=now)


def test_high_watermark_is_min_log_end_over_isr():
    lp = leader()
    assert lp.on_append(10, 1_000_001) is False  # followers' positions unknown yet
    assert lp.high_watermark == 0
    assert lp.on_follower_fetch(2, 10, 1_000_002) == (False, None)  # 3 still unknown
    moved, _ = lp.on_follower_fetch(3, 4, 1_000_003)
    assert moved and lp.high_watermark == 4
    lp.on_follower_fetch(3, 10, 1_000_004)
    assert lp.high_watermark == 10


def test_single_replica_high_watermark_is_log_end():
    lp = leader(isr=(1,), replicas=(1,), min_isr=2)  # effective min ISR = RF = 1
    assert lp.on_append(5, 1) and lp.high_watermark == 5
    assert lp.acks_all_precheck() == 0
    assert lp.acks_all_status(5) is AcksAll.DONE


def test_high_watermark_never_goes_backwards():
    lp = leader(leo=10, hw=8)
    lp.on_follower_fetch(2, 10, 1_000_001)
    lp.on_follower_fetch(3, 9, 1_000_001)
    assert lp.high_watermark == 9
    lp.on_follower_fetch(3, 3, 1_000_002)  # a follower that truncated: HW stays
    assert lp.high_watermark == 9


def test_new_leader_keeps_its_watermark_until_followers_fetch():
    lp = leader(leo=20, hw=12)
    assert lp.high_watermark == 12 and lp.epoch_start_offset == 20
    assert lp.visible_high_watermark is None  # below this epoch's start
    lp.on_follower_fetch(2, 20, 1_000_001)
    lp.on_follower_fetch(3, 20, 1_000_001)
    assert lp.high_watermark == 20 and lp.visible_high_watermark == 20


def test_lagging_follower_is_shrunk_after_lag_time_and_hw_then_advances():
    lp = leader()
    now = 1_000_000
    lp.on_append(5, now)
    lp.on_follower_fetch(2, 5, now)
    lp.on_follower_fetch(3, 5, now)
    assert lp.high_watermark == 5
    lp.on_append(9, now + 1)
    lp.on_follower_fetch(2, 9, now + 2)  # 3 stops fetching
    assert lp.high_watermark == 5
    assert lp.maybe_shrink_isr(now + LAG) is None  # exactly the lag: still in sync
    prop = lp.maybe_shrink_isr(now + LAG + 1)
    assert prop is not None and prop.isr_ids == (1, 2) and prop.partition_epoch == 7
    assert prop.leader_epoch == 5
    # Until the controller commits the shrink, replica 3 still holds the HW back.
    assert lp.high_watermark == 5 and lp.maybe_shrink_isr(now + LAG + 2) is None
    moved = lp.on_isr_committed(assignment((1, 2), pepoch=8), now + LAG + 3)
    assert moved and lp.high_watermark == 9


def test_caught_up_at_previous_fetch_counts():
    """A follower that keeps reaching where the leader was at its previous fetch is in
    sync even though the leader always moved on meanwhile (Kafka's lastFetchLeaderLogEndOffset)."""
    lp = leader()
    t = 1_000_000
    leo = 0
    for _ in range(10):
        leo += 10
        lp.on_append(leo, t)
        lp.on_follower_fetch(2, leo - 10, t, leader_leo=leo)
        lp.on_follower_fetch(3, leo - 10, t, leader_leo=leo)
        t += LAG // 2
    assert lp.maybe_shrink_isr(t) is None


def test_rejected_shrink_is_forgotten_and_retried():
    lp = leader()
    lp.on_append(3, 1_000_000)
    assert lp.maybe_shrink_isr(1_000_000 + LAG + 1) is not None
    lp.on_isr_rejected()
    again = lp.maybe_shrink_isr(1_000_000 + LAG + 2)
    assert again is not None and again.isr_ids == (1,)


def test_expand_when_caught_up_to_hw_and_epoch_start():
    lp = leader(isr=(1, 2), leo=10, hw=10)
    lp.on_follower_fetch(2, 10, 1_000_001)
    assert lp.on_follower_fetch(3, 6, 1_000_002) == (False, None)
    _, prop = lp.on_follower_fetch(3, 10, 1_000_003, broker_epoch=42)
    assert prop is not None and prop.isr_ids == (1, 2, 3)
    assert prop.new_isr[-1].broker_epoch == 42
    # in flight: the maximal ISR already counts 3, and nothing else is proposed
    assert 3 in lp.maximal_isr and lp.maybe_shrink_isr(1_000_000 + 10 * LAG) is None
    lp.on_isr_committed(assignment((1, 2, 3), pepoch=8), 1_000_004)
    assert lp.isr == (1, 2, 3) and lp.pending is None


def test_no_expand_below_epoch_start_even_at_hw():
    lp = leader(isr=(1, 2), leo=10, hw=4)  # new leader, HW learned as a follower
    assert lp.on_follower_fetch(3, 6, 1_000_001)[1] is None  # past HW 4 but before epoch start 10
    assert lp.on_follower_fetch(3, 10, 1_000_002)[1] is not None


def test_fenced_broker_does_not_join():
    lp = leader(isr=(1, 2), leo=10, hw=10)
    lp.fenced_brokers = frozenset({3})
    assert lp.on_follower_fetch(3, 10, 1_000_001)[1] is None


def test_acks_all_rules():
    lp = leader(isr=(1, 2, 3), min_isr=2)
    assert lp.acks_all_precheck() == 0
    lp.on_append(4, 1_000_000)
    assert lp.acks_all_status(4) is AcksAll.WAITING
    lp.on_follower_fetch(2, 4, 1_000_001)
    lp.on_follower_fetch(3, 4, 1_000_001)
    assert lp.acks_all_status(4) is AcksAll.DONE
    # ISR shrinks to the leader alone: refused before append, HW stops
    lp.on_isr_committed(assignment((1,), pepoch=8), 1_000_002)
    assert lp.acks_all_precheck() == ErrorCode.not_enough_replicas
    lp.on_append(6, 1_000_003)
    assert lp.high_watermark == 4  # KIP-966: no advance under min ISR


def test_acks_all_after_append_when_isr_shrank_while_waiting():
    lp = leader(isr=(1, 2), replicas=(1, 2, 3), min_isr=2)
    lp.on_append(4, 1_000_000)
    lp.on_follower_fetch(2, 4, 1_000_001)
    assert lp.acks_all_status(4) is AcksAll.DONE
    lp.on_append(8, 1_000_002)
    lp.on_isr_committed(assignment((1,), replicas=(1, 2, 3), pepoch=8), 1_000_003)
    # The produce at 8 can never be acknowledged now: the HW stays below it (the broker
    # times it out with REQUEST_TIMED_OUT, as Kafka's delayed produce does).
    assert lp.acks_all_status(8) is AcksAll.WAITING
    lp.on_follower_fetch(2, 8, 1_000_004)
    assert lp.high_watermark == 4


def test_not_enough_after_append_rule():
    lp = leader(isr=(1, 2), replicas=(1, 2), min_isr=2)
    lp.on_append(4, 1_000_000)
    lp.on_follower_fetch(2, 4, 1_000_001)
    lp.assignment = assignment((1,), replicas=(1, 2), pepoch=8)  # as a committed shrink leaves it
    assert lp.acks_all_status(4) is AcksAll.NOT_ENOUGH_REPLICAS_AFTER_APPEND


def test_stale_and_foreign_records():
    lp = leader()
    assert lp.on_isr_committed(assignment(pepoch=6), 1) is False
    assert lp.assignment.partition_epoch == 7
    with pytest.raises(ValueError):
        lp.on_isr_committed(assignment(epoch=6, pepoch=9), 1)
    with pytest.raises(KeyError):
        lp.on_follower_fetch(9, 0, 1)
    with pytest.raises(ValueError):
        ReplicationConfig(0, 1)
    with pytest.raises(ValueError):
        PartitionAssignment(leader=4, leader_epoch=0, isr=(1,), replicas=(1,), partition_epoch=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "f2", "f3", "tick", "commit"]),
                          st.integers(0, 20), st.integers(0, LAG)), max_size=60))
def test_high_watermark_invariants_over_any_interleaving(steps):
    """Whatever happens: HW never decreases, never passes the leader's log end nor the
    log end of any replica in the maximal ISR."""
    lp = leader(min_isr=2)
    now = 1_000_000
    leo = 0
    ends = {2: 0, 3: 0}
    last_hw = lp.high_watermark
    for kind, n, dt in steps:
        now += dt
        if kind == "append":
            leo += n
            lp.on_append(leo, now)
        elif kind in ("f2", "f3"):
            r = int(kind[1])
            ends[r] = min(leo, ends[r] + n)
            _, prop = lp.on_follower_fetch(r, ends[r], now)
            if prop is not None:
                lp.on_isr_committed(PartitionAssignment(1, 5, prop.isr_ids, (1, 2, 3),
                                                        lp.assignment.partition_epoch + 1), now)
        elif kind == "tick":
            prop = lp.maybe_shrink_isr(now)
            if prop is not None and n % 2:
                lp.on_isr_committed(PartitionAssignment(1, 5, prop.isr_ids, (1, 2, 3),
                                                        lp.assignment.partition_epoch + 1), now)
            elif prop is not None:
                lp.on_isr_rejected()
        hw = lp.high_watermark
        assert hw >= last_hw
        assert hw <= leo
        for r in lp.maximal_isr - {1}:
            assert hw <= max(ends[r], last_hw)
        last_hw = hw


def test_assignment_from_the_metadata_record():
    from cluster.metadata.model import PartitionState

    ps = PartitionState("t", 0, replicas=(1, 2, 3), isr=(2, 3), leader=2, leader_epoch=4, partition_epoch=9)
    assert PartitionAssignment.of(ps) == PartitionAssignment(2, 4, (2, 3), (1, 2, 3), 9)
