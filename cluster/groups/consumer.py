"""The KIP-848 consumer group protocol (ConsumerGroupHeartbeat) as a pure state machine.

Why pure, as the classic machine (cluster/groups/state.py): the protocol's correctness is
about interleavings (a member heartbeats while another still owns the partition it is
given, a response is lost, a static member restarts mid-reconciliation), which tests walk
directly when no sockets, clocks or asyncio are involved. Time comes in as `now_ms`, the
cluster's topics as a `TopicImage`, and durability needs leave as `PersistGroup` effects.

Behaviour follows Apache Kafka's GroupMetadataManager and CurrentAssignmentBuilder (read,
not copied): a group epoch bumped by every membership, subscription or subscribed-topic
change; a target assignment computed by the server-side assignor at that epoch; each
member reaching it in steps: partitions it must give up are revoked first (its epoch
stays until it reports them gone), then it moves to the target epoch and receives the
new partitions that no other member still owns (the rest arrive once released).
A response that was lost is tolerated (a member may heartbeat with its previous epoch if
it owns no more than it is assigned); any other epoch mismatch is FENCED_MEMBER_EPOCH.
Static members (instance id) leave with epoch -2 and keep their assignment for a
session timeout; a new member id with the same instance id takes it over. Regex
subscriptions (`subscribed_topic_regex`) are resolved here against the image's topics
(full match, as Kafka's `Pattern.matches`; internal topics match like any other, as in
Kafka).
Not implemented: rack-aware assignment, client-side assignors, a mixed group of classic
and consumer-protocol members (a group is one or the other; the driver switches an
empty group between kinds).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from cluster.groups import assignors
from cluster.groups.consumer_model import (
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    Assignment,
    ConsumerConfig,
    ConsumerGroupState,
    ConsumerMember,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
    TopicImage,
    intersect,
    minus,
    union,
)
from cluster.groups.model import CommittedOffset, Effect, PersistGroup

logger = logging.getLogger(__name__)

E = ErrorCode
CS = ConsumerGroupState
MS = MemberState


def _fail(error: ErrorCode, message: str | None = None, member_id: str | None = None) -> HeartbeatResult:
    return HeartbeatResult(error, message, member_id)


def check_regex(regex: str) -> str | None:
    """None if `regex` compiles, else the reason."""
    try:
        re.compile(regex)
    except re.error as exc:
        return str(exc)
    return None


class ConsumerGroup:
    """One KIP-848 group: members, group epoch, target assignment and committed offsets."""

    protocol_type = "consumer"

    def __init__(self, group_id: str, config: ConsumerConfig | None = None) -> None:
        self.group_id = group_id
        self.config = config or ConsumerConfig()
        self.epoch = 0
        self.assignment_epoch = 0
        self.assignor = assignors.DEFAULT
        self.members: dict[str, ConsumerMember] = {}
        self.static: dict[str, str] = {}  # instance id -> member id
        self.target: dict[str, Assignment] = {}
        self.subscribed: dict[str, int] = {}  # topic -> partitions, as of the target
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}
        self.dead = False
        self._dirty = False

    # ------------------------------------------------------------------ queries
    @property
    def state(self) -> ConsumerGroupState:
        if self.dead:
            return CS.DEAD
        if not self.members:
            return CS.EMPTY
        if self.assignment_epoch != self.epoch:
            return CS.ASSIGNING
        if any(m.member_epoch != self.assignment_epoch or m.state != MS.STABLE for m in self.members.values()):
            return CS.RECONCILING
        return CS.STABLE

    def subscribed_topics(self) -> set[str]:
        return set(self.subscribed)

    def _member_topics(self, m: ConsumerMember, topics: TopicImage) -> frozenset[str]:
        names = {t for t in m.subscribed_topic_names if topics.partitions(t) is not None}
        if m.subscribed_topic_regex:
            pattern = re.compile(m.subscribed_topic_regex)
            names |= {t for t in topics.names()
                      if pattern.fullmatch(t) and topics.visible(m.principal, m.host, t)}
        return frozenset(names)

    def _owned_by_others(self, member_id: str) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for m in self.members.values():
            if m.member_id == member_id:
                continue
            for a in (m.assigned, m.revoking):
                for t, ps in a.items():
                    out.setdefault(t, set()).update(ps)
        return out

    # ------------------------------------------------------------------ target assignment
    def _bump(self) -> None:
        self.epoch += 1
        self._dirty = True

    def _refresh_target(self, topics: TopicImage) -> None:
        """Bump the epoch if subscribed topics changed; recompute the target when behind."""
        subs = {mid: self._member_topics(m, topics) for mid, m in self.members.items()}
        wanted = {t: topics.partitions(t) or 0 for s in subs.values() for t in s}
        if wanted != self.subscribed:
            if self.assignment_epoch == self.epoch:
                self._bump()
            self.subscribed = wanted
        if self.assignment_epoch == self.epoch:
            return
        votes: dict[str, int] = {}
        for m in self.members.values():
            if m.server_assignor:
                votes[m.server_assignor] = votes.get(m.server_assignor, 0) + 1
        self.assignor = max(sorted(votes), key=lambda a: votes[a]) if votes else assignors.DEFAULT
        self.target = assignors.assign(self.assignor, subs, self.subscribed, self.target)
        self.assignment_epoch = self.epoch
        self._dirty = True
        logger.info("group %s: epoch %d, target by %s for %d members", self.group_id, self.epoch,
                    self.assignor, len(self.members))

    # ------------------------------------------------------------------ reconciliation
    def _reconcile(self, m: ConsumerMember, owned: Assignment | None, now_ms: int) -> bool:
        """Move `m` towards its target (CurrentAssignmentBuilder); True if it changed."""
        before = (m.member_epoch, m.state, dict(m.assigned), dict(m.revoking))
        if m.state == MS.UNREVOKED_PARTITIONS:
            if owned is None or intersect(owned, m.revoking):
                return False
            m.revoking = {}
            m.revocation_deadline_ms = None
        target = self.target.get(m.member_id, {})
        if m.member_epoch == self.assignment_epoch and m.state == MS.STABLE:
            return before != (m.member_epoch, m.state, m.assigned, m.revoking)
        keep = intersect(m.assigned, target)
        revoke = minus(m.assigned, target)
        if revoke:
            m.assigned, m.revoking = keep, revoke
            m.state = MS.UNREVOKED_PARTITIONS
            m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms
        else:
            others = self._owned_by_others(m.member_id)
            new = minus(target, keep)
            free = {t: frozenset(p for p in ps if p not in others.get(t, ())) for t, ps in new.items()}
            free = {t: ps for t, ps in free.items() if ps}
            m.assigned = union(keep, free)
            if m.member_epoch != self.assignment_epoch:
                m.previous_member_epoch = m.member_epoch
                m.member_epoch = self.assignment_epoch
            for t, ps in free.items():  # the epoch each partition came with (commit checks)
                for p in ps:
                    m.assigned_at[(t, p)] = m.member_epoch
            m.assigned_at = {tp: e for tp, e in m.assigned_at.items() if tp[1] in m.assigned.get(tp[0], ())}
            m.state = MS.UNRELEASED_PARTITIONS if minus(new, free) else MS.STABLE
        changed = before != (m.member_epoch, m.state, m.assigned, m.revoking)
        self._dirty |= changed
        return changed

    # ------------------------------------------------------------------ heartbeat
    def heartbeat(self, req: HeartbeatRequest, topics: TopicImage, now_ms: int) -> tuple[HeartbeatResult, list[Effect]]:
        result = self._heartbeat(req, topics, now_ms)
        return result, self._effects()

    def _effects(self) -> list[Effect]:
        if not self._dirty:
            return []
        self._dirty = False
        return [PersistGroup(self.group_id)]

    def _heartbeat(self, req: HeartbeatRequest, topics: TopicImage, now_ms: int) -> HeartbeatResult:
        error = self._invalid(req)
        if error is not None:
            return error
        if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._leave(req, topics, now_ms)
        if req.member_epoch == 0:
            found = self._join(req)
            if isinstance(found, HeartbeatResult):
                return found
            m = found
        else:
            m_or_error = self._known(req, topics)
            if isinstance(m_or_error, HeartbeatResult):
                return m_or_error
            m = m_or_error
        self._update(m, req)
        m.session_deadline_ms = now_ms + self.config.session_timeout_ms
        self._refresh_target(topics)
        owned = None if req.owned is None else self._owned(req.owned, topics)
        changed = self._reconcile(m, owned, now_ms)
        full = req.member_epoch == 0 or (owned is not None and owned != m.assigned)
        return HeartbeatResult(
            E.none, None, m.member_id, m.member_epoch, self.config.heartbeat_interval_ms,
            self._ids(m.assigned, topics) if changed or full else None)

    def _invalid(self, req: HeartbeatRequest) -> HeartbeatResult | None:
        if not req.member_id:
            return _fail(E.invalid_request, "MemberId can't be empty.")
        if req.member_epoch < STATIC_LEAVE_EPOCH:
            return _fail(E.invalid_request, f"MemberEpoch {req.member_epoch} is invalid.")
        if req.member_epoch == STATIC_LEAVE_EPOCH and req.instance_id is None:
            return _fail(E.invalid_request, "InstanceId can't be null when leaving as a static member.")
        if req.member_epoch == 0:
            if req.rebalance_timeout_ms == -1:
                return _fail(E.invalid_request, "RebalanceTimeoutMs must be provided in first request.")
            if req.owned:
                return _fail(E.invalid_request, "TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                return _fail(E.invalid_request,
                             "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        if req.server_assignor is not None and req.server_assignor not in assignors.ASSIGNORS:
            return _fail(E.unsupported_assignor, f"ServerAssignor {req.server_assignor} is not supported. "
                         f"Supported assignors: {', '.join(assignors.ASSIGNORS)}.")
        if req.subscribed_topic_regex and (why := check_regex(req.subscribed_topic_regex)) is not None:
            return _fail(E.invalid_regular_expression, f"SubscribedTopicRegex is invalid: {why}")
        return None

    def _join(self, req: HeartbeatRequest) -> ConsumerMember | HeartbeatResult:
        if req.instance_id is not None and (old_id := self.static.get(req.instance_id)) is not None:
            old = self.members.get(old_id)
            if old is not None and old_id != req.member_id:
                if old.member_epoch != STATIC_LEAVE_EPOCH:
                    return _fail(E.unreleased_instance_id, f"Static member {old_id} with instance id "
                                 f"{req.instance_id} is not released yet.", req.member_id)
                del self.members[old_id]
                old.member_id = req.member_id
                old.member_epoch = old.previous_member_epoch
                self.members[req.member_id] = old
                self.static[req.instance_id] = req.member_id
                if old_id in self.target:
                    self.target[req.member_id] = self.target.pop(old_id)
                self._dirty = True
                logger.info("group %s: static member %s replaced %s by %s", self.group_id,
                            req.instance_id, old_id, req.member_id)
                return old
            if old is not None and old.member_epoch == STATIC_LEAVE_EPOCH:
                old.member_epoch = old.previous_member_epoch
                return old
        m = self.members.get(req.member_id)
        if m is not None:  # fenced or restarted with the same id: it owns nothing now
            m.assigned, m.revoking = {}, {}
            m.state, m.member_epoch, m.revocation_deadline_ms = MS.STABLE, 0, None
            self._dirty = True
            return m
        if len(self.members) >= self.config.max_size:
            return _fail(E.group_max_size_reached, f"The consumer group has reached its maximum "
                         f"capacity of {self.config.max_size} members.", req.member_id)
        m = ConsumerMember(req.member_id, instance_id=req.instance_id)
        self.members[m.member_id] = m
        if req.instance_id is not None:
            self.static[req.instance_id] = m.member_id
        self._bump()
        logger.info("group %s: member %s joins", self.group_id, m.member_id)
        return m

    def _known(self, req: HeartbeatRequest, topics: TopicImage) -> ConsumerMember | HeartbeatResult:
        m = self.members.get(req.member_id)
        if m is None:
            return _fail(E.unknown_member_id, f"Member {req.member_id} is not a member of group "
                         f"{self.group_id}.", req.member_id)
        if req.instance_id is not None and self.static.get(req.instance_id) != m.member_id:
            return _fail(E.fenced_instance_id, None, req.member_id)
        if req.member_epoch != m.member_epoch:
            lost_response = (req.member_epoch == m.previous_member_epoch and req.owned is not None
                             and not minus(self._owned(req.owned, topics), m.assigned))
            if not lost_response:
                size = "greater" if req.member_epoch > m.member_epoch else "smaller"
                return _fail(E.fenced_member_epoch, f"The consumer group member has a {size} member epoch "
                    f"({req.member_epoch}) than the one known by the group coordinator "
                    f"({m.member_epoch}). The member must abandon all its partitions and rejoin.",
                    req.member_id)
        return m

    def _update(self, m: ConsumerMember, req: HeartbeatRequest) -> None:
        subscription = (m.subscribed_topic_names, m.subscribed_topic_regex)
        if req.rebalance_timeout_ms != -1:
            m.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.subscribed_topic_names is not None:
            m.subscribed_topic_names = tuple(sorted(set(req.subscribed_topic_names)))
        if req.subscribed_topic_regex is not None:
            m.subscribed_topic_regex = req.subscribed_topic_regex or None
        if req.server_assignor is not None and req.server_assignor != m.server_assignor:
            m.server_assignor = req.server_assignor
            self._bump_if_settled()
        if req.rack_id is not None:
            m.rack_id = req.rack_id
        m.client_id, m.client_host = req.client_id or m.client_id, req.client_host or m.client_host
        if (req.principal, req.host) != (m.principal, m.host) and m.subscribed_topic_regex:
            self._bump_if_settled()  # what the regex resolves to may differ for them
        m.principal, m.host = req.principal or m.principal, req.host or m.host
        if (m.subscribed_topic_names, m.subscribed_topic_regex) != subscription:
            self._bump_if_settled()

    def _bump_if_settled(self) -> None:
        if self.assignment_epoch == self.epoch:
            self._bump()

    def _leave(self, req: HeartbeatRequest, topics: TopicImage, now_ms: int) -> HeartbeatResult:
        member_id = req.member_id
        if req.instance_id is not None:
            known = self.static.get(req.instance_id)
            if known is None:
                return _fail(E.unknown_member_id, f"Instance id {req.instance_id} is unknown.", member_id)
            if known != member_id:
                return _fail(E.fenced_instance_id, None, member_id)
        m = self.members.get(member_id)
        if m is None:
            return _fail(E.unknown_member_id, f"Member {member_id} is not a member of group {self.group_id}.",
                         member_id)
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            if m.member_epoch != STATIC_LEAVE_EPOCH:
                m.previous_member_epoch = m.member_epoch
            m.member_epoch = STATIC_LEAVE_EPOCH
            m.session_deadline_ms = now_ms + self.config.session_timeout_ms
            self._dirty = True
            return HeartbeatResult(E.none, None, member_id, STATIC_LEAVE_EPOCH, self.config.heartbeat_interval_ms)
        self.remove(member_id, topics, "leaves")
        return HeartbeatResult(E.none, None, member_id, LEAVE_EPOCH, self.config.heartbeat_interval_ms)

    def remove(self, member_id: str, topics: TopicImage, why: str) -> None:
        m = self.members.pop(member_id)
        if m.instance_id is not None and self.static.get(m.instance_id) == member_id:
            del self.static[m.instance_id]
        self.target.pop(member_id, None)
        logger.info("group %s: member %s %s", self.group_id, member_id, why)
        self._bump_if_settled()
        self._refresh_target(topics)

    # ------------------------------------------------------------------ topic ids at the edge
    def _owned(self, owned: tuple[tuple[uuid.UUID, tuple[int, ...]], ...], topics: TopicImage) -> Assignment:
        out: Assignment = {}
        for tid, ps in owned:
            name = topics.name(tid)
            if name is not None and ps:
                out[name] = out.get(name, frozenset()) | frozenset(ps)
        return out

    @staticmethod
    def _ids(a: Assignment, topics: TopicImage) -> tuple[tuple[uuid.UUID, tuple[int, ...]], ...]:
        out = []
        for t in sorted(a):
            tid = topics.topic_id(t)
            if tid is not None:
                out.append((tid, tuple(sorted(a[t]))))
        return tuple(out)

    # ------------------------------------------------------------------ timers
    def tick(self, now_ms: int, topics: TopicImage) -> list[Effect]:
        """Expire sessions and revocations that ran out by `now_ms`."""
        for m in list(self.members.values()):
            if now_ms >= m.session_deadline_ms:
                self.remove(m.member_id, topics, "session expired")
            elif m.revocation_deadline_ms is not None and now_ms >= m.revocation_deadline_ms:
                self.remove(m.member_id, topics, "did not revoke its partitions within its rebalance timeout")
        return self._effects()

    # ------------------------------------------------------------------ offsets
    def commit_error(self, member_id: str, member_epoch: int,
                     partitions: list[tuple[str, int]] | None = None) -> ErrorCode | None:
        """ConsumerGroup.validateOffsetCommit: None if the commit may go ahead.

        As Kafka 4.3 answers: an epoch above the member's is STALE_MEMBER_EPOCH; an older one
        is accepted when every committed partition is still the member's and was assigned
        to it at that epoch or before (a commit sent just before an epoch bump)."""
        if self.dead:
            return E.coordinator_not_available
        if member_epoch < 0 and not self.members:
            return None
        m = self.members.get(member_id)
        if m is None:
            return E.unknown_member_id
        if member_epoch > m.member_epoch:
            return E.stale_member_epoch
        if member_epoch < m.member_epoch:
            held = [m.assigned_at.get(tp) for tp in partitions or []]
            if not held or any(e is None or e > member_epoch for e in held):
                return E.stale_member_epoch
        return None

    def fetch_error(self, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        """ConsumerGroup.validateOffsetFetch: an admin (no member, epoch -1) may always fetch."""
        if member_epoch < 0 and not member_id:
            return None
        m = self.members.get(member_id or "")
        if m is None:
            return E.unknown_member_id
        if member_epoch != m.member_epoch:
            return E.stale_member_epoch
        return None

    def describe(self, topics: TopicImage) -> dict[str, Any]:
        def block(a: Assignment) -> dict[str, Any]:
            return {"topic_partitions": [
                {"topic_id": topics.topic_id(t), "topic_name": t, "partitions": sorted(a[t])}
                for t in sorted(a) if topics.topic_id(t) is not None]}

        return {
            "error_code": E.none, "error_message": None, "group_id": self.group_id,
            "group_state": self.state.value, "group_epoch": self.epoch,
            "assignment_epoch": self.assignment_epoch, "assignor_name": self.assignor,
            "members": [
                {"member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
                 "member_epoch": m.member_epoch, "client_id": m.client_id, "client_host": m.client_host,
                 "subscribed_topic_names": list(m.subscribed_topic_names),
                 "subscribed_topic_regex": m.subscribed_topic_regex,
                 "assignment": block(m.assigned), "target_assignment": block(self.target.get(m.member_id, {})),
                 "member_type": 1}
                for m in self.members.values()
            ],
            "authorized_operations": -(2**31),
        }
