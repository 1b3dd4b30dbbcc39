"""The classic group protocol state machine, driven directly without sockets or clocks."""

from __future__ import annotations

import itertools

import pytest
from kio.schema.errors import ErrorCode as E

from cluster.groups.model import GroupConfig, GroupState as S, JoinRequest, JoinResult, PersistGroup, Reply, SyncResult
from cluster.groups.state import Group
from cluster.groups.subscription import encode_subscription

SESSION = 10_000
REBALANCE = 30_000


class Harness:
    """A group plus the bookkeeping a driver would do: tokens and the replies they got."""

    def __init__(self, initial_delay_ms: int = 0) -> None:
        ids = itertools.count(1)
        self.group = Group("g", GroupConfig(min_session_timeout_ms=1, initial_rebalance_delay_ms=initial_delay_ms),
                           lambda cid: f"{cid}-{next(ids)}")
        self.tokens = itertools.count(100)
        self.replies: dict[int, JoinResult | SyncResult] = {}
        self.effects: list = []

    def _run(self, effects: list) -> None:
        self.effects += effects
        for e in effects:
            if isinstance(e, Reply):
                assert e.token not in self.replies, "a request answered twice"
                self.replies[e.token] = e.result

    def join(self, member_id: str = "", client: str = "c", now: int = 0, instance: str | None = None,
             protocols=(("range", b"m"),), session: int = SESSION, rebalance: int = REBALANCE,
             require_known: bool = True, ptype: str = "consumer") -> int:
        token = next(self.tokens)
        req = JoinRequest(member_id, instance, client, "/127.0.0.1", session, rebalance, ptype,
                          tuple(protocols), require_known)
        self._run(self.group.join(req, token, now))
        return token

    def sync(self, member_id: str, generation: int, assignments: dict | None = None, now: int = 0,
             instance: str | None = None) -> int:
        token = next(self.tokens)
        self._run(self.group.sync(generation, member_id, instance, None, None, assignments or {}, token, now))
        return token

    def tick(self, now: int) -> None:
        self._run(self.group.tick(now))

    def new_member(self, client: str = "c", now: int = 0, **kw) -> str:
        """The v4+ two-step join: MEMBER_ID_REQUIRED, then a join with the given id."""
        t = self.join(client=client, now=now, **kw)
        r = self.replies[t]
        assert r.error == E.member_id_required and r.member_id.startswith(client)
        return r.member_id


def stable_pair(h: Harness) -> tuple[str, str, int]:
    """Two members in a Stable group: a alone first (generation 1), then b joins."""
    a = h.new_member("a")
    h.join(a, "a")  # alone: generation 1 completes at once (no initial delay)
    b = h.new_member("b")
    tb = h.join(b, "b")
    assert tb not in h.replies  # waits: a rebalance completes only when everyone joined
    ta = h.join(a, "a")
    ja, jb = h.replies[ta], h.replies[tb]
    assert ja.error == jb.error == E.none
    gen = ja.generation_id
    assert gen == jb.generation_id == 2
    leader = ja.leader
    h.sync(leader, gen, {a: b"A", b: b"B"})
    other = b if leader == a else a
    h.sync(other, gen)
    assert h.group.state == S.STABLE
    return a, b, gen


def test_first_join_requires_member_id_then_completes_alone():
    h = Harness()
    t0 = h.join(client="a")
    assert h.replies[t0].error == E.member_id_required
    assert h.group.state == S.EMPTY and h.group.pending
    mid = h.replies[t0].member_id
    t1 = h.join(mid, "a")
    r = h.replies[t1]
    assert r.error == E.none and r.generation_id == 1 and r.leader == mid and r.member_id == mid
    assert r.protocol_name == "range" and r.protocol_type == "consumer"
    assert [m.member_id for m in r.members] == [mid]
    assert h.group.state == S.COMPLETING_REBALANCE
    ts = h.sync(mid, 1, {mid: b"assign"})
    assert h.replies[ts] == SyncResult(E.none, "consumer", "range", b"assign")
    assert h.group.state == S.STABLE
    assert PersistGroup("g") in h.effects


