"""GroupMember against a real group coordinator: our in-process broker (and Apache Kafka in
tests/interop). Members here are bare memberships with a fixed view of the link's
partitions; a shared ledger checks that no partition is ever held by two members."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from cluster.client.client import KafkaClient
from mirror.daemon.membership import GroupMember, MembershipConfig

TP = tuple[str, int]
FAST = MembershipConfig(session_timeout_ms=6_000, rebalance_timeout_ms=10_000, heartbeat_interval_s=0.3)


def parts(**topics: int) -> list[TP]:
    return [(t, p) for t, n in topics.items() for p in range(n)]


@dataclass
class Ledger:
    """Every member's current share; asserts exclusivity at every change."""

    shares: dict[str, frozenset[TP]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def hook(self, name: str):
        async def on_assignment(share: frozenset[TP]) -> None:
            self.shares[name] = share
            for other, theirs in self.shares.items():
                if other != name and share & theirs:
                    self.violations.append(f"{name} and {other} both hold {sorted(share & theirs)}")
        return on_assignment


@dataclass
class Running:
    member: GroupMember
    stop: asyncio.Event
    task: asyncio.Task


async def start(bootstrap: str, name: str, view: list[TP], ledger: Ledger, group: str = "dcmirror.test",
                config: MembershipConfig = FAST) -> Running:
    m = GroupMember(KafkaClient(bootstrap, client_id=name), group, config)
    m.filter(view)  # what LinkRunner does after its first topic sync
    stop = asyncio.Event()
    return Running(m, stop, asyncio.create_task(m.run(stop, ledger.hook(name))))


async def eventually(pred, timeout: float = 30.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)


def settled(ledger: Ledger, members: list[Running], view: list[TP]) -> bool:
    shares = [ledger.shares.get(n, frozenset()) for n in ledger.shares]
    sizes = [len(r.member.assigned) for r in members]
    return (frozenset().union(*shares) == frozenset(view) and sum(len(s) for s in shares) == len(view)
            and max(sizes) - min(sizes) <= 1 and all(not r.member.group.rejoin_requested for r in members))


async def stop_all(*rs: Running) -> None:
    for r in rs:
        r.stop.set()
    await asyncio.gather(*(r.task for r in rs))


async def scenario_split_and_take_over(bootstrap: str) -> None:
    view = parts(orders=6)
    ledger = Ledger()
    a = await start(bootstrap, "a", view, ledger)
    await eventually(lambda: len(a.member.assigned) == 6, what="a alone owns all")
    assert a.member.is_leader
    b = await start(bootstrap, "b", view, ledger)
    b.member.filter(view)
    await eventually(lambda: settled(ledger, [a, b], view), what="a and b split the partitions")
    assert len(a.member.assigned) == len(b.member.assigned) == 3
    # b stops cleanly (LeaveGroup): a takes everything back without waiting for a timeout
    await stop_all(b)
    assert ledger.shares["b"] == frozenset()
    await eventually(lambda: len(a.member.assigned) == 6, timeout=5, what="a took over b's share")
    assert not ledger.violations, ledger.violations
    await stop_all(a)


async def test_two_members_split_then_one_leaves(broker) -> None:
    await scenario_split_and_take_over(f"127.0.0.1:{broker.advertised_port}")


async def test_a_crashed_member_is_replaced_after_the_session_timeout(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    view = parts(t=4)
    ledger = Ledger()
    a = await start(bootstrap, "a", view, ledger)
    await eventually(lambda: len(a.member.assigned) == 4, what="a owns all")
    b = await start(bootstrap, "b", view, ledger)
    await eventually(lambda: settled(ledger, [a, b], view), what="split")

    async def no_leave() -> None:  # a crash: no LeaveGroup, the socket just goes away
        b.member.group.joined = False

    b.member.group.leave = no_leave  # type: ignore[method-assign]
    b.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b.task
    ledger.shares["b"] = frozenset()  # the process is gone with its share
    await eventually(lambda: len(a.member.assigned) == 4, timeout=FAST.session_timeout_ms / 1000 + 10,
                     what="a took over after b's session expired")
    assert not ledger.violations, ledger.violations
    await stop_all(a)


async def test_new_partitions_trigger_a_rebalance(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    view = parts(t=2)
    ledger = Ledger()
    a = await start(bootstrap, "a", view, ledger)
    b = await start(bootstrap, "b", view, ledger)
    await eventually(lambda: settled(ledger, [a, b], view), what="split")
    grown = view + parts(u=4)
    leader, other = (a, b) if a.member.is_leader else (b, a)
    other.member.filter(grown)  # a follower's view changing alone does not rebalance...
    leader.member.filter(grown)  # ...the leader's does
    await eventually(lambda: settled(ledger, [a, b], grown), what="new partitions dealt")
    assert not ledger.violations, ledger.violations
    await stop_all(a, b)


async def test_three_members_join_and_leave_without_double_ownership(broker) -> None:
    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    view = parts(x=7, y=3)
    ledger = Ledger()
    rs = [await start(bootstrap, n, view, ledger) for n in "abc"]
    await eventually(lambda: settled(ledger, rs, view), what="three-way split")
    assert sorted(len(r.member.assigned) for r in rs) == [3, 3, 4]
    await stop_all(rs[0])
    await eventually(lambda: settled(ledger, rs[1:], view), what="two-way split")
    d = await start(bootstrap, "d", view, ledger)
    await eventually(lambda: settled(ledger, rs[1:] + [d], view), what="three-way split again")
    assert not ledger.violations, ledger.violations
    await stop_all(*rs[1:], d)



# ---- LinkRunner's side: a revoked partition is not written after the revocation returned --
class _Source:
    """Serves one record per partition per fetch."""

    def cached_topic_id(self, topic: str):
        return None

    async def fetch(self, req, **kw):
        from cluster.client.data import FetchResult
        from cluster.wire.batch_builder import build_batch

        await asyncio.sleep(0.01)
        return {tp: FetchResult(0, high_watermark=pos.offset + 1, log_start_offset=0,
                                records=build_batch([(b"k", b"v", [], 1)], base_offset=pos.offset))
                for tp, pos in req.items()}


class _GatedSink:
    """Records writes; the write named by `gate` waits for `release`."""

    mode = "preserve-offsets"

    def __init__(self, gate: int) -> None:
        self.writes: list[TP] = []
        self.gate = gate
        self.calls = 0
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def resume_positions(self, tps):
        return {tp: 0 for tp in tps}

    async def write(self, data):
        from cluster.wire import record_batch as rb
        from mirror.replication.sinks import Written

        self.calls += 1
        if self.calls == self.gate:
            self.in_flight.set()
            await self.release.wait()
        await asyncio.sleep(0.01)
        self.writes.extend(data)
        return {tp: Written(rb.read_header(bs[-1]).next_offset, []) for tp, bs in data.items()}


async def revocation_during_a_write(copier_class) -> None:
    from mirror.replication.progress import LinkProgress

    sink = _GatedSink(gate=3)
    copier = copier_class("l", _Source(), sink, LinkProgress("l"), lambda t: t)
    copier.set_assignment([("t", 0), ("t", 1)])
    stop = asyncio.Event()
    run = asyncio.create_task(copier.run(stop))
    await asyncio.wait([asyncio.ensure_future(sink.in_flight.wait()), run],
                       return_when=asyncio.FIRST_COMPLETED)
    assert not run.done(), run.exception()
    copier.set_assignment([("t", 0)])  # revoked while a write of it is in flight
    drained = asyncio.create_task(copier.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()  # the in-flight write has not landed yet
    sink.release.set()
    await drained
    written_at_revocation = sink.writes.count(("t", 1))
    await eventually(lambda: sink.writes.count(("t", 0)) >= written_at_revocation + 5,
                     what="t-0 keeps being copied")
    assert sink.writes.count(("t", 1)) == written_at_revocation  # t-1 is no longer written
    assert not run.done()
    stop.set()
    await run


async def test_revocation_waits_for_the_in_flight_write_and_stops_the_partition() -> None:
    from mirror.replication.link import _FencedCopier

    await revocation_during_a_write(_FencedCopier)


# ---- the same membership against Apache Kafka's group coordinator ---------------------------
from tests.interop.conftest import kafka_broker  # noqa: E402,F401  (session fixture)


@pytest.mark.interop
async def test_membership_against_apache_kafka(kafka_broker) -> None:  # noqa: F811
    import uuid

    bootstrap = kafka_broker.bootstrap
    view = parts(orders=6)
    ledger = Ledger()
    group = f"dcmirror.interop-{uuid.uuid4().hex[:8]}"
    a = await start(bootstrap, "a", view, ledger, group)
    await eventually(lambda: len(a.member.assigned) == 6, what="a alone owns all")
    b = await start(bootstrap, "b", view, ledger, group)
    await eventually(lambda: settled(ledger, [a, b], view), what="a and b split the partitions")
    assert len(a.member.assigned) == len(b.member.assigned) == 3
    # Kafka sees a classic group of protocol type dcmirror with our protocol
    async with KafkaClient(bootstrap) as admin:
        desc = (await admin.describe_groups([group]))[group]
    assert (desc.state, desc.protocol_type, desc.protocol) == ("Stable", "dcmirror", "dcmirror-sticky-v1")
    assert len(desc.members) == 2
    grown = view + parts(payments=2)
    for r in (a, b):
        r.member.filter(grown)
    await eventually(lambda: settled(ledger, [a, b], grown), what="new partitions dealt")
    await stop_all(b)
    await eventually(lambda: len(a.member.assigned) == 8, timeout=10, what="a took over after b left")
    assert not ledger.violations, ledger.violations
    await stop_all(a)
