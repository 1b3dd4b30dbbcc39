"""Applies the pure topic planner (`mirror.replication.topics`) to real clusters.

Reads both clusters' topics and topic-level overrides, plans, and carries out the actions
through `cluster.client`. In offset-preserving mode every topic it creates on the target
is marked `dcmirror.mirror.source=<source alias>`: the target broker then refuses ordinary
producers on it until failover promotes it, and accepts the mirror's private append. In
translation mode a created topic is claimed in the link's offset-sync topic instead.
A target topic that exists but is neither is adopted or reported as a conflict by the
rule in `mirror.replication.existing`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from kio.schema.errors import ErrorCode

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaProtocolError
from mirror.replication import existing
from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy, is_internal_topic
from mirror.replication.mode import OffsetMapping
from mirror.replication.progress import Alarm, LinkProgress
from mirror.replication.topics import (
    AdoptExisting,
    AlterConfigs,
    CreatePartitions,
    CreateTopic,
    DeleteTopic,
    MirroredTopic,
    ReportDeleted,
    ReportRecreated,
    TopicDescription,
    Warn,
    plan_topics,
)

log = logging.getLogger(__name__)

MIRROR_SOURCE = existing.MIRROR_SOURCE
_TOPIC_OVERRIDE = 1


async def describe_topics(client: KafkaClient, configs_of: Callable[[str], bool] = lambda name: True,
                          ) -> list[TopicDescription]:
    """Every visible topic; overrides only of those ``configs_of`` accepts. A least-privilege
    link may see topics it has no DescribeConfigs on (a wide Describe grant), and asking
    for those would fail the whole round with TOPIC_AUTHORIZATION_FAILED."""
    topics = {n: t for n, t in (await client.list_topics()).items() if not is_internal_topic(n)}
    wanted = [n for n in topics if configs_of(n)]
    configs = await client.describe_configs(wanted) if wanted else {}
    out = []
    for name, t in topics.items():
        overrides = {k: e.value for k, e in configs.get(name, {}).items()
                     if e.source == _TOPIC_OVERRIDE and e.value is not None}
        out.append(TopicDescription(name, t.num_partitions, overrides,
                                    str(t.topic_id) if t.topic_id else None))
    return out


@dataclass
class TopicSync:
    link: LinkConfig
    policy: ReplicationPolicy
    source: KafkaClient
    target: KafkaClient
    progress: LinkProgress
    mapping: OffsetMapping
    source_alias: str
    known_ids: dict[str, str] | None = None
    #: Translation mode: source topics whose target copy the link owns (claimed or synced).
    claimed: set[str] = field(default_factory=set)
    #: Translation mode: writes claim records for these source topics (the sink's `claim`).
    claim: Callable[[list[str]], Awaitable[None]] | None = None
    #: Translation mode: source topics claimed since the last call (another process's claims).
    refresh_claims: Callable[[], Awaitable[set[str]]] | None = None
    config_path: str = "CONFIG"
    _reported: set = field(default_factory=set)
    _markers: dict[str, str | None] = field(default_factory=dict)
    _partitions: dict[str, int] = field(default_factory=dict)
    #: The source topics the link matches, with their partition counts, as the last round
    #: saw them: the Metadata watch compares against it.
    source_shape: dict[str, int] | None = None

    @property
    def preserve_offsets(self) -> bool:
        """Offset-preserving targets mark mirror topics; translation ones are claimed."""
        return self.mapping.preserves

    async def once(self) -> list[MirroredTopic]:
        """One planning round; returns the topics the copier should copy now."""
        policy, sync = self.policy, self.link.sync_configs

        def ours(target_name: str) -> bool:
            source_name = policy.source_of(target_name)
            return source_name is not None and policy.should_mirror_topic(source_name)

        sources = await describe_topics(self.source, lambda n: sync and policy.should_mirror_topic(n))
        self.source_shape = {t.name: t.partitions for t in sources if policy.should_mirror_topic(t.name)}
        targets = await describe_topics(self.target, lambda n: (sync or self.preserve_offsets) and ours(n))
        self._markers = {t.name: t.configs.get(MIRROR_SOURCE) for t in targets}
        self._partitions = {t.name: t.partitions for t in targets}
        if self.preserve_offsets:
            owned = {n for n, m in self._markers.items() if m == self.source_alias}
            targets = [TopicDescription(t.name, t.partitions,
                                        {k: v for k, v in t.configs.items() if k != MIRROR_SOURCE},
                                        t.topic_id) for t in targets]
        else:
            owned = {policy.target_topic(s) for s in self.claimed}
        plan = plan_topics(sources, targets, self.link, self.policy, self.known_ids, owned)
        self.known_ids = dict(plan.source_ids)
        blocked: set[str] = set()
        for action in plan.actions:
            await self._apply(action, blocked)
        self._clear_conflicts(blocked)
        return [m for m in plan.mirrored if m.source not in blocked]

    async def watch_shape(self) -> dict[str, int]:
        """The source topics the link matches and their partition counts, from one Metadata
        request (no configs): what the watch polls between rounds."""
        topics = await self.source.list_topics()
        return {n: t.num_partitions for n, t in topics.items()
                if not is_internal_topic(n) and self.policy.should_mirror_topic(n)}

    def _clear_conflicts(self, blocked: set[str]) -> None:
        for pp in self.progress.partitions.values():
            if pp.state == "conflict" and pp.topic not in blocked:
                pp.state, pp.error = "starting", ""

    async def _adopt(self, action: AdoptExisting, blocked: set[str]) -> None:
        """Adopt an empty foreign topic, or stop that topic with state conflict."""
        name, parts = action.name, list(range(self._partitions.get(action.name, 0)))
        marker = self._markers.get(name)
        found = await existing.inspect(self.target, name, parts, marker, self.source_alias,
                                       at_zero=self.preserve_offsets)
        if not found.adoptable and self.refresh_claims is not None:
            # `dcmirror link adopt` may have claimed it from another process.
            self.claimed.update(await self.refresh_claims())
            if action.source_topic in self.claimed:
                for then in action.then:
                    await self._apply(then, blocked)
                return
        if found.adoptable and self.preserve_offsets:
            await self.target.incremental_alter_configs({name: {MIRROR_SOURCE: self.source_alias}})
            # A producer may have written between the look and the mark: look again.
            found = await existing.inspect(self.target, name, parts, None, self.source_alias)
            if not found.adoptable:
                await self.target.incremental_alter_configs({name: {MIRROR_SOURCE: None}})
        if not found.adoptable:
            self._conflict(action, found, blocked)
            return
        if not self.preserve_offsets:
            await self._claim([action.source_topic])
        log.info("link %s: adopted existing empty target topic %s (%d partition(s), no records, "
                 "no group offsets)", self.link.name, name, len(parts))
        for then in action.then:
            await self._apply(then, blocked)

    def _conflict(self, action: AdoptExisting, found: existing.Existing, blocked: set[str]) -> None:
        blocked.add(action.source_topic)
        reason = existing.conflict_reason(found, self.link.name, self.config_path)
        if ("conflict", action.name, reason) not in self._reported:
            self._reported.add(("conflict", action.name, reason))
            log.error("link %s: CONFLICT %s", self.link.name, reason)
        for p in range(action.partitions):
            pp = self.progress.partition(action.source_topic, p, action.name)
            pp.state, pp.error = "conflict", reason

    async def _claim(self, source_topics: list[str]) -> None:
        if self.claim is not None:
            await self.claim(source_topics)
        self.claimed.update(source_topics)

    async def _apply(self, action, blocked: set[str]) -> None:
        if isinstance(action, CreateTopic):
            configs = dict(action.configs)
            if self.preserve_offsets:
                configs[MIRROR_SOURCE] = self.source_alias
            try:
                rf = action.replication_factor if action.replication_factor > 0 else -1
                await self.target.create_topics([NewTopic(action.name, action.partitions, rf, configs)])
                log.info("link %s: created %s with %d partition(s)", self.link.name, action.name,
                         action.partitions)
            except KafkaProtocolError as exc:
                if exc.error_code != ErrorCode.topic_already_exists:
                    raise
                # Someone else created it first (an auto-creating lookup): not ours; the
                # next round adopts it or reports the conflict.
                blocked.add(action.source_topic)
                return
            if not self.preserve_offsets:
                await self._claim([action.source_topic])
        elif isinstance(action, AdoptExisting):
            await self._adopt(action, blocked)
        elif isinstance(action, CreatePartitions):
            await self.target.create_partitions({action.name: action.total})
            log.info("link %s: %s now has %d partitions", self.link.name, action.name, action.total)
        elif isinstance(action, AlterConfigs):
            changes: dict[str, str | None] = dict(action.set)
            changes.update({k: None for k in action.delete})
            await self.target.incremental_alter_configs({action.name: changes})
            log.info("link %s: %s configs follow the source: %s", self.link.name, action.name, changes)
        elif isinstance(action, ReportDeleted):
            self._once(("deleted", action.source_topic), "topic-deleted", action.source_topic,
                       f"source topic {action.source_topic} was deleted; its copy "
                       f"{action.target_topic} is kept (propagate_deletes is off)")
        elif isinstance(action, DeleteTopic):
            await self.target.delete_topics([action.name])
            log.info("link %s: deleted %s (source topic gone)", self.link.name, action.name)
        elif isinstance(action, ReportRecreated):
            blocked.add(action.source_topic)
            for pp in self.progress.partitions.values():
                if pp.topic == action.source_topic:
                    pp.state, pp.error = "error", (
                        f"source topic {action.source_topic} was deleted and recreated; not mixing it into "
                        f"{action.target_topic}. Delete or rename the target copy to resume.")
            self._once(("recreated", action.source_topic, action.new_topic_id), "topic-recreated",
                       action.source_topic,
                       f"source topic {action.source_topic} was deleted and recreated (topic id "
                       f"{action.old_topic_id} -> {action.new_topic_id}); not mixing it into "
                       f"{action.target_topic}. Delete or rename the target copy to resume.")
        elif isinstance(action, Warn):
            self._once(("warn", action.topic, action.message), None, action.topic, action.message)

    def _once(self, key: tuple, alarm: str | None, topic: str, message: str) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        if alarm is None:
            log.warning("link %s: %s", self.link.name, message)
            return
        log.error("link %s: ALARM %s", self.link.name, message)
        self.progress.alarms.append(Alarm(alarm, topic, -1, message))
