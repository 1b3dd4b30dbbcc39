"""GroupMembership (cluster/client/group_member.py) with a toy protocol, against the
in-process broker's group coordinator: the leader divides work from every member's join
metadata, a clean leave hands a share over at once, a fenced member hears `on_lost`
before it rejoins, and a cluster without groups runs the protocol alone. The mirror's own
protocol over it is tested in tests/mirror/daemon/test_membership.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from cluster.client import KafkaClient
from cluster.client.group_member import GroupMembership, GroupTimeouts

FAST = GroupTimeouts(session_timeout_ms=6_000, rebalance_timeout_ms=10_000, heartbeat_interval_s=0.2)
WORK = [f"w{i}" for i in range(6)]


@dataclass
class RoundRobin:
    """Members say their name; the leader deals WORK round-robin over the sorted names."""

    name: str
    protocol_type: str = "toy"
    protocol_name: str = "round-robin"
    share: list[str] = field(default_factory=list)
    seen_members: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    alone: bool = False

    async def join_metadata(self) -> bytes:
        return json.dumps({"name": self.name}).encode()

    def assign(self, generation: int, leader_id: str, members: list[tuple[str, bytes]]) -> dict[str, bytes]:
        names = sorted((json.loads(meta)["name"], mid) for mid, meta in members)
        self.seen_members = [n for n, _ in names]
        return {mid: json.dumps(WORK[i::len(names)]).encode() for i, (_, mid) in enumerate(names)}

    async def on_assignment(self, generation: int, assignment: bytes) -> None:
        self.share = json.loads(assignment)
        self.events.append(f"assigned {generation}")

    async def on_lost(self, why: str) -> None:
        self.share = []
        self.events.append(f"lost: {why}")

    async def on_leave(self) -> None:
        self.share = []
        self.events.append("leave")

    async def without_coordinator(self, stop: asyncio.Event) -> None:
        self.alone = True
        self.share = list(WORK)


async def eventually(pred, timeout: float = 20.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, f"{what} not reached within {timeout}s"
        await asyncio.sleep(0.05)


def start(bootstrap: str, name: str, group: str) -> tuple[GroupMembership, RoundRobin, asyncio.Event, asyncio.Task]:
    proto = RoundRobin(name)
    m = GroupMembership(KafkaClient(bootstrap, client_id=name), group, proto, FAST)
    stop = asyncio.Event()
    return m, proto, stop, asyncio.create_task(m.run(stop))


async def test_the_leader_divides_and_a_clean_leave_hands_over_at_once(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    a, pa, stop_a, run_a = start(bootstrap, "a", "toy-1")
    await eventually(lambda: pa.share == WORK, what="a alone has all the work")
    assert a.is_leader and a.generation >= 1
    b, pb, stop_b, run_b = start(bootstrap, "b", "toy-1")
    await eventually(lambda: sorted(pa.share + pb.share) == WORK and pa.share and pb.share, what="split")
    leader = pa if a.is_leader else pb
    assert leader.seen_members == ["a", "b"] and a.generation == b.generation
    stop_b.set()
    await run_b
    assert pb.events[-1] == "leave" and not b.joined
    await eventually(lambda: pa.share == WORK, timeout=FAST.session_timeout_ms / 1000 - 1,
                     what="a took b's share back before any session timeout")
    stop_a.set()
    await run_a
    await a.client.close()
    await b.client.close()


async def test_a_fenced_member_hears_on_lost_before_it_rejoins(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    a, pa, stop, run = start(bootstrap, "a", "toy-2")
    await eventually(lambda: pa.share == WORK, what="joined")
    joined_at = a.generation
    a.generation = joined_at + 100  # the coordinator answers ILLEGAL_GENERATION to the next heartbeat
    await eventually(lambda: any(e.startswith("lost: heartbeat answered illegal_generation") for e in pa.events),
                     what=f"the fence seen ({pa.events})")
    await eventually(lambda: pa.share == WORK and a.joined and a.generation > joined_at, what="rejoined")
    lost = next(i for i, e in enumerate(pa.events) if e.startswith("lost"))
    assert pa.events[lost + 1].startswith("assigned")  # the share came back only through a new join
    stop.set()
    await run
    await a.client.close()


async def test_without_a_coordinator_the_protocol_runs_alone(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    proto = RoundRobin("solo")
    async with KafkaClient(bootstrap) as client:
        conn = await client.any_connection()
        del conn.versions.ranges[11]  # as a cluster that offers no JoinGroup
        m = GroupMembership(client, "toy-3", proto, FAST)
        await asyncio.wait_for(m.run(asyncio.Event()), 10)
    assert proto.alone and m.standalone and proto.share == WORK and not m.joined
