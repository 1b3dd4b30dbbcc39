"""The transaction coordinator as a pure state machine: no sockets, no clock, no disk."""

from __future__ import annotations

import itertools

import pytest
from kio.schema.errors import ErrorCode as E

from cluster.txn.machine import TxnMachine
from cluster.txn.model import (
    CommitOffsets, Complete, PendingOffset, Persist, TxnMetadata, TxnState, WriteMarkers,
)

TID = "app-1"


def machine() -> TxnMachine:
    return TxnMachine(itertools.count(1000).__next__)


def run(m: TxnMachine, effects: list, now: int = 0) -> list:
    """Carry out effects as the driver would; returns every effect seen, in order."""
    seen = []
    for e in effects:
        seen.append(e)
        if isinstance(e, Complete):
            seen += run(m, m.complete(e.transactional_id, now), now)
    return seen


def init(m: TxnMachine, pid: int = -1, epoch: int = -1, timeout: int = 60_000, version: int = 4):
    res, effects = m.init_producer_id(TID, timeout, pid, epoch, 0, version)
    run(m, effects)
    return res


def test_new_id_then_epoch_bumps_fence_the_old_producer() -> None:
    m = machine()
    first = init(m)
    assert (first.error, first.producer_id, first.producer_epoch) == (E.none, 1000, 0)
    second = init(m)
    assert (second.producer_id, second.producer_epoch) == (1000, 1)
    # the old instance is fenced everywhere
    assert m.add_partitions(TID, 1000, 0, [("t", 0)], 0, 3)[0] == E.producer_fenced
    assert m.add_partitions(TID, 1000, 0, [("t", 0)], 0, 1)[0] == E.invalid_producer_epoch
    assert m.end_txn(TID, 1000, 0, True, 0, 3)[0] == E.producer_fenced
    assert m.add_partitions(TID, 999, 1, [("t", 0)], 0, 3)[0] == E.invalid_producer_id_mapping


def test_commit_writes_prepare_then_markers_offsets_then_complete() -> None:
    m = machine()
    r = init(m)
    assert m.add_partitions(TID, r.producer_id, 0, [("t", 0), ("t", 1)], 10, 3)[0] == E.none
    assert m.txns[TID].state == TxnState.ONGOING and m.txns[TID].start_ms == 10
    assert m.add_offsets(TID, r.producer_id, 0, "g", 11, 3)[0] == E.none
    err, eff = m.txn_offset_commit(TID, r.producer_id, 0, "g", [("in", 0, PendingOffset(42))], 12, 3)
    assert err == E.none and isinstance(eff[0], Persist)
    err, effects = m.end_txn(TID, r.producer_id, 0, True, 20, 3)
    assert err == E.none
    seen = run(m, effects, 21)
    kinds = [type(e) for e in seen]
    assert kinds == [Persist, WriteMarkers, CommitOffsets, Complete, Persist]
    assert TxnMetadata.decode(TID, seen[0].value).state == TxnState.PREPARE_COMMIT
    assert seen[1] == WriteMarkers(r.producer_id, 0, True, (("t", 0), ("t", 1)))
    assert seen[2] == CommitOffsets("g", (("in", 0, PendingOffset(42)),))
    assert TxnMetadata.decode(TID, seen[-1].value).state == TxnState.COMPLETE_COMMIT
    # a retried EndTxn with the same outcome succeeds, the other outcome does not
    assert m.end_txn(TID, r.producer_id, 0, True, 30, 3) == (E.none, [])
    assert m.end_txn(TID, r.producer_id, 0, False, 30, 3)[0] == E.invalid_txn_state


def test_abort_drops_pending_offsets() -> None:
    m = machine()
    r = init(m)
    m.add_offsets(TID, r.producer_id, 0, "g", 0, 3)
    m.txn_offset_commit(TID, r.producer_id, 0, "g", [("in", 0, PendingOffset(7))], 0, 3)
    seen = run(m, m.end_txn(TID, r.producer_id, 0, False, 1, 3)[1])
    assert not any(isinstance(e, CommitOffsets) for e in seen)
    assert m.txns[TID].state == TxnState.COMPLETE_ABORT and m.txns[TID].pending_offsets == {}