def test_old_clients_join_without_handshake():
    h = Harness()
    t = h.join(client="a", require_known=False)
    assert h.replies[t].error == E.none and h.replies[t].member_id == "a-1"


def test_second_member_triggers_rebalance_and_only_leader_gets_members():
    h = Harness()
    a = h.new_member("a")
    h.sync(a, h.replies[h.join(a, "a")].generation_id, {a: b"all"})
    assert h.group.state == S.STABLE
    b = h.new_member("b")
    tb = h.join(b, "b")
    assert h.group.state == S.PREPARING_REBALANCE and tb not in h.replies
    # a learns of the rebalance through its heartbeat, then rejoins
    assert h.group.heartbeat(1, a, None, 5) == E.rebalance_in_progress
    ta = h.join(a, "a")
    ra, rb = h.replies[ta], h.replies[tb]
    assert ra.generation_id == rb.generation_id == 2
    assert ra.leader == rb.leader == a
    assert {m.member_id for m in ra.members} == {a, b} and rb.members == ()
    # a follower's SyncGroup waits for the leader's
    sb = h.sync(b, 2)
    assert sb not in h.replies
    sa = h.sync(a, 2, {a: b"p0", b: b"p1"})
    assert h.replies[sa].assignment == b"p0" and h.replies[sb].assignment == b"p1"


def test_rebalance_timeout_removes_members_that_did_not_rejoin():
    h = Harness()
    a, b, gen = stable_pair(h)
    c = h.new_member("c", now=1000)
    tc = h.join(c, "c", now=1000)
    ta = h.join(a, "a", now=1000)
    for now in range(1000, 1000 + REBALANCE, 5000):  # b stays alive but never rejoins
        assert h.group.heartbeat(gen, b, None, now) == E.rebalance_in_progress
        h.tick(now)
    h.tick(1000 + REBALANCE - 1)
    assert tc not in h.replies
    h.tick(1000 + REBALANCE)
    assert b not in h.group.members
    assert h.replies[tc].generation_id == gen + 1 and h.replies[ta].error == E.none
    assert h.group.state == S.COMPLETING_REBALANCE


def test_session_expiry_removes_member_and_rebalances():
    h = Harness()
    a, b, gen = stable_pair(h)
    h.group.heartbeat(gen, a, None, SESSION - 1)
    h.tick(SESSION)  # b's last heartbeat was at 0
    assert set(h.group.members) == {a}
    assert h.group.state == S.PREPARING_REBALANCE
    ta = h.join(a, "a", now=SESSION + 1)
    assert h.replies[ta].generation_id == gen + 1 and h.replies[ta].leader == a


def test_heartbeat_errors():
    h = Harness()
    a, b, gen = stable_pair(h)
    g = h.group
    assert g.heartbeat(gen, a, None, 1) == E.none
    assert g.heartbeat(gen, "nobody", None, 1) == E.unknown_member_id
    assert g.heartbeat(gen + 5, a, None, 1) == E.illegal_generation


def test_sync_errors():
    h = Harness()
    a, b, gen = stable_pair(h)
    assert h.replies[h.sync("nobody", gen)].error == E.unknown_member_id
    assert h.replies[h.sync(a, gen - 1)].error == E.illegal_generation
    assert h.replies[h.sync(b, gen)].assignment in (b"A", b"B")  # Stable: current assignment
    h.join(h.new_member("c"), "c")
    assert h.replies[h.sync(a, gen)].error == E.rebalance_in_progress


