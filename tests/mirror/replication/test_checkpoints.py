"""Checkpoints fail closed and converge (mirror/replication/checkpoints.py), against fake clusters:
no commit when DescribeGroups fails or shows members; every round commits wherever the
target group differs from the translated source offsets, so a commit lost to a fault is
made again once the fault clears, although the source group never moved."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from cluster.client.errors import KafkaProtocolError
from cluster.client.metadata import BrokerInfo, ClusterMetadata
from cluster.client.groups import GroupDescription, GroupListing, MemberDescription
from mirror.replication.checkpoints import Checkpointer
from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy
from mirror.replication.mode import IdentityMapping
from mirror.replication.progress import LinkProgress

TP = tuple[str, int]


@dataclass
class FakeSource:
    committed: dict[str, dict[TP, int]]

    async def list_groups(self) -> list[GroupListing]:
        return [GroupListing(g, "consumer") for g in self.committed]

    async def offset_fetch(self, group: str, partitions=None) -> dict[TP, tuple[int, str | None]]:
        return {tp: (o, None) for tp, o in self.committed[group].items()}


@dataclass
class FakeTarget:
    committed: dict[str, dict[TP, int]] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    describe_fails: bool = False
    kafka4: bool = False  # unknown groups: GROUP_ID_NOT_FOUND fails the whole DescribeGroups
    commit_fails: bool = False
    commits: list[tuple[str, dict[TP, int]]] = field(default_factory=list)
    topics: set[str] = field(default_factory=set)

    async def describe_groups(self, groups: list[str]) -> dict[str, GroupDescription]:
        if self.describe_fails:
            raise KafkaProtocolError(ErrorCode.coordinator_not_available, None, context="DescribeGroups")
        if self.kafka4 and any(g not in self.committed and not self.members.get(g) for g in groups):
            raise KafkaProtocolError(ErrorCode.group_id_not_found, None, context="DescribeGroups")
        out = {}
        for g in groups:
            n = self.members.get(g, 0)
            state = "Stable" if n else ("Empty" if g in self.committed else "Dead")
            out[g] = GroupDescription(g, state, "consumer", "range",
                                      tuple(MemberDescription(f"m{i}", "c", "h") for i in range(n)))
        return out

    async def offset_fetch(self, group: str, partitions=None) -> dict[TP, tuple[int, str | None]]:
        have = self.committed.get(group, {})
        return {tp: (have.get(tp, -1), None) for tp in (partitions or have)}

    async def offset_commit(self, group: str, offsets: dict[TP, int]) -> None:
        if self.commit_fails:
            raise KafkaProtocolError(ErrorCode.request_timed_out, None, context="OffsetCommit")
        self.commits.append((group, dict(offsets)))
        self.committed.setdefault(group, {}).update(offsets)

    async def metadata(self, topics=None):
        return ClusterMetadata(brokers={1: BrokerInfo(1, "127.0.0.1", 9092)})

    async def list_topics(self, include_internal: bool = False) -> dict:
        return {t: None for t in self.topics}

    async def create_topics(self, topics) -> None:
        self.topics |= {t.name for t in topics}

    async def produce(self, topic, partition, batch, **kw) -> None:
        pass


def checkpointer(source: FakeSource, target: FakeTarget) -> Checkpointer:
    link = LinkConfig(name="e2w", source="east", target="west", topics=["orders"])
    return Checkpointer("e2w", ReplicationPolicy.for_link(link, ["east", "west"]), source, target,  # type: ignore[arg-type]
                        LinkProgress("e2w"), IdentityMapping(), lambda tp: 1_000)


def run(cp: Checkpointer):
    return asyncio.run(cp.once({"orders"}))


def test_nothing_is_committed_when_describe_groups_fails() -> None:
    source = FakeSource({"billing": {("orders", 0): 10, ("orders", 1): 20}})
    target = FakeTarget(describe_fails=True)
    cp = checkpointer(source, target)
    (result,) = run(cp)
    assert target.commits == [] and result.skipped_unknown and not result.committed
    assert "billing" not in cp.progress.last_checkpoint_ms  # its age keeps growing
    target.describe_fails = False
    run(cp)  # the source group did not move; the commit is made now anyway
    assert target.committed["billing"] == {("orders", 0): 10, ("orders", 1): 20}


def test_groups_with_members_on_the_target_are_never_committed() -> None:
    target = FakeTarget(members={"billing": 1})
    (result,) = run(checkpointer(FakeSource({"billing": {("orders", 0): 10}}), target))
    assert result.skipped_active and target.commits == []


def test_a_failed_commit_is_retried_every_round_until_the_target_agrees() -> None:
    source = FakeSource({"billing": {("orders", 0): 10, ("orders", 1): 20}})
    target = FakeTarget(commit_fails=True)
    cp = checkpointer(source, target)
    run(cp)
    run(cp)
    assert target.commits == []
    target.commit_fails = False
    run(cp)
    assert target.committed["billing"] == {("orders", 0): 10, ("orders", 1): 20}
    run(cp)  # converged: nothing more to commit
    assert len(target.commits) == 1


def test_a_target_group_moved_by_hand_is_brought_back_to_the_translated_offsets() -> None:
    source = FakeSource({"billing": {("orders", 0): 10, ("orders", 1): 20}})
    target = FakeTarget()
    cp = checkpointer(source, target)
    run(cp)
    target.committed["billing"][("orders", 1)] = 3
    run(cp)
    assert target.commits[-1] == ("billing", {("orders", 1): 20})


def test_kafka4_group_id_not_found_means_the_group_is_not_there_and_may_be_committed() -> None:
    source = FakeSource({"billing": {("orders", 0): 10}, "audit": {("orders", 0): 7}, "live": {("orders", 0): 5}})
    target = FakeTarget(committed={"audit": {("orders", 0): 1}, "live": {}}, members={"live": 2}, kafka4=True)
    results = {r.group: r for r in run(checkpointer(source, target))}
    assert target.committed["billing"] == {("orders", 0): 10}  # unknown on the target: committed
    assert target.committed["audit"] == {("orders", 0): 7}
    assert results["live"].skipped_active and "live" not in [g for g, _ in target.commits]