def test_offsets_need_the_group_in_the_transaction() -> None:
    m = machine()
    r = init(m)
    err, _ = m.txn_offset_commit(TID, r.producer_id, 0, "g", [("in", 0, PendingOffset(7))], 0, 3)
    assert err == E.invalid_txn_state


def test_end_txn_without_transaction_is_invalid_state() -> None:
    m = machine()
    r = init(m)
    assert m.end_txn(TID, r.producer_id, 0, True, 0, 3)[0] == E.invalid_txn_state


def test_reinit_aborts_ongoing_transaction_first() -> None:
    m = machine()
    r = init(m)
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 0, 3)
    res, effects = m.init_producer_id(TID, 60_000, -1, -1, 5, 4)
    assert res.error == E.concurrent_transactions
    seen = run(m, effects)
    markers = [e for e in seen if isinstance(e, WriteMarkers)]
    assert markers == [WriteMarkers(r.producer_id, 1, False, (("t", 0),))]  # fenced epoch
    assert m.txns[TID].state == TxnState.COMPLETE_ABORT
    again = init(m)   # the client's retry
    assert (again.error, again.producer_epoch) == (E.none, 2)


def test_kip360_expected_epoch_retry_and_fencing() -> None:
    m = machine()
    r = init(m)
    bumped = init(m, r.producer_id, 0)                # producer recovering from epoch 0
    assert (bumped.error, bumped.producer_epoch) == (E.none, 1)
    retry = init(m, r.producer_id, 0)                  # response lost, same request again
    assert (retry.error, retry.producer_epoch) == (E.none, 1)
    assert init(m, r.producer_id, 5).error == E.producer_fenced
    assert init(m, r.producer_id, 5, version=3).error == E.invalid_producer_epoch
    assert init(m, 4242, 1).error == E.producer_fenced


def test_exhausted_epoch_rotates_the_producer_id() -> None:
    m = machine()
    r = init(m)
    m.txns[TID].producer_epoch = 32766
    nxt = init(m)
    assert nxt.producer_id != r.producer_id and nxt.producer_epoch == 0
    assert m.txns[TID].previous_producer_id == r.producer_id
    assert m.check_produce(r.producer_id, 32766, ("t", 0)) is not None


def test_timeout_aborts_with_fenced_epoch() -> None:
    m = machine()
    r = init(m, timeout=1000)
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 100, 3)
    assert m.expire(1100) == []
    assert m.next_deadline_ms() == 1100
    seen = run(m, m.expire(1101))
    assert WriteMarkers(r.producer_id, 1, False, (("t", 0),)) in seen
    assert m.txns[TID].state == TxnState.COMPLETE_ABORT
    assert m.end_txn(TID, r.producer_id, 0, True, 1200, 3)[0] == E.producer_fenced


def test_invalid_timeout() -> None:
    m = machine()
    assert init(m, timeout=0).error == E.invalid_transaction_timeout
    assert init(m, timeout=10**9).error == E.invalid_transaction_timeout


def test_produce_check() -> None:
    m = machine()
    r = init(m)
    assert m.check_produce(r.producer_id, 0, ("t", 0))[0] == E.invalid_txn_state
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 0, 3)
    assert m.check_produce(r.producer_id, 0, ("t", 0)) is None
    assert m.check_produce(r.producer_id, 0, ("t", 1))[0] == E.invalid_txn_state
    assert m.check_produce(r.producer_id + 1, 0, ("t", 0))[0] == E.invalid_producer_id_mapping