def test_rejoin_during_completing_rebalance_returns_same_generation_and_fails_pending_syncs_on_change():
    h = Harness()
    a = h.new_member("a")
    r1 = h.replies[h.join(a, "a")]
    r2 = h.replies[h.join(a, "a")]  # retransmitted join, same protocols
    assert r2.generation_id == r1.generation_id and h.group.state == S.COMPLETING_REBALANCE
    b = h.new_member("b")
    tb = h.join(b, "b")
    sb_token = None
    assert h.group.state == S.PREPARING_REBALANCE
    ta = h.join(a, "a")
    gen = h.replies[ta].generation_id
    sb_token = h.sync(b, gen)
    h.join(a, "a", protocols=(("roundrobin", b"x"), ("range", b"m")))  # changed -> new rebalance
    assert h.replies[sb_token].error == E.rebalance_in_progress


def test_leave_triggers_rebalance_and_unknown_members_are_reported():
    h = Harness()
    a, b, gen = stable_pair(h)
    out = h.group.leave([(b, None), ("ghost", None)], 5)
    assert [e for _, _, e in out.errors] == [E.none, E.unknown_member_id]
    assert set(h.group.members) == {a} and h.group.state == S.PREPARING_REBALANCE
    out = h.group.leave([(a, None)], 6)
    assert h.group.state == S.EMPTY and h.group.generation_id == gen + 1
    assert PersistGroup("g") in out.effects


def test_leader_leaving_elects_a_new_leader():
    h = Harness()
    a, b, gen = stable_pair(h)
    leader = h.group.leader_id
    other = b if leader == a else a
    h.group.leave([(leader, None)], 1)
    t = h.join(other, now=2)
    assert h.replies[t].leader == other and h.replies[t].members


def test_protocol_selection_by_votes_and_inconsistent_protocols():
    h = Harness()
    a = h.new_member("a")
    h.join(a, "a", protocols=(("range", b""), ("roundrobin", b"")))
    b = h.new_member("b")
    h.join(b, "b", protocols=(("roundrobin", b""), ("range", b"")))
    c = h.new_member("c")
    tc = h.join(c, "c", protocols=(("roundrobin", b""), ("sticky", b"")))
    ta = h.join(a, "a", protocols=(("range", b""), ("roundrobin", b"")))
    tb = h.join(b, "b", protocols=(("roundrobin", b""), ("range", b"")))
    # range is not supported by c: roundrobin is the only candidate
    assert {h.replies[t].protocol_name for t in (ta, tb, tc)} == {"roundrobin"}
    t = h.join(client="d", protocols=(("other", b""),))
    assert h.replies[t].error == E.inconsistent_group_protocol
    t = h.join(client="d", ptype="connect")
    assert h.replies[t].error == E.inconsistent_group_protocol


def test_votes_decide_between_common_protocols():
    h = Harness()
    ids = [h.new_member(c) for c in "abc"]
    prefs = [("x", "y"), ("y", "x"), ("y", "x")]
    tokens = [h.join(m, protocols=[(p, b"") for p in pr]) for m, pr in zip(ids, prefs)]
    assert {h.replies[t].protocol_name for t in tokens} == {"y"}


def test_invalid_session_timeout():
    h = Harness()
    h.group.config = GroupConfig(min_session_timeout_ms=6000)
    assert h.replies[h.join(session=100)].error == E.invalid_session_timeout


def test_static_member_rejoin_replaces_member_without_rebalance():
    h = Harness()
    ta = h.join(client="a", instance="i-a")  # static members skip MEMBER_ID_REQUIRED
    a = h.replies[ta].member_id
    h.join(client="b", instance="i-b")
    b = h.group.static["i-b"]
    h.join(a, "a", instance="i-a")
    gen = h.group.generation_id
    h.sync(h.group.leader_id, gen, {a: b"A", b: b"B"})
    h.sync(b if h.group.leader_id == a else a, gen)
    assert h.group.state == S.STABLE
    # b restarts: joins with no member id but the same instance id
    t = h.join(client="b", instance="i-b", now=10)
    r = h.replies[t]
    assert r.error == E.none and r.member_id != b and r.generation_id == gen
    assert h.group.state == S.STABLE and h.group.members[r.member_id].assignment == b"B"
    # the old incarnation is fenced
    assert h.group.heartbeat(gen, b, "i-b", 11) == E.fenced_instance_id
    assert h.group.heartbeat(gen, r.member_id, "i-b", 11) == E.none
    assert h.replies[h.sync(r.member_id, gen, instance="i-b")].assignment == b"B"


