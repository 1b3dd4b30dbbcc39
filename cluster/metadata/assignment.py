"""Replica assignment: Kafka's algorithm (AdminUtils.assignReplicasToBrokers), rack-aware.

Why Kafka's and not ours: operators know its placement (leaders round-robin over brokers,
followers shifted so that no two partitions share the same replica list more than needed,
one replica per rack while racks remain), and kafka-reassign-partitions' output reads the
same. Without racks: partition p's first replica is broker (p + start) mod n, the others
follow at a shift that grows by one every n partitions. With racks: the same walk over the
brokers listed alternately by rack (rack A's first, rack B's first, ..., rack A's second ...),
skipping a broker whose rack already holds a replica until every rack does. `start` is
Kafka's random start index; the controller derives it from the topic name so a replay
gives the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class AssignmentError(ValueError):
    """The brokers cannot hold what was asked (one sentence, shown to the client)."""


def rack_alternated(brokers: Mapping[int, str]) -> list[int]:
    """Brokers ordered rack by rack in turn (racks sorted, brokers sorted within a rack)."""
    by_rack: dict[str, list[int]] = {}
    for node in sorted(brokers):
        by_rack.setdefault(brokers[node], []).append(node)
    racks = sorted(by_rack)
    out: list[int] = []
    for i in range(max(len(v) for v in by_rack.values())):
        out += [by_rack[r][i] for r in racks if i < len(by_rack[r])]
    return out


def _replica_index(first: int, shift: int, j: int, n: int) -> int:
    return (first + 1 + (shift + j) % (n - 1)) % n


def assign(partitions: int, replication_factor: int, brokers: Mapping[int, str | None],
           start: int = 0, first_partition: int = 0) -> list[tuple[int, ...]]:
    """Replica lists for partitions first_partition .. first_partition+partitions-1.

    `brokers`: node id -> rack (None: no rack). Either every broker has a rack or none does.
    """
    if replication_factor < 1:
        raise AssignmentError(f"replication factor must be at least 1, not {replication_factor}")
    if replication_factor > len(brokers):
        raise AssignmentError(f"replication factor {replication_factor} is larger than the "
                              f"{len(brokers)} available broker(s)")
    racked = {n: r for n, r in brokers.items() if r is not None}
    if racked and len(racked) != len(brokers):
        raise AssignmentError("some brokers have a rack and some do not: give every broker a rack, or none")
    if racked:
        return _assign_racked(partitions, replication_factor, racked, start, first_partition)
    nodes = sorted(brokers)
    n = len(nodes)
    start_index = start % n
    shift = start_index
    out = []
    for p in range(first_partition, first_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        replicas = [nodes[first]] + [nodes[_replica_index(first, shift, j, n)]
                                     for j in range(replication_factor - 1)]
        out.append(tuple(replicas))
    return out


def _assign_racked(partitions: int, rf: int, racks: Mapping[int, str], start: int,
                   first_partition: int) -> list[tuple[int, ...]]:
    nodes = rack_alternated(racks)
    n, n_racks = len(nodes), len(set(racks.values()))
    start_index = start % n
    shift = start_index
    out = []
    for p in range(first_partition, first_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        leader = nodes[first]
        replicas, used_racks, used = [leader], {racks[leader]}, {leader}
        k = 0
        for _ in range(rf - 1):
            while True:
                node = nodes[_replica_index(first, shift * n_racks, k, n)]
                k += 1
                if ((racks[node] not in used_racks or len(used_racks) == n_racks)
                        and (node not in used or len(used) == n)):
                    replicas.append(node)
                    used_racks.add(racks[node])
                    used.add(node)
                    break
        out.append(tuple(replicas))
    return out