@pytest.mark.parametrize("commit", [True, False])
def test_restore_and_recover_finishes_prepared_transactions(commit: bool) -> None:
    m = machine()
    r = init(m)
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 0, 3)
    m.add_offsets(TID, r.producer_id, 0, "g", 0, 3)
    m.txn_offset_commit(TID, r.producer_id, 0, "g", [("in", 0, PendingOffset(3))], 0, 3)
    _, effects = m.end_txn(TID, r.producer_id, 0, commit, 0, 3)
    prepare = effects[0]
    assert isinstance(prepare, Persist)   # the crash happens right after this write
    m2 = machine()
    m2.restore({TID.encode(): prepare.value})
    seen = run(m2, m2.recover(1))
    assert WriteMarkers(r.producer_id, 0, commit, (("t", 0),)) in seen
    assert any(isinstance(e, CommitOffsets) for e in seen) == commit
    assert m2.txns[TID].state == (TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT)
    assert m2.by_pid[r.producer_id] == TID


def test_metadata_round_trips_through_journal_encoding() -> None:
    md = TxnMetadata(TID, 5, 3, 1000, 2, 4, TxnState.ONGOING, {("a", 1), ("b", 0)}, {"g"},
                     {"g": {("a", 1): PendingOffset(9, 2, "m")}}, 77, 78)
    assert TxnMetadata.decode(TID, md.encode()) == md


def test_idle_transactional_ids_expire() -> None:
    m = TxnMachine(itertools.count(1000).__next__, id_expiration_ms=1000)
    r, effects = m.init_producer_id(TID, 60_000, -1, -1, 0, 4)
    run(m, effects)
    assert m.expire(1000) == []
    assert m.expire(1001) == [Persist(TID, None)]
    assert TID not in m.txns and r.producer_id not in m.by_pid
    again, _ = m.init_producer_id(TID, 60_000, -1, -1, 2000, 4)
    assert again.producer_id != r.producer_id and again.producer_epoch == 0


def test_open_transactions_do_not_expire_as_idle() -> None:
    m = TxnMachine(itertools.count(1000).__next__, id_expiration_ms=10)
    r, effects = m.init_producer_id(TID, 60_000, -1, -1, 0, 4)
    run(m, effects)
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 1, 3)
    assert m.expire(100) == [] and m.txns[TID].state == TxnState.ONGOING


def test_timed_out_producer_cannot_reinit_as_a_retry() -> None:
    """Kafka forgets the previous epoch when fencing: the old instance stays fenced."""
    m = machine()
    r = init(m, timeout=10)
    m.add_partitions(TID, r.producer_id, 0, [("t", 0)], 0, 3)
    run(m, m.expire(100))
    assert init(m, r.producer_id, 0).error == E.producer_fenced
    fresh = init(m)                       # a new instance (no expected epoch) is fine
    assert (fresh.error, fresh.producer_epoch) == (E.none, 2)


def test_expected_id_and_epoch_must_come_together() -> None:
    m = machine()
    init(m)
    assert init(m, 1000, -1).error == E.invalid_request


def test_pending_offsets_are_reported_until_the_transaction_ends() -> None:
    m = machine()
    r = init(m)
    m.add_offsets(TID, r.producer_id, 0, "g", 0, 3)
    m.txn_offset_commit(TID, r.producer_id, 0, "g", [("in", 0, PendingOffset(3))], 0, 3)
    assert m.pending_offset_partitions("g") == {("in", 0)}
    assert m.pending_offset_partitions("other") == set()
    run(m, m.end_txn(TID, r.producer_id, 0, True, 1, 3)[1])
    assert m.pending_offset_partitions("g") == set()


def test_retry_after_producer_id_rotation_returns_the_new_id() -> None:
    m = machine()
    r = init(m)
    m.txns[TID].producer_epoch = 32766
    rotated = init(m, r.producer_id, 32766)
    assert rotated.producer_id != r.producer_id and rotated.producer_epoch == 0
    again = init(m, r.producer_id, 32766)   # the response was lost: same answer
    assert (again.producer_id, again.producer_epoch) == (rotated.producer_id, 0)
