"""The partition-side transaction index: last stable offset and aborted ranges."""

from __future__ import annotations

from cluster.txn.partition_index import AbortedTxn, PartitionTxnIndex


def test_lso_is_first_offset_of_oldest_open_transaction() -> None:
    idx = PartitionTxnIndex()
    assert idx.last_stable_offset(10) == 10
    idx.on_data(7, 3)
    idx.on_data(7, 5)      # later batches of the same transaction do not move its start
    idx.on_data(8, 4)
    assert idx.last_stable_offset(10) == 3
    assert idx.on_marker(7, True, 6) == 3
    assert idx.last_stable_offset(10) == 4
    idx.on_marker(8, False, 9)
    assert idx.last_stable_offset(10) == 10
    assert idx.aborted == [AbortedTxn(9, 8, 4)]


def test_aborted_between_returns_overlapping_ranges_only() -> None:
    idx = PartitionTxnIndex()
    for pid, first, marker in [(1, 0, 2), (2, 5, 8), (3, 10, 12)]:
        idx.on_data(pid, first)
        idx.on_marker(pid, False, marker)
    assert [a.producer_id for a in idx.aborted_between(0, 100)] == [1, 2, 3]
    assert [a.producer_id for a in idx.aborted_between(3, 10)] == [2]
    assert [a.producer_id for a in idx.aborted_between(8, 11)] == [2, 3]
    assert idx.aborted_between(13, 20) == []
    idx.drop_before(9)
    assert [a.producer_id for a in idx.aborted] == [3]


def test_marker_without_open_transaction_is_ignored() -> None:
    idx = PartitionTxnIndex()
    assert idx.on_marker(5, False, 0) is None   # e.g. a marker written again on recovery
    assert idx.aborted == [] and idx.last_stable_offset(1) == 1
