"""The asyncio driver: deferred joins/syncs, offsets, admin APIs and restart recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode as E

from cluster.groups.coordinator import GroupCoordinator
from cluster.groups.model import GroupConfig
from cluster.groups.subscription import encode_subscription


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def coord(tmp_path: Path):
    clock = Clock()
    c = GroupCoordinator(tmp_path, 1, clock=clock, tick_interval_s=3600, config=GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0))
    c.test_clock = clock  # type: ignore[attr-defined]
    await c.start()
    yield c
    await c.close()


SUB = [("range", encode_subscription(["t"]))]


async def join(c: GroupCoordinator, client: str, member_id: str = "", **kw) -> dict:
    args = dict(group_instance_id=None, protocol_type="consumer", protocols=SUB,
                session_timeout_ms=10_000, rebalance_timeout_ms=20_000, client_id=client)
    args.update(kw)
    r = await c.join_group("g", member_id, **args)
    if r["error_code"] == E.member_id_required:
        r = await c.join_group("g", r["member_id"], **args)
    return r


async def two_members(c: GroupCoordinator) -> tuple[dict, dict]:
    """a forms generation 1 alone; b's join waits until a rejoins, as its heartbeat asks."""
    ra = await join(c, "a")
    b_join = asyncio.create_task(join(c, "b"))
    while (await c.heartbeat("g", ra["generation_id"], ra["member_id"]))["error_code"] != E.rebalance_in_progress:
        await asyncio.sleep(0.001)
    ra = await join(c, "a", ra["member_id"])
    return ra, await b_join


async def test_join_sync_commit_fetch(coord: GroupCoordinator):
    ra = await join(coord, "a")
    assert ra["error_code"] == E.none and ra["leader"] == ra["member_id"]
    a, gen = ra["member_id"], ra["generation_id"]
    # b's join waits for a to rejoin; a rejoins after its heartbeat says so
    b_join = asyncio.create_task(join(coord, "b"))
    await asyncio.sleep(0.01)
    assert not b_join.done()
    assert (await coord.heartbeat("g", gen, a))["error_code"] == E.rebalance_in_progress
    ra = await join(coord, "a", a)
    rb = await b_join
    gen2 = ra["generation_id"]
    assert gen2 == rb["generation_id"] == gen + 1
    assert len(ra["members"]) == 2 and rb["members"] == []
    b = rb["member_id"]
    follower = asyncio.create_task(coord.sync_group("g", gen2, b, None, {}))
    leader = await coord.sync_group("g", gen2, a, None, {a: b"A", b: b"B"}, "consumer", "range")
    assert leader["assignment"] == b"A" and (await follower)["assignment"] == b"B"
    topics = [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 42, "committed_metadata": "x"}]}]
    r = await coord.offset_commit("g", gen2, b, None, topics)
    assert r["topics"][0]["partitions"][0]["error_code"] == E.none
    r = await coord.offset_commit("g", gen2 - 1, b, None, topics)
    assert r["topics"][0]["partitions"][0]["error_code"] == E.illegal_generation
    r = await coord.offset_commit("g", -1, "", None, topics)  # simple commit: group has members
    assert r["topics"][0]["partitions"][0]["error_code"] == E.unknown_member_id
    f = await coord.offset_fetch("g", {"t": [0, 1]})
    parts = f["topics"][0]["partitions"]
    assert (parts[0]["committed_offset"], parts[0]["metadata"]) == (42, "x")
    assert parts[1]["committed_offset"] == -1


async def test_simple_commits_and_unknown_groups(coord: GroupCoordinator):
    topics = [{"name": "t", "partitions": [{"partition_index": 3, "committed_offset": 7}]}]
    r = await coord.offset_commit("nogroup", 5, "m", None, topics)
    assert r["topics"][0]["partitions"][0]["error_code"] == E.illegal_generation
    r = await coord.offset_commit("mirror", -1, "", None, topics)
    assert r["topics"][0]["partitions"][0]["error_code"] == E.none
    f = await coord.offset_fetch("mirror", None)
    assert f["topics"][0]["partitions"][0]["committed_offset"] == 7
    f = await coord.offset_fetch("never", {"t": [0]})
    assert f["topics"][0]["partitions"][0]["committed_offset"] == -1
    listed = await coord.list_groups()
    assert [(g["group_id"], g["group_state"]) for g in listed["groups"]] == [("mirror", "Empty")]
    assert (await coord.heartbeat("nogroup", 1, "m"))["error_code"] == E.unknown_member_id
    assert (await coord.sync_group("nogroup", 1, "m", None, {}))["error_code"] == E.unknown_member_id
    assert (await coord.join_group("", "", None, "consumer", SUB, 10_000, 10_000))["error_code"] == E.invalid_group_id


