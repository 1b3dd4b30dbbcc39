"""The broker's side of replication for partitions it leads: follower fetches, acks=all.

Glue between the request handlers and the pure leader state (cluster/replication/): a
Fetch with a replica id >= 0 (ReplicaState.ReplicaId from v15, the request's ReplicaId
before) comes from a follower and is answered here, partition by partition, the way
Kafka's Partition.fetchRecords does for followers — beyond the high watermark, no
isolation level, leader epoch fenced, LastFetchedEpoch checked against the epoch cache
(DivergingEpoch instead of records when the follower's tail diverged, KIP-320) — and
each answered fetch moves the follower's state: a high watermark that moved wakes long
polls and acks=all produces; an ISR change becomes `Partition.replica.pending`, the
proposal for the controller (cluster/metadata/) to apply.
A partition without replication state (`Partition.replica is None`: one replica) has no
followers, so a follower fetch for it is answered NOT_LEADER_OR_FOLLOWER, as Kafka answers
a replica outside the assignment; its high watermark stays its log end.
Follower fetches need ClusterAction on the cluster when ACLs are enforced (KafkaApis).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.replication.leader import AcksAll
from cluster.broker.partition import wait_for_change
from cluster.replication.leader_fetch import check_replica_fetch, record_replica_fetch

logger = logging.getLogger("cluster.broker.replicas")

# read(part, fetch_offset, max_bytes, max_offset, min_one) -> (records, bytes used); the
# fetch handler's own read (file ranges or bytes), so both kinds of fetch send alike.
Read = Callable[[Any, int, int, "int | None", bool], "tuple[Any, int]"]


def replica_of(version: int, req: Any) -> tuple[int, int]:
    """(replica id, broker epoch) of a Fetch: -1 for consumers."""
    if version >= 15:
        state = getattr(req, "replica_state", None)
        return (state.replica_id, state.replica_epoch) if state is not None else (-1, -1)
    return getattr(req, "replica_id", -1), -1


def now_ms() -> int:
    """Follower lag is measured on this broker's own monotonic clock (never compared
    with another broker's)."""
    return int(time.monotonic() * 1000)


def cluster_action_denied(broker: Any) -> bool:
    return authz.enforced(broker) and not authz.allowed_cluster(broker, authz.Op.CLUSTER_ACTION)


def partition_result(broker: Any, part: Any, p: Any, replica_id: int, replica_epoch: int,
                     budget: int, min_one: bool, read: Read) -> tuple[dict, int]:
    """One partition's entry of a follower's Fetch response and the budget it used."""
    lp = part.replica
    log = part.log
    entry = {"partition_index": p.partition, "error_code": 0, "high_watermark": -1,
             "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
             "preferred_read_replica": -1, "records": b""}
    check = check_replica_fetch(lp, log, replica_id=replica_id,
                                current_leader_epoch=getattr(p, "current_leader_epoch", -1),
                                fetch_offset=p.fetch_offset,
                                last_fetched_epoch=getattr(p, "last_fetched_epoch", -1))
    if check.error_code:
        entry["error_code"] = check.error_code
        return entry, 0
    used = 0
    if check.diverging_epoch is not None:
        entry["diverging_epoch"] = {"epoch": check.diverging_epoch[0],
                                    "end_offset": check.diverging_epoch[1]}
    else:
        entry["records"], used = read(part, p.fetch_offset, max(0, min(p.partition_max_bytes, budget)),
                                      None, min_one)
        moved, proposal = record_replica_fetch(lp, check, replica_id=replica_id,
                                               fetch_offset=p.fetch_offset, now_ms=now_ms(),
                                               broker_epoch=replica_epoch)
        if proposal is not None:
            logger.info("%s-%d: ISR change to propose: %s", part.topic, part.index, list(proposal.isr_ids))
            manager = getattr(broker, "replica_manager", None)
            if manager is not None:
                manager.propose_soon()
        if moved:
            part.notify()
    hw = lp.high_watermark
    lso = broker.txns.last_stable_offset(part) if broker.txns is not None else hw
    entry.update(high_watermark=hw, last_stable_offset=lso, log_start_offset=log.log_start_offset)
    return entry, used


def acks_all_precheck(part: Any, acks: int) -> int:
    """NOT_ENOUGH_REPLICAS for an acks=all produce to an ISR under min.insync.replicas."""
    if acks != -1 or part.replica is None:
        return 0
    return part.replica.acks_all_precheck()


def after_append(part: Any) -> None:
    """The leader's log grew: single-replica partitions commit at once, replicated ones
    when the ISR has it (the HW may move now only if every ISR follower is already there)."""
    if part.replica is not None:
        part.replica.on_append(part.log.log_end_offset, now_ms())
    part.notify()


async def await_acks_all(part: Any, end_offset: int, acks: int, deadline: float) -> int:
    """Wait until the high watermark reaches end_offset (acks=all); the error code, or 0."""
    lp = part.replica
    if acks != -1 or lp is None:
        return 0
    while True:
        if part.replica is not lp:
            return ErrorCode.not_leader_or_follower  # leadership moved while we waited
        status = lp.acks_all_status(end_offset)
        if status is AcksAll.DONE:
            return 0
        if status is AcksAll.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
            return ErrorCode.not_enough_replicas_after_append
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return ErrorCode.request_timed_out
        await wait_for_change([part], remaining)
