"""Random interleavings of joins, syncs, heartbeats, leaves and time against the state machine.

Simulated clients follow the classic protocol (join with the MEMBER_ID_REQUIRED handshake,
sync after a join answer, rejoin on REBALANCE_IN_PROGRESS / UNKNOWN_MEMBER_ID), but
hypothesis chooses who acts when and how far the clock jumps. After every step the
machine's invariants must hold; at the end, once everyone behaves, the group must settle
to Stable with every live client a member of the same generation and each answer given once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings, strategies as st
from kio.schema.errors import ErrorCode as E

from cluster.groups.model import GroupConfig, GroupState as S, JoinRequest, JoinResult, Reply, SyncResult
from cluster.groups.state import Group

SESSION = 1_000
REBALANCE = 3_000


@dataclass
class Client:
    name: str
    static: bool
    member_id: str = ""
    generation: int = -1
    is_leader: bool = False
    join_token: int | None = None
    sync_token: int | None = None
    members: list[str] = field(default_factory=list)
    synced: bool = False
    active: bool = True


class World:
    def __init__(self, n_clients: int, statics: list[bool]) -> None:
        ids = itertools.count(1)
        self.group = Group("g", GroupConfig(min_session_timeout_ms=1, initial_rebalance_delay_ms=0), lambda cid: f"{cid}-{next(ids)}")
        self.clients = [Client(f"c{i}", statics[i]) for i in range(n_clients)]
        self.tokens = itertools.count(1)
        self.answered: set[int] = set()
        self.now = 0

    def apply(self, effects) -> None:
        for e in effects:
            if not isinstance(e, Reply):
                continue
            assert e.token not in self.answered, "a request was answered twice"
            self.answered.add(e.token)
            for c in self.clients:
                if c.join_token == e.token:
                    c.join_token = None
                    self.on_join(c, e.result)
                elif c.sync_token == e.token:
                    c.sync_token = None
                    self.on_sync(c, e.result)

    def on_join(self, c: Client, r: JoinResult) -> None:
        if r.error == E.none:
            c.member_id, c.generation, c.is_leader = r.member_id, r.generation_id, r.leader == r.member_id
            c.members = [m.member_id for m in r.members]
            c.synced = False
        elif r.error == E.member_id_required:
            c.member_id = r.member_id
        elif r.error in (E.unknown_member_id, E.fenced_instance_id):
            c.member_id, c.generation = "", -1

    def on_sync(self, c: Client, r: SyncResult) -> None:
        if r.error == E.none:
            c.synced = True
        elif r.error in (E.unknown_member_id, E.fenced_instance_id):
            c.member_id, c.generation = "", -1

    def join(self, c: Client) -> None:
        if c.join_token is not None or c.sync_token is not None:
            return
        c.join_token = next(self.tokens)
        req = JoinRequest(c.member_id, c.name if c.static else None, c.name, "", SESSION, REBALANCE,
                          "consumer", (("range", b""),))
        self.apply(self.group.join(req, c.join_token, self.now))

    def sync(self, c: Client) -> None:
        if c.join_token is not None or c.sync_token is not None or c.generation < 0:
            return
        c.sync_token = next(self.tokens)
        assignments = {m: m.encode() for m in c.members} if c.is_leader else {}
        self.apply(self.group.sync(c.generation, c.member_id, c.name if c.static else None, None, None,
                                   assignments, c.sync_token, self.now))

    def heartbeat(self, c: Client) -> None:
        if not c.member_id or c.generation < 0:
            return
        err = self.group.heartbeat(c.generation, c.member_id, c.name if c.static else None, self.now)
        if err in (E.unknown_member_id, E.fenced_instance_id):
            c.member_id, c.generation = "", -1
        if err != E.none:
            self.join(c)

    def leave(self, c: Client) -> None:
        if c.member_id and c.join_token is None and c.sync_token is None:
            out = self.group.leave([(c.member_id, c.name if c.static else None)], self.now)
            self.apply(out.effects)
            c.member_id, c.generation, c.synced = "", -1, False

    def tick(self, dt: int) -> None:
        self.now += dt
        self.apply(self.group.tick(self.now))

    def check(self) -> None:
        g = self.group
        if g.members:
            assert g.leader_id in g.members
            assert g.state != S.EMPTY
        else:
            assert g.state in (S.EMPTY, S.PREPARING_REBALANCE)
        for m in g.members.values():
            assert m.join_token is None or g.state == S.PREPARING_REBALANCE
            assert m.sync_token is None or g.state == S.COMPLETING_REBALANCE
        for iid, mid in g.static.items():
            assert g.members[mid].group_instance_id == iid
        # every request a client still waits on is one the machine still holds
        held = {m.join_token for m in g.members.values()} | {m.sync_token for m in g.members.values()}
        for c in self.clients:
            for t in (c.join_token, c.sync_token):
                assert t is None or t in held, "a client waits for an answer the machine forgot"

    def settle(self) -> None:
        """Everyone behaves: join, sync, heartbeat, in small time steps, until Stable."""
        for c in self.clients:
            c.active = True
        for _ in range(200):
            for c in self.clients:
                if c.join_token is not None or c.sync_token is not None:
                    continue
                if not c.member_id or c.generation < 0:
                    self.join(c)
                elif not c.synced:
                    self.sync(c)
                else:
                    self.heartbeat(c)
            self.tick(100)
            self.check()
            g = self.group
            if (
                g.state == S.STABLE
                and all(c.synced and c.generation == g.generation_id for c in self.clients)
                and {c.member_id for c in self.clients} == set(g.members)
            ):
                return
        raise AssertionError(f"group did not settle: {g.state}, members {list(g.members)}")


op = st.tuples(st.sampled_from(["join", "sync", "heartbeat", "leave", "tick"]), st.integers(0, 3), st.integers(1, 2500))


@settings(max_examples=150, deadline=None)
@given(statics=st.lists(st.booleans(), min_size=4, max_size=4), ops=st.lists(op, max_size=60))
def test_random_interleavings_keep_invariants_and_settle(statics, ops) -> None:
    w = World(4, statics)
    for name, who, dt in ops:
        c = w.clients[who]
        if name == "tick":
            w.tick(dt)
        else:
            getattr(w, name)(c)
        w.check()
    w.settle()
