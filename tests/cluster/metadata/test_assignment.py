"""Replica assignment matches Kafka's AdminUtils (its own test vectors) and spreads replicas."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from cluster.metadata.assignment import AssignmentError, assign, rack_alternated


def test_kafka_vector_without_racks() -> None:
    # AdminUtilsTest.testReplicaAssignment: 5 brokers, 10 partitions, RF 3, start index 0
    assert assign(10, 3, {i: None for i in range(5)}) == [
        (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1),
        (0, 2, 3), (1, 3, 4), (2, 4, 0), (3, 0, 1), (4, 1, 2)]


def test_kafka_vector_with_racks() -> None:
    # AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated(racks) == [0, 3, 1, 5, 4, 2]
    assert assign(7, 3, racks) == [(0, 3, 1), (3, 1, 5), (1, 5, 4), (5, 4, 2), (4, 2, 0),
                                   (2, 0, 3), (0, 4, 2)]


def test_refusals() -> None:
    with pytest.raises(AssignmentError, match="replication factor 4 is larger than the 3"):
        assign(1, 4, {1: None, 2: None, 3: None})
    with pytest.raises(AssignmentError, match="every broker a rack"):
        assign(1, 1, {1: "a", 2: None})


@given(st.integers(1, 6), st.data())
def test_replicas_distinct_leaders_balanced_racks_spread(n: int, data: st.DataObject) -> None:
    rf = data.draw(st.integers(1, n))
    partitions = data.draw(st.integers(1, 40))
    with_racks = data.draw(st.booleans())
    racks = {b: (f"r{b % data.draw(st.integers(1, n))}" if with_racks else None) for b in range(1, n + 1)}
    out = assign(partitions, rf, racks, start=data.draw(st.integers(0, 100)))
    assert len(out) == partitions
    for replicas in out:
        assert len(set(replicas)) == rf and set(replicas) <= set(racks)
        if with_racks:  # one replica per rack while racks remain
            assert len({racks[r] for r in replicas}) == min(rf, len(set(racks.values())))
    if not with_racks:
        leaders = [r[0] for r in out]
        counts = [leaders.count(b) for b in racks]
        assert max(counts) - min(counts) <= 1  # leaders round-robin
