"""Pure rules for committing, fetching and deleting a group's offsets.

Kept out of the rebalance machine because the rules differ in kind: a commit is checked
against the group's generation and membership, but "simple" commits (generation -1, empty
member id, as MirrorMaker-style checkpointers and admin tools send) are accepted whenever
the group has no members, exactly as Kafka does. Commits are allowed while the group is
PreparingRebalance (members commit before rejoining, which cooperative rebalancing relies
on) but not in CompletingRebalance. The caller must make `PersistOffsets` durable before
answering.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from cluster.groups.model import CommittedOffset, Effect, GroupState, PersistOffsets
from cluster.groups.state import Group

E = ErrorCode
S = GroupState


@dataclass(frozen=True)
class OffsetToCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""


def commit(
    group: Group,
    generation_id: int,
    member_id: str,
    instance_id: str | None,
    offsets: list[OffsetToCommit],
    now_ms: int,
) -> tuple[list[ErrorCode], list[Effect]]:
    """Per-offset errors (same order as `offsets`) and the effects to carry out first."""

    def all_(error: ErrorCode) -> tuple[list[ErrorCode], list[Effect]]:
        return [error] * len(offsets), []

    if group.state == S.DEAD:
        return all_(E.coordinator_not_available)
    if group.is_fenced(member_id, instance_id):
        return all_(E.fenced_instance_id)
    simple = generation_id < 0 and group.state == S.EMPTY
    if not simple:
        if member_id not in group.members:
            return all_(E.unknown_member_id)
        if generation_id != group.generation_id:
            return all_(E.illegal_generation)
        if group.state == S.COMPLETING_REBALANCE:
            return all_(E.rebalance_in_progress)
        group.members[member_id].last_heartbeat_ms = now_ms
    errors: list[ErrorCode] = []
    written: list[tuple[str, int, CommittedOffset | None]] = []
    for o in offsets:
        metadata = o.metadata or ""
        if len(metadata.encode()) > group.config.max_metadata_size:
            errors.append(E.offset_metadata_too_large)
            continue
        value = CommittedOffset(o.offset, o.leader_epoch, metadata, now_ms)
        group.offsets[(o.topic, o.partition)] = value
        written.append((o.topic, o.partition, value))
        errors.append(E.none)
    effects: list[Effect] = [PersistOffsets(group.group_id, tuple(written))] if written else []
    return errors, effects


def fetch(group: Group | None, topics: dict[str, list[int]] | None) -> dict[str, dict[int, CommittedOffset | None]]:
    """Committed offsets per topic/partition; None for never-committed ones.

    `topics=None` means every partition the group has committed (OffsetFetch's null topics).
    """
    if topics is None:
        out: dict[str, dict[int, CommittedOffset | None]] = {}
        if group is not None:
            for (topic, partition), value in sorted(group.offsets.items()):
                out.setdefault(topic, {})[partition] = value
        return out
    return {
        topic: {p: (group.offsets.get((topic, p)) if group is not None else None) for p in partitions}
        for topic, partitions in topics.items()
    }


def delete(group: Group, topics: dict[str, list[int]]) -> tuple[ErrorCode, dict[str, dict[int, ErrorCode]], list[Effect]]:
    """OffsetDelete: (top-level error, per-partition errors, effects)."""
    if group.state == S.DEAD:
        return E.group_id_not_found, {}, []
    subscribed: set[str] = set()
    if group.members:
        found = group.subscribed_topics()
        if found is None:
            return E.non_empty_group, {}, []
        subscribed = found
    errors: dict[str, dict[int, ErrorCode]] = {}
    removed: list[tuple[str, int, CommittedOffset | None]] = []
    for topic, partitions in topics.items():
        per = errors.setdefault(topic, {})
        for p in partitions:
            if topic in subscribed:
                per[p] = E.group_subscribed_to_topic
                continue
            if group.offsets.pop((topic, p), None) is not None:
                removed.append((topic, p, None))
            per[p] = E.none
    effects: list[Effect] = [PersistOffsets(group.group_id, tuple(removed))] if removed else []
    return E.none, errors, effects


def expire(group: Group, now_ms: int, retention_ms: int,
           subscribed: set[str] | None = None) -> list[Effect]:
    """Drop the offsets Kafka's offsets.retention.minutes expires, as PersistOffsets tombstones.

    Kafka's rules (GroupMetadata.removeExpiredOffsets, the new coordinator's
    OffsetExpirationCondition): an Empty classic group that had members loses every offset
    `retention_ms` after it became empty; offsets committed without ever a member
    (standalone commits: tools, MirrorMaker-style checkpoints) each `retention_ms` after
    their commit; a Stable classic consumer group keeps its subscribed topics' offsets and
    loses the others by commit time. A KIP-848 group (`subscribed` given: its members'
    topics, empty when it has none) loses the offsets of topics no member subscribes to,
    by commit time. Groups in a rebalance keep everything.
    """
    if subscribed is not None:
        candidates = [tp for tp in group.offsets if tp[0] not in subscribed]
        base = {tp: group.offsets[tp].commit_timestamp_ms for tp in candidates}
    elif group.state == S.EMPTY and not group.members and not group.pending:
        since = group.empty_since_ms
        base = {tp: (o.commit_timestamp_ms if since is None else since) for tp, o in group.offsets.items()}
    elif group.state == S.STABLE and group.protocol_type == "consumer":
        topics = group.subscribed_topics()
        if topics is None:
            return []
        base = {tp: o.commit_timestamp_ms for tp, o in group.offsets.items() if tp[0] not in topics}
    else:
        return []
    gone = [tp for tp, at in base.items() if now_ms - at >= retention_ms]
    if not gone:
        return []
    for tp in gone:
        del group.offsets[tp]
    return [PersistOffsets(group.group_id, tuple((t, p, None) for t, p in gone))]
