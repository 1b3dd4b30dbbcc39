"""Consumer-group offsets follow the data: source commits -> checkpoints -> target groups.

Every `checkpoint_interval_s` the committed offsets of matching groups are read from the
source, translated (identity in offset-preserving mode, through the offset-sync index in
translation mode), written as checkpoint records to the target's
`__dcmirror.checkpoints.<link>` topic, and committed to the target group whenever that
group has no active members there — as MirrorMaker 2 does, so a consumer running on the
target is never overridden.

Fail closed: a group is committed to only when DescribeGroups on the target answered
this round and showed it without members (state Empty or Dead). If DescribeGroups fails,
nothing is committed. Converge: every round compares with what the target group has
committed (OffsetFetch) and commits wherever it differs, not only where the source group
moved, so a commit lost to a fault is made again once the fault clears.

A translated offset is never ahead of what the mirror has copied: committing past the
mirrored position would make a failed-over consumer skip records it never saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError, KafkaProtocolError
from mirror.records.offsets import Checkpoint, checkpoints_store, encode_checkpoint
from mirror.config.policy import ReplicationPolicy
from mirror.replication.mode import OffsetMapping
from mirror.replication.progress import LinkProgress

log = logging.getLogger(__name__)

TP = tuple[str, int]
_INACTIVE = {"empty", "dead"}


def _is_idle(d: Any) -> bool:
    """A described group nobody consumes on the target: no members, Empty or Dead."""
    return not d.members and not d.error_code and (d.state or "").lower() in _INACTIVE


@dataclass
class CheckpointResult:
    group: str
    committed: dict[TP, int]  # target (topic, partition) -> offset committed on the target
    skipped_active: bool = False
    skipped_unknown: bool = False  # DescribeGroups failed: nothing committed (fail closed)


@dataclass
class Checkpointer:
    link_name: str
    policy: ReplicationPolicy
    source: KafkaClient
    target: KafkaClient
    progress: LinkProgress
    mapping: OffsetMapping
    mirrored_position: Callable[[TP], int] | None = None
    last: dict[str, dict[TP, Checkpoint]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = checkpoints_store(self.target, self.link_name)

    def translate(self, tp: TP, upstream: int) -> int | None:
        if upstream < 0:
            return None
        if self.mirrored_position is not None:
            pos = self.mirrored_position(tp)
            if pos < 0:
                return None
            upstream = min(upstream, pos)
        return self.mapping.translate(tp[0], tp[1], upstream)

    async def _idle_on_target(self, groups: list[str]) -> set[str] | None:
        """Groups known to have no members on the target; None when DescribeGroups failed
        (then no group is known to be idle)."""
        try:
            described = await self.target.describe_groups(groups)
        except KafkaProtocolError as exc:
            if exc.error_code != ErrorCode.group_id_not_found:
                return self._unknown(exc)
            # Kafka 4 answers GROUP_ID_NOT_FOUND for a group it does not have (older
            # brokers: state Dead), which fails the whole call: ask group by group.
            return await self._idle_one_by_one(groups)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            return self._unknown(exc)
        return {g for g, d in described.items() if _is_idle(d)}

    def _unknown(self, exc: Exception) -> None:
        log.warning("link %s: not committing checkpoints: DescribeGroups on the target failed: %s",
                    self.link_name, exc)
        return None

    async def _idle_one_by_one(self, groups: list[str]) -> set[str]:
        idle = set()
        for g in groups:
            try:
                d = (await self.target.describe_groups([g])).get(g)
            except KafkaProtocolError as exc:
                if exc.error_code == ErrorCode.group_id_not_found:
                    idle.add(g)  # known not to exist: nobody consumes it there
                else:
                    log.warning("link %s: not committing group %s: DescribeGroups failed: %s",
                                self.link_name, g, exc)
                continue
            if d is not None and _is_idle(d):
                idle.add(g)
        return idle

    async def _translated(self, group: str, mirrored_topics: set[str], now: int) -> dict[TP, Checkpoint]:
        cps: dict[TP, Checkpoint] = {}
        for (topic, p), (offset, meta) in (await self.source.offset_fetch(group)).items():
            if topic not in mirrored_topics or offset < 0:
                continue
            down = self.translate((topic, p), offset)
            if down is not None:
                cps[(self.policy.target_topic(topic), p)] = Checkpoint(group, topic, p, offset, down, meta, now)
        return cps

    async def _converge(self, group: str, cps: dict[TP, Checkpoint]) -> bool:
        """Commit wherever the target group's offset differs from the translated one."""
        have = await self.target.offset_fetch(group, list(cps))
        todo = {tp: c.downstream_offset for tp, c in cps.items() if have.get(tp, (-1, None))[0] != c.downstream_offset}
        if not todo:
            return False
        try:
            await self.target.offset_commit(group, todo)
        except KafkaProtocolError as exc:  # joined meanwhile, or a fault: the next round retries
            log.warning("link %s: checkpoint commit of group %s failed, retrying next round: %s",
                        self.link_name, group, exc)
            return False
        return True

    async def once(self, mirrored_topics: set[str]) -> list[CheckpointResult]:
        """One round over every matching group."""
        groups = [g.group_id for g in await self.source.list_groups()
                  if self.policy.should_mirror_group(g.group_id)]
        if not groups:
            return []
        idle = await self._idle_on_target(groups)
        now = int(time.time() * 1000)
        records = []
        results = []
        for group in groups:
            cps = await self._translated(group, mirrored_topics, now)
            if not cps:
                continue
            previous = self.last.get(group, {})
            records += [encode_checkpoint(c) for tp, c in cps.items()
                        if tp not in previous or previous[tp].downstream_offset != c.downstream_offset]
            self.last[group] = cps
            result = CheckpointResult(group, {})
            if idle is None:
                result.skipped_unknown = True  # fail closed; the age metric keeps growing
            elif group not in idle:
                result.skipped_active = True
                self.progress.last_checkpoint_ms[group] = now
            else:
                await self._converge(group, cps)
                result.committed = {tp: c.downstream_offset for tp, c in cps.items()}
                self.progress.last_checkpoint_ms[group] = now
            results.append(result)
        await self.store.append(records)
        return results