async def test_describe_list_delete_and_offset_delete(coord: GroupCoordinator):
    ra = await join(coord, "a")
    a = ra["member_id"]
    await coord.sync_group("g", ra["generation_id"], a, None, {a: b"asg"})
    topics = [{"name": n, "partitions": [{"partition_index": 0, "committed_offset": 1}]} for n in ("t", "old")]
    await coord.offset_commit("g", ra["generation_id"], a, None, topics)
    [d] = await coord.describe_groups(["g"])
    assert d["group_state"] == "Stable" and d["protocol_data"] == "range" and d["protocol_type"] == "consumer"
    assert d["members"][0]["member_assignment"] == b"asg" and d["members"][0]["client_id"] == "a"
    [missing] = await coord.describe_groups(["nope"])
    assert missing["group_state"] == "Dead"
    assert [g["group_id"] for g in (await coord.list_groups(["stable"]))["groups"]] == ["g"]
    assert (await coord.list_groups(["Empty"]))["groups"] == []
    r = await coord.offset_delete("g", {"t": [0], "old": [0]})
    errs = {t["name"]: t["partitions"][0]["error_code"] for t in r["topics"]}
    assert errs == {"t": E.group_subscribed_to_topic, "old": E.none}
    assert (await coord.offset_fetch("g", {"old": [0]}))["topics"][0]["partitions"][0]["committed_offset"] == -1
    assert (await coord.delete_groups(["g", "nope"])) == [
        {"group_id": "g", "error_code": E.non_empty_group},
        {"group_id": "nope", "error_code": E.group_id_not_found},
    ]
    r = await coord.leave_group("g", [(a, None)])
    assert r["members"][0]["error_code"] == E.none
    assert (await coord.delete_groups(["g"])) == [{"group_id": "g", "error_code": E.none}]
    assert (await coord.offset_fetch("g", {"t": [0]}))["topics"][0]["partitions"][0]["committed_offset"] == -1


async def test_session_expiry_via_tick(coord: GroupCoordinator):
    ra, rb = await two_members(coord)
    gen = ra["generation_id"]
    leader = ra if ra["members"] else rb
    other = rb if leader is ra else ra
    await asyncio.gather(
        coord.sync_group("g", gen, leader["member_id"], None, {}),
        coord.sync_group("g", gen, other["member_id"], None, {}),
    )
    coord.test_clock.now += 9_000  # type: ignore[attr-defined]
    await coord.heartbeat("g", gen, leader["member_id"])
    coord.test_clock.now += 2_000  # type: ignore[attr-defined]
    coord.tick()
    [d] = await coord.describe_groups(["g"])
    assert [m["member_id"] for m in d["members"]] == [leader["member_id"]]
    assert d["group_state"] == "PreparingRebalance"


async def test_restart_restores_stable_group_and_offsets(tmp_path: Path):
    c = GroupCoordinator(tmp_path, 1, config=GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0))
    await c.start()
    ra = await join(c, "a", group_instance_id="inst")
    a, gen = ra["member_id"], ra["generation_id"]
    await c.sync_group("g", gen, a, "inst", {a: b"asg"})
    await c.offset_commit("g", gen, a, "inst", [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 9}]}])
    await c.close()

    c = GroupCoordinator(tmp_path, 1, config=GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0))
    await c.start()
    try:
        assert (await c.heartbeat("g", gen, a, "inst"))["error_code"] == E.none
        assert (await c.sync_group("g", gen, a, "inst", {}))["assignment"] == b"asg"
        assert (await c.offset_fetch("g", None))["topics"][0]["partitions"][0]["committed_offset"] == 9
        [d] = await c.describe_groups(["g"])
        assert d["group_state"] == "Stable" and d["members"][0]["group_instance_id"] == "inst"
    finally:
        await c.close()


async def test_close_fails_waiting_joins(tmp_path: Path):
    c = GroupCoordinator(tmp_path, 1, config=GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0))
    await c.start()
    ra = await join(c, "a")
    pending = asyncio.create_task(join(c, "b"))
    await asyncio.sleep(0.01)
    assert not pending.done() and ra["error_code"] == E.none
    await c.close()
    with pytest.raises(ConnectionAbortedError):
        await pending


async def test_cleanup_drops_only_empty_groups_without_offsets(coord: GroupCoordinator):
    ra = await join(coord, "a")
    await coord.leave_group("g", [(ra["member_id"], None)])
    await coord.offset_commit("kept", -1, "", None, [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 1}]}])
    coord.tick()  # the cleanup cadence has not come round yet
    assert set(coord.groups) == {"g", "kept"}
    coord.cleanup()
    assert set(coord.groups) == {"kept"}
    [d] = await coord.describe_groups(["g"])
    assert d["group_state"] == "Dead"


async def test_failed_journal_write_acknowledges_nothing(coord: GroupCoordinator, monkeypatch):
    ra = await join(coord, "a")
    a = ra["member_id"]

    def disk_full(records):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(coord.store, "append", disk_full)
    # the leader's SyncGroup must persist the assignment before anyone is answered
    with pytest.raises(OSError):
        await coord.sync_group("g", ra["generation_id"], a, None, {a: b"x"})
    with pytest.raises(OSError):
        await coord.offset_commit("g", ra["generation_id"], a, None,
                                  [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 1}]}])


async def test_failed_journal_write_fails_waiting_followers(coord: GroupCoordinator, monkeypatch):
    ra, rb = await two_members(coord)
    leader, follower = (ra, rb) if ra["members"] else (rb, ra)
    gen = leader["generation_id"]
    waiting = asyncio.create_task(coord.sync_group("g", gen, follower["member_id"], None, {}))
    await asyncio.sleep(0.01)
    assert not waiting.done()

    def disk_full(records):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(coord.store, "append", disk_full)
    with pytest.raises(OSError):
        await coord.sync_group("g", gen, leader["member_id"], None, {follower["member_id"]: b"x"})
    assert (await waiting)["error_code"] == E.coordinator_not_available
