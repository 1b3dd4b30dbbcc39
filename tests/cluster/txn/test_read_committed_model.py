"""Property: what a read_committed consumer keeps equals the committed transactions.

Random interleavings of several transactional producers (data batches, COMMIT, ABORT) and
non-transactional batches are fed to the partition's producer state exactly as appends
are; a consumer then filters the log up to the last stable offset with the aborted list,
the way Kafka's fetcher does. The result must be every non-transactional record plus the
records of committed transactions, and nothing of an aborted or still-open one.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.broker.producer_state import PartitionProducers
from cluster.wire import record_batch as rb

PIDS = [10, 11, 12]
ops = st.lists(
    st.tuples(st.sampled_from(["data", "commit", "abort", "plain"]), st.sampled_from(PIDS),
              st.integers(1, 3)),
    max_size=60,
)


def header(offset: int, n: int, pid: int, transactional: bool, control: bool) -> rb.BatchHeader:
    attrs = (rb.TRANSACTIONAL_BIT if transactional else 0) | (rb.CONTROL_BIT if control else 0)
    return rb.BatchHeader(offset, 0, 0, 2, 0, attrs, n - 1, 0, 0, pid, 0, -1, n)


def consume(log: list[tuple[rb.BatchHeader, bool | None]], lso: int, aborted) -> set[int]:
    """Kafka's fetcher: skip data of a producer from its aborted first offset to its ABORT."""
    pending = sorted(aborted, key=lambda a: a.first_offset)
    skipping: set[int] = set()
    kept: set[int] = set()
    for h, commit in log:
        if h.base_offset >= lso:
            break
        while pending and pending[0].first_offset <= h.base_offset:
            skipping.add(pending.pop(0).producer_id)
        if h.is_control:
            if commit is False:
                skipping.discard(h.producer_id)
            continue
        if h.is_transactional and h.producer_id in skipping:
            continue
        kept.update(range(h.base_offset, h.last_offset + 1))
    return kept


@settings(max_examples=300, deadline=None)
@given(ops)
def test_read_committed_sees_exactly_the_committed_records(script) -> None:
    state = PartitionProducers()
    log: list[tuple[rb.BatchHeader, bool | None]] = []
    offset = 0
    open_txn: dict[int, list[int]] = {}
    expected: set[int] = set()
    for op, pid, n in script:
        if op in ("commit", "abort"):
            if pid not in open_txn:
                continue
            h = header(offset, 1, pid, True, True)
            records = open_txn.pop(pid)
            if op == "commit":
                expected.update(records)
            commit = op == "commit"
        else:
            h = header(offset, n, pid if op == "data" else -1, op == "data", False)
            commit = None
            records = list(range(offset, offset + n))
            if op == "data":
                open_txn.setdefault(pid, []).extend(records)
            else:
                expected.update(records)
        state.record(h, commit)
        log.append((h, commit))
        offset = h.next_offset
    lso = state.txns.last_stable_offset(offset)
    assert lso == min((r[0] for r in open_txn.values()), default=offset)
    kept = consume(log, lso, state.txns.aborted_between(0, lso))
    assert kept == {o for o in expected if o < lso}
