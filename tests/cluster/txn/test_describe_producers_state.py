"""PartitionProducers.describe: what DescribeProducers reports for a partition, from the
same headers that feed sequence checks (no sockets)."""

from __future__ import annotations

from cluster.broker.producer_state import PartitionProducers
from cluster.wire import record_batch as rb


def header(offset: int, n: int, pid: int, epoch: int, seq: int, ts: int, *,
           transactional: bool = False, control: bool = False) -> rb.BatchHeader:
    attrs = (rb.TRANSACTIONAL_BIT if transactional else 0) | (rb.CONTROL_BIT if control else 0)
    return rb.BatchHeader(offset, 0, 0, 2, 0, attrs, n - 1, ts, ts, pid, epoch, seq, n)


def test_idempotent_and_transactional_producers() -> None:
    state = PartitionProducers()
    state.record(header(0, 3, pid=7, epoch=0, seq=0, ts=1000))
    state.record(header(3, 2, pid=7, epoch=0, seq=3, ts=1005))
    state.record(header(5, 4, pid=9, epoch=2, seq=0, ts=2000, transactional=True))
    assert state.describe() == [
        {"producer_id": 7, "producer_epoch": 0, "last_sequence": 4, "last_timestamp": 1005,
         "coordinator_epoch": -1, "current_txn_start_offset": -1},
        {"producer_id": 9, "producer_epoch": 2, "last_sequence": 3, "last_timestamp": 2000,
         "coordinator_epoch": -1, "current_txn_start_offset": 5},
    ]
    # the COMMIT marker closes the transaction and is the producer's latest timestamp
    state.record(header(9, 1, pid=9, epoch=2, seq=-1, ts=2100, transactional=True, control=True),
                 commit=True)
    [_, nine] = state.describe()
    assert nine["current_txn_start_offset"] == -1 and nine["last_timestamp"] == 2100
    assert nine["last_sequence"] == 3


def test_new_epoch_resets_the_sequence() -> None:
    state = PartitionProducers()
    state.record(header(0, 3, pid=7, epoch=0, seq=0, ts=1000))
    state.record(header(3, 1, pid=7, epoch=1, seq=0, ts=1001))
    assert [(d["producer_epoch"], d["last_sequence"]) for d in state.describe()] == [(1, 0)]
    assert PartitionProducers().describe() == []
