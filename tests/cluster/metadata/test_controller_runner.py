"""The controller runner over a real store (SQLite and etcd): election, fencing, requests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from kio.schema.errors import ErrorCode

from cluster.metadata.controller import ControllerConfig
from cluster.metadata.controller_runner import ControllerClient, ControllerRunner, LostControl
from cluster.metadata.model import NO_LEADER, keys
from cluster.metadata.store import MetadataStore

import pytest


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _brokers(store: MetadataStore, n: int) -> list[ControllerClient]:
    clients = [ControllerClient(store, node, "127.0.0.1", 9000 + node, interval_s=0.02) for node in range(1, n + 1)]
    for c in clients:
        await c.heartbeat()
    return clients


async def test_one_controller_wins_and_epochs_fence_the_deposed(open_stores: Callable[[], MetadataStore],
                                                                store_url: str) -> None:
    a, b = ControllerRunner(open_stores(), 1), ControllerRunner(open_stores(), 2)
    won = await asyncio.gather(a.campaign(), b.campaign())
    assert sorted(won) == [False, True]
    winner, loser = (a, b) if won[0] else (b, a)
    assert winner.epoch == 1 and not await loser.campaign()
    await winner.store.delete(keys.CONTROLLER)  # as if its lease expired
    assert await loser.campaign() and loser.epoch == 2
    with pytest.raises(LostControl):
        await winner.step()  # the deposed controller writes nothing
    await loser.step()


async def test_registration_topics_and_fencing(store: MetadataStore) -> None:
    clock = FakeClock()
    runner = ControllerRunner(store, 1, ControllerConfig(session_timeout_s=5.0), clock=clock)
    assert await runner.campaign()
    brokers = await _brokers(store, 3)
    await runner.step()
    regs = [await b.registration() for b in brokers]
    assert [r.broker_epoch for r in regs] == [1, 2, 3]  # type: ignore[union-attr]

    async def create(name: str, partitions: int, rf: int):
        task = asyncio.create_task(brokers[0].request("create_topic", name=name, partitions=partitions,
                                                      replication_factor=rf, topic_id=str(uuid.uuid4())))
        while not task.done():
            await runner.step()
            await asyncio.sleep(0.02)
        return task.result()

    assert (await create("spread", 6, 1)).ok
    assert (await create("rf2", 3, 2)).ok
    refused = await create("rf4", 1, 4)
    assert refused.error == ErrorCode.invalid_replication_factor and "4 is larger than the 3" in refused.message
    parts = await brokers[0].partitions()
    assert sorted(parts[("spread", p)].leader for p in range(6)) == [1, 1, 2, 2, 3, 3]

    # brokers 1 and 2 keep heartbeating, 3 falls silent past the session timeout
    for _ in range(3):
        clock.now += 2.0
        await brokers[0].heartbeat()
        await brokers[1].heartbeat()
        await runner.step()
    info = {b.node_id: b for b in (await brokers[0].brokers()).values()}
    assert info[3].fenced and not info[1].fenced
    after = await brokers[0].partitions()
    for p in range(3):
        old, new = parts[("rf2", p)], after[("rf2", p)]
        assert 3 not in new.isr and new.leader != 3 and new.leader != NO_LEADER
        if old.leader == 3:
            assert new.leader_epoch == old.leader_epoch + 1
    assert [after[("spread", p)].leader for p in range(6) if parts[("spread", p)].leader == 3] == [NO_LEADER] * 2

    # broker 3 restarts: a new incarnation, a new broker epoch, its RF-1 partitions back
    restarted = ControllerClient(store, 3, "127.0.0.1", 9003)
    await restarted.heartbeat()
    await runner.step()
    assert (await restarted.registration()).broker_epoch == 4  # type: ignore[union-attr]
    back = await brokers[0].partitions()
    assert all(back[("spread", p)].leader == 3 for p in range(6) if parts[("spread", p)].leader == 3)


async def test_controller_failover_by_lease_expiry(open_stores: Callable[[], MetadataStore],
                                                   store_url: str) -> None:
    """The running controller stops renewing (as a SIGKILLed one): another takes over.

    A TTL of 1 s, not less: on a loaded machine a stall of one TTL legitimately costs the
    holder its lease (and a takeover bumps the epoch once more)."""
    ttl = 1.0
    runners = [ControllerRunner(open_stores(), n, lease_ttl_s=ttl, interval_s=0.05) for n in (1, 2)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await _until(lambda: any(r.active for r in runners))
        first = next(r for r in runners if r.active)
        tasks[runners.index(first)].cancel()  # dies without revoking its lease
        other = runners[1 - runners.index(first)]
        await _until(lambda: other.active, timeout=20)
        assert other.epoch > first.epoch
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def test_a_new_controller_fences_brokers_whose_heartbeat_stands_still(
        open_stores: Callable[[], MetadataStore]) -> None:
    """A heartbeat key merely present (left by a dead broker) is not a heartbeat: after a
    takeover only brokers whose sequence advances stay unfenced."""
    store = open_stores()
    clock = FakeClock()
    first = ControllerRunner(store, 1, ControllerConfig(session_timeout_s=5.0), clock=clock)
    assert await first.campaign()
    alive, dead = await _brokers(store, 2)
    await first.step()
    await store.delete(keys.CONTROLLER)  # the first controller is gone
    second = ControllerRunner(open_stores(), 2, ControllerConfig(session_timeout_s=5.0), clock=clock)
    assert await second.campaign()
    await second.step()  # first sight: a grace of one session timeout for both
    for _ in range(4):
        clock.now += 2.0
        await alive.heartbeat()
        await second.step()
    info = await alive.brokers()
    assert not info[alive.node_id].fenced and info[dead.node_id].fenced
