"""Offset expiry (offsets.retention.minutes) by Kafka's rules: the pure rule
(cluster/groups/offsets.py `expire`) and the coordinator's cleanup with a fake clock,
the expiry surviving a restart."""

from __future__ import annotations

from pathlib import Path

from cluster.groups import offsets as rules
from cluster.groups.coordinator import GroupCoordinator
from cluster.groups.model import CommittedOffset, GroupConfig, GroupState as S, PersistOffsets
from cluster.groups.state import Group
from cluster.groups.subscription import encode_subscription

DAY = 24 * 3600 * 1000
RETENTION = 7 * DAY


def committed(at: int) -> CommittedOffset:
    return CommittedOffset(5, -1, "", at)


def test_standalone_commits_expire_by_commit_time() -> None:
    g = Group("g")
    g.offsets = {("t", 0): committed(0), ("t", 1): committed(DAY)}
    assert rules.expire(g, RETENTION - 1, RETENTION) == []
    assert rules.expire(g, RETENTION, RETENTION) == [PersistOffsets("g", (("t", 0, None),))]
    assert list(g.offsets) == [("t", 1)]


def test_a_group_that_had_members_expires_from_when_it_became_empty() -> None:
    g = Group("g")
    g.protocol_type, g.empty_since_ms = "consumer", 3 * DAY  # its last member left on day 3
    g.offsets = {("t", 0): committed(0), ("t", 1): committed(2 * DAY)}
    assert rules.expire(g, RETENTION + 2 * DAY, RETENTION) == []  # commits older, but empty only 6 days
    assert len(rules.expire(g, RETENTION + 3 * DAY, RETENTION)[0].offsets) == 2


def test_members_or_a_rebalance_keep_offsets_and_kip848_keeps_subscribed_topics() -> None:
    g = Group("g")
    g.offsets = {("t", 0): committed(0), ("u", 0): committed(0)}
    g.state = S.PREPARING_REBALANCE
    assert rules.expire(g, 10 * RETENTION, RETENTION) == []
    # A KIP-848 group: only the topics no member subscribes to.
    assert rules.expire(g, RETENTION, RETENTION, subscribed={"t"}) == [PersistOffsets("g", (("u", 0, None),))]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


async def test_coordinator_cleanup_expires_and_the_expiry_survives_restart(tmp_path: Path) -> None:
    clock = Clock()
    config = GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0, offsets_retention_ms=RETENTION)
    c = GroupCoordinator(tmp_path, 1, clock=clock, tick_interval_s=3600, config=config)
    await c.start()
    topics = [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 42}]}]
    assert (await c.offset_commit("mirror", -1, "", None, topics))["topics"][0]["partitions"][0]["error_code"] == 0
    # A consumer group: joins, commits, leaves; its offsets count from the leave.
    sub = [("range", encode_subscription(["t"]))]
    r = await c.join_group("g", "", None, "consumer", sub, 10_000, 20_000, "a")
    r = await c.join_group("g", r["member_id"], None, "consumer", sub, 10_000, 20_000, "a")
    mid, gen = r["member_id"], r["generation_id"]
    await c.sync_group("g", gen, mid, None, {mid: b""}, "consumer", "range")
    await c.offset_commit("g", gen, mid, None, topics)
    clock.now += DAY
    await c.leave_group("g", [(mid, None)])
    assert c.groups["g"].empty_since_ms == clock.now
    clock.now += RETENTION - DAY
    c.cleanup()  # the standalone commit is 7 days old: gone; the group is empty for 6 days only
    assert "mirror" not in c.groups and c.groups["g"].offsets
    await c.close()
    c = GroupCoordinator(tmp_path, 1, clock=clock, tick_interval_s=3600, config=config)
    await c.start()  # the empty-since time comes back from the journal
    assert "mirror" not in c.groups and c.groups["g"].offsets
    clock.now += DAY
    c.cleanup()
    assert "g" not in c.groups
    await c.close()
    c = GroupCoordinator(tmp_path, 1, clock=clock, tick_interval_s=3600, config=config)
    await c.start()
    assert c.groups == {}
    await c.close()
