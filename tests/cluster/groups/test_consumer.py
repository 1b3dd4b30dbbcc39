"""The KIP-848 consumer group machine without sockets: joins, reconciliation, fencing, static members.

Single scenarios first (each names the Kafka rule it checks), then random interleavings:
simulated clients heartbeat, lose responses, leave, crash and change subscriptions while
hypothesis picks the order and the clock; no partition may ever be owned by two live
members, and once everyone behaves the group settles Stable with every partition owned once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hypothesis import given, settings, strategies as st
from kio.schema.errors import ErrorCode as E

from cluster.groups.consumer import ConsumerGroup
from cluster.groups.consumer_model import (
    ConsumerConfig,
    ConsumerGroupState as CS,
    HeartbeatRequest,
    HeartbeatResult,
    StaticTopics,
)

IDS = {name: uuid.uuid5(uuid.NAMESPACE_DNS, name) for name in ("a", "b", "c")}
NAMES = {v: k for k, v in IDS.items()}
SESSION = 1_000


def image(**parts: int) -> StaticTopics:
    return StaticTopics({t: (IDS[t], n) for t, n in parts.items()})


def owned_of(result: HeartbeatResult) -> dict[str, set[int]]:
    assert result.assignment is not None
    return {NAMES[tid]: set(ps) for tid, ps in result.assignment}


def wire(owned: dict[str, set[int]]) -> tuple:
    return tuple((IDS[t], tuple(sorted(ps))) for t, ps in sorted(owned.items()) if ps)


def join(g: ConsumerGroup, topics: StaticTopics, member: str, now: int = 0, **kw) -> HeartbeatResult:
    req = HeartbeatRequest(member, 0, rebalance_timeout_ms=kw.pop("rebalance", 5_000),
                           subscribed_topic_names=kw.pop("names", ("a",)), owned=(), **kw)
    return g.heartbeat(req, topics, now)[0]


def beat(g: ConsumerGroup, topics: StaticTopics, member: str, epoch: int, owned: dict[str, set[int]] | None,
         now: int = 0, **kw) -> HeartbeatResult:
    req = HeartbeatRequest(member, epoch, owned=None if owned is None else wire(owned), **kw)
    return g.heartbeat(req, topics, now)[0]


def test_first_member_gets_everything_at_epoch_1() -> None:
    g, t = ConsumerGroup("g"), image(a=4)
    r = join(g, t, "m1")
    assert (r.error, r.member_epoch, owned_of(r)) == (E.none, 1, {"a": {0, 1, 2, 3}})
    assert g.state == CS.STABLE and g.epoch == g.assignment_epoch == 1


def test_second_member_waits_for_revocation_then_gets_its_half() -> None:
    g, t = ConsumerGroup("g"), image(a=4)
    join(g, t, "m1")
    r2 = join(g, t, "m2")
    assert r2.member_epoch == 2 and owned_of(r2) == {}  # its partitions are still m1's
    assert g.state == CS.RECONCILING
    r1 = beat(g, t, "m1", 1, {"a": {0, 1, 2, 3}})
    kept = owned_of(r1)["a"]
    assert r1.member_epoch == 1 and len(kept) == 2  # revoke first, epoch unchanged
    r2 = beat(g, t, "m2", 2, {})
    assert r2.assignment is None  # nothing released yet
    r1 = beat(g, t, "m1", 1, {"a": kept})  # revoked
    assert r1.member_epoch == 2 and owned_of(r1)["a"] == kept
    r2 = beat(g, t, "m2", 2, {})
    assert owned_of(r2)["a"] == {0, 1, 2, 3} - kept and g.state == CS.STABLE


def test_fenced_and_lost_response_epochs() -> None:
    g, t = ConsumerGroup("g"), image(a=2)
    join(g, t, "m1")
    assert beat(g, t, "m1", 7, {}).error == E.fenced_member_epoch
    assert beat(g, t, "nobody", 1, {}).error == E.unknown_member_id
    join(g, t, "m2")
    beat(g, t, "m1", 1, {"a": {0, 1}})
    r = beat(g, t, "m1", 1, {"a": {0}})  # acked: epoch 2 (this answer is "lost")
    assert r.member_epoch == 2
    assert beat(g, t, "m1", 1, {"a": {0}}).error == E.none  # previous epoch, owns no more than assigned
    assert beat(g, t, "m1", 1, {"a": {0, 1}}).error == E.fenced_member_epoch


def test_leave_and_session_expiry_rebalance() -> None:
    g, t = ConsumerGroup("g", ConsumerConfig(session_timeout_ms=SESSION)), image(a=2)
    join(g, t, "m1")
    join(g, t, "m2")
    r = g.heartbeat(HeartbeatRequest("m2", -1), t, 10)[0]
    assert r.member_epoch == -1 and list(g.members) == ["m1"]
    assert owned_of(beat(g, t, "m1", 1, {"a": {0, 1}}, now=20)) == {"a": {0, 1}}
    g.tick(20 + SESSION, t)
    assert not g.members and g.state == CS.EMPTY


def test_static_member_keeps_its_assignment_across_a_restart() -> None:
    g, t = ConsumerGroup("g", ConsumerConfig(session_timeout_ms=SESSION)), image(a=2)
    join(g, t, "m1", instance_id="i1")
    join(g, t, "m2", instance_id="i2")
    beat(g, t, "m1", 1, {"a": {0, 1}})
    beat(g, t, "m1", 1, {"a": {0}})
    r = beat(g, t, "m2", 2, {})
    epoch = g.epoch
    assert beat(g, t, "m2", -2, None, instance_id="i2").member_epoch == -2
    assert join(g, t, "m2-new", instance_id="i1").error == E.unreleased_instance_id
    r = join(g, t, "m2-new", instance_id="i2")
    assert r.error == E.none and r.member_epoch == 2 and owned_of(r) == {"a": {1}}
    assert g.epoch == epoch and set(g.members) == {"m1", "m2-new"}


def test_regex_range_and_invalid_requests() -> None:
    g, t = ConsumerGroup("g"), image(a=3, b=3, c=1)
    r = g.heartbeat(HeartbeatRequest("m1", 0, rebalance_timeout_ms=1, subscribed_topic_regex="[ab]",
                                     server_assignor="range", owned=()), t, 0)[0]
    assert owned_of(r) == {"a": {0, 1, 2}, "b": {0, 1, 2}} and g.assignor == "range"
    bad = [HeartbeatRequest("", 0), HeartbeatRequest("m", 0, subscribed_topic_names=("a",)),
           HeartbeatRequest("m", 0, rebalance_timeout_ms=1, subscribed_topic_regex="(")]
    assert [g.heartbeat(b, t, 0)[0].error for b in bad] == [E.invalid_request, E.invalid_request,
                                                             E.invalid_regular_expression]
    r = g.heartbeat(HeartbeatRequest("m", 0, rebalance_timeout_ms=1, subscribed_topic_names=("a",),
                                     server_assignor="sticky", owned=()), t, 0)[0]
    assert r.error == E.unsupported_assignor


def test_offset_commit_epochs() -> None:
    g, t = ConsumerGroup("g"), image(a=1)
    assert g.commit_error("", -1) is None  # simple commit to an empty group
    join(g, t, "m1")
    assert (g.commit_error("", -1), g.commit_error("m1", 1, [("a", 0)]), g.commit_error("m1", 0, [("a", 0)]),
            g.commit_error("m1", 2, [("a", 0)])) == (E.unknown_member_id, None, E.stale_member_epoch,
                                                    E.stale_member_epoch)
    join(g, t, "m2")
    beat(g, t, "m1", 1, {"a": {0}})
    assert g.members["m1"].member_epoch == 2
    assert g.commit_error("m1", 1, [("a", 0)]) is None  # still its, held since epoch 1 (Kafka 4.3)


# ---- random interleavings ---------------------------------------------------------------
@dataclass
class Client:
    name: str
    static: bool
    member_id: str = ""
    epoch: int = 0
    owned: dict[str, set[int]] = field(default_factory=dict)
    topics: tuple[str, ...] = ("a", "b")
    alive: bool = True
    joined: bool = False


class World:
    def __init__(self, statics: list[bool]) -> None:
        self.g = ConsumerGroup("g", ConsumerConfig(session_timeout_ms=SESSION))
        self.t = image(a=3, b=2)
        self.now = 0
        self.clients = [Client(f"c{i}", s, f"c{i}") for i, s in enumerate(statics)]

    def heartbeat(self, c: Client, lose: bool = False) -> None:
        if not c.alive:
            return
        if not c.joined:
            req = HeartbeatRequest(c.member_id, 0, instance_id=c.name if c.static else None,
                                   rebalance_timeout_ms=2_000, subscribed_topic_names=c.topics, owned=())
        else:
            req = HeartbeatRequest(c.member_id, c.epoch, owned=wire(c.owned), subscribed_topic_names=c.topics)
        r = self.g.heartbeat(req, self.t, self.now)[0]
        if lose:
            return
        if r.error in (E.fenced_member_epoch, E.unknown_member_id):
            c.owned, c.epoch, c.joined = {}, 0, False
            return
        if r.error == E.unreleased_instance_id:
            return
        assert r.error == E.none, r
        c.joined, c.epoch = True, r.member_epoch
        if r.assignment is not None:
            c.owned = owned_of(r)

    def check(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        for m in self.g.members.values():
            for a in (m.assigned, m.revoking):
                for topic, ps in a.items():
                    for p in ps:
                        assert (topic, p) not in seen, f"{topic}-{p} owned by {seen[(topic, p)]} and {m.member_id}"
                        seen[(topic, p)] = m.member_id
        held: dict[tuple[str, int], str] = {}
        for c in self.clients:
            if c.alive and c.joined and c.member_id in self.g.members:
                for topic, ps in c.owned.items():
                    for p in ps:
                        assert (topic, p) not in held, f"clients {held[(topic, p)]} and {c.name} own {topic}-{p}"
                        held[(topic, p)] = c.name
            if c.alive and c.joined and c.member_id not in self.g.members:
                c.owned = {}  # it will learn it is gone on its next heartbeat; it must not count


op = st.one_of(
    st.tuples(st.just("beat"), st.integers(0, 3)),
    st.tuples(st.just("lose"), st.integers(0, 3)),
    st.tuples(st.just("crash"), st.integers(0, 3)),
    st.tuples(st.just("leave"), st.integers(0, 3)),
    st.tuples(st.just("resubscribe"), st.integers(0, 3)),
    st.tuples(st.just("restart"), st.integers(0, 3)),
    st.tuples(st.just("time"), st.integers(0, 1_500)),
)


@settings(max_examples=150, deadline=None)
@given(statics=st.lists(st.booleans(), min_size=4, max_size=4), ops=st.lists(op, max_size=60))
def test_random_interleavings_never_double_own_and_settle(statics, ops) -> None:
    w = World(statics)
    for kind, arg in ops:
        c = w.clients[arg % 4]
        if kind == "beat":
            w.heartbeat(c)
        elif kind == "lose":
            w.heartbeat(c, lose=True)
        elif kind == "crash":
            c.alive = False
        elif kind == "leave" and c.joined and c.alive:
            epoch = -2 if c.static else -1
            w.g.heartbeat(HeartbeatRequest(c.member_id, epoch, instance_id=c.name if c.static else None), w.t, w.now)
            c.owned, c.joined, c.epoch = {}, False, 0
        elif kind == "restart" and c.alive:  # a new process: new member id, same instance id if static
            c.member_id += "'"
            c.owned, c.joined, c.epoch = {}, False, 0
        elif kind == "resubscribe":
            c.topics = ("a",) if c.topics == ("a", "b") else ("a", "b")
        elif kind == "time":
            w.now += arg
            w.g.tick(w.now, w.t)
        w.check()
    live = [c for c in w.clients if c.alive]
    for _ in range(12):  # everyone behaves: heartbeat in turn, well within the session
        w.now += 10
        for c in live:
            w.heartbeat(c)
        w.g.tick(w.now, w.t)
        w.check()
    w.now += SESSION  # crashed members' sessions run out
    w.g.tick(w.now, w.t)
    for _ in range(12):
        w.now += 10
        for c in live:
            w.heartbeat(c)
        w.g.tick(w.now, w.t)
        w.check()
    if not live:
        assert w.g.state == CS.EMPTY
        return
    assert w.g.state == CS.STABLE, [(m.member_id, m.member_epoch, m.state) for m in w.g.members.values()]
    assert {m for m in w.g.members} == {c.member_id for c in live}
    owned = sorted((t, p) for c in live for t, ps in c.owned.items() for p in ps)
    wanted = {"a"} | ({"b"} if any("b" in c.topics for c in live) else set())
    assert owned == sorted((t, p) for t in wanted for p in range({"a": 3, "b": 2}[t]))