def test_static_member_rejoin_with_changed_protocol_rebalances():
    h = Harness()
    a = h.replies[h.join(client="a", instance="i-a")].member_id
    h.sync(a, 1, {a: b"A"})
    t = h.join(client="a", instance="i-a", protocols=(("roundrobin", b""), ("range", b"")))
    assert t not in h.replies or h.replies[t].generation_id == 2
    assert h.group.generation_id == 2
    assert h.group.protocol_name == "roundrobin"


def test_static_member_leaves_by_instance_id():
    h = Harness()
    a = h.replies[h.join(client="a", instance="i-a")].member_id
    out = h.group.leave([("", "i-a")], 1)
    assert out.errors == [("", "i-a", E.none)] and not h.group.members
    out = h.group.leave([("other", "i-x")], 1)
    assert out.errors[0][2] == E.unknown_member_id
    assert a not in h.group.members


def test_pending_member_id_expires():
    h = Harness()
    mid = h.new_member("a", session=1000)
    h.tick(1000)
    assert not h.group.pending
    assert h.replies[h.join(mid, "a")].error == E.unknown_member_id


def test_leader_that_never_syncs_is_removed_after_rebalance_timeout():
    h = Harness()
    a = h.new_member("a")
    h.join(a, "a")
    b = h.new_member("b")
    tb = h.join(b, "b")
    ta = h.join(a, "a")
    gen = h.replies[ta].generation_id
    leader = h.replies[ta].leader
    follower = b if leader == a else a
    s = h.sync(follower, gen)
    h.tick(REBALANCE)
    assert leader not in h.group.members
    assert h.replies[s].error == E.rebalance_in_progress or h.group.state == S.COMPLETING_REBALANCE


@pytest.mark.parametrize("version", [0, 1, 3])
def test_subscribed_topics_from_consumer_metadata(version):
    h = Harness()
    a = h.new_member("a")
    h.join(a, "a", protocols=(("range", encode_subscription(["t1", "t2"], version)),))
    h.sync(a, 1, {a: b""})
    assert h.group.subscribed_topics() == {"t1", "t2"}


def test_initial_rebalance_delay_holds_the_first_generation_and_grows_per_joiner():
    """Kafka's InitialDelayedJoin: 3 s after the first join, 3 s more per member joining
    meanwhile, at most the rebalance timeout; members starting together share generation 1."""
    h = Harness(initial_delay_ms=3000)
    a = h.new_member("a")
    ta = h.join(a, "a", now=0, rebalance=7000)
    h.tick(2999)
    assert ta not in h.replies and h.group.next_deadline_ms() <= 3000  # held, though all joined
    b = h.new_member("b", now=1000)
    tb = h.join(b, "b", now=1000, rebalance=7000)
    h.tick(3000)  # b joined during the delay: 3 s more (4 s of the 7 s timeout left)
    assert ta not in h.replies and tb not in h.replies
    c = h.new_member("c", now=4000)
    tc = h.join(c, "c", now=4000, rebalance=7000)
    h.tick(6000)  # c joined: only 1 s of the timeout is left
    assert tc not in h.replies
    h.tick(7000)
    assert {h.replies[t].generation_id for t in (ta, tb, tc)} == {1}
    assert h.replies[ta].error == E.none and len(h.group.members) == 3


def test_initial_rebalance_delay_only_for_an_empty_group():
    h = Harness(initial_delay_ms=3000)
    a = h.new_member("a")
    ta = h.join(a, "a")
    h.tick(3000)
    assert h.replies[ta].generation_id == 1
    h.sync(a, 1, {a: b"A"}, now=3000)
    b = h.new_member("b", now=3000)
    tb = h.join(b, "b", now=3000)
    ta2 = h.join(a, "a", now=3000)
    assert h.replies[tb].generation_id == h.replies[ta2].generation_id == 2  # at once: not empty
