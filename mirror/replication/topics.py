"""Pure topic planner: what must change on the target so it mirrors the source's topics.

The daemon describes both clusters (names, partition counts, topic-level config
overrides, topic ids), calls :func:`plan_topics`, and applies the returned actions with
its admin client. Keeping the decision pure makes it testable without clusters and makes
``--dry-run`` print exactly what would be done. Planning against a target that is already
in sync returns no actions, so the daemon can plan every ``sync_interval_s``.

Which configs travel (:func:`mirrored_config`): an allowlist of settings that describe the
*data contract* of a topic (how long records live, how they are cleaned, how big they may
be, what their timestamps mean, how they are compressed). An allowlist rather than MM2's
denylist (``DefaultConfigPropertyFilter``) because targets may be other Kafka-protocol
servers whose vendor-specific keys would fail or mean something else. Never mirrored,
because they describe the local cluster rather than the data:

- ``min.insync.replicas``, ``unclean.leader.election.enable``: durability of *this*
  cluster's replica set, which may have a different size;
- ``leader/follower.replication.throttled.replicas``: replica ids of the source brokers;
- ``message.timestamp.difference.max.ms`` and ``message.timestamp.(before|after).max.ms``:
  they validate producer clocks at append time; on the target they would reject mirrored
  records for being old;
- ``flush.*``, ``index.interval.bytes``, ``segment.index.bytes``, ``segment.jitter.ms``,
  ``file.delete.delay.ms``, ``preallocate``, ``min.cleanable.dirty.ratio``,
  ``message.downconversion.enable``, ``message.format.version``, tiered storage
  (``remote.storage.enable``, ``local.retention.*``): local tuning and storage layout.

``message.timestamp.type`` *is* mirrored (MM2 does not): a topic declared LogAppendTime
promises consumers append-time timestamps, and after failover the target should keep that
promise. Users can exclude more keys per link with ``exclude_configs``.

Source topic ids guard against a topic deleted and recreated under the same name: its
offsets restart, and mixing the new records into the old mirror would corrupt it, so the
planner reports :class:`ReportRecreated` and leaves that topic alone until an operator acts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Union

from mirror.config.policy import ReplicationPolicy

if TYPE_CHECKING:  # pragma: no cover
    from mirror.config.model import LinkConfig

log = logging.getLogger(__name__)

MIRRORED_CONFIGS: frozenset[str] = frozenset(
    {
        "cleanup.policy",
        "compression.type",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "delete.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.type",
        "min.compaction.lag.ms",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
    }
)

#: Documented for readers and asserted by tests: none of these may ever be mirrored.
NEVER_MIRRORED: frozenset[str] = frozenset(
    {
        "min.insync.replicas",
        "unclean.leader.election.enable",
        "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        "message.timestamp.difference.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "file.delete.delay.ms",
        "preallocate",
        "min.cleanable.dirty.ratio",
        "message.downconversion.enable",
        "message.format.version",
        "remote.storage.enable",
        "local.retention.ms",
        "local.retention.bytes",
    }
)


def _frozen(configs: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(configs))


@dataclass(frozen=True)
class TopicDescription:
    """One topic as described by a cluster.

    ``configs`` holds topic-level overrides only (DescribeConfigs entries whose source is
    the topic, not broker or default values): comparing defaults across two different
    clusters would report differences nobody set.
    """

    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict, hash=False)
    topic_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "configs", _frozen(self.configs))


@dataclass(frozen=True)
class CreateTopic:
    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict, hash=False)
    replication_factor: int = -1
    source_topic: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "configs", _frozen(self.configs))


@dataclass(frozen=True)
class CreatePartitions:
    name: str
    total: int


@dataclass(frozen=True)
class AlterConfigs:
    """Incremental: ``set`` these keys, ``delete`` these overrides (back to default)."""

    name: str
    set: Mapping[str, str] = field(default_factory=dict, hash=False)
    delete: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "set", _frozen(self.set))


@dataclass(frozen=True)
class ReportDeleted:
    """The source topic is gone; the target copy stays (``propagate_deletes`` is off)."""

    source_topic: str
    target_topic: str


@dataclass(frozen=True)
class DeleteTopic:
    """The source topic is gone and the link propagates deletes."""

    name: str
    source_topic: str


@dataclass(frozen=True)
class ReportRecreated:
    """The source topic has a new id: a different topic under the old name. Not mirrored
    while the target still holds the old copy; once an operator deletes that copy, the
    next plan creates a fresh one."""

    source_topic: str
    target_topic: str
    old_topic_id: str
    new_topic_id: str


@dataclass(frozen=True)
class AdoptExisting:
    """The target topic exists but the link does not own it (`mirror.replication.existing`): adopt it
    if it is empty (then apply ``then``), else report a conflict and do not copy it."""

    name: str
    source_topic: str
    partitions: int  # the source's
    then: tuple["Action", ...] = ()


@dataclass(frozen=True)
class Warn:
    topic: str
    message: str


Action = Union[CreateTopic, CreatePartitions, AlterConfigs, ReportDeleted, DeleteTopic, ReportRecreated,
               AdoptExisting, Warn]


@dataclass(frozen=True)
class MirroredTopic:
    """A topic the copier should copy now: partition p goes to target partition p."""

    source: str
    target: str
    partitions: int


@dataclass(frozen=True)
class TopicPlan:
    actions: tuple[Action, ...]
    mirrored: tuple[MirroredTopic, ...]
    #: Source topic ids to remember for the next plan (daemon state), by source name.
    source_ids: Mapping[str, str] = field(default_factory=dict, hash=False)


def config_excluder(exclude_configs: Iterable[str] = ()) -> "re.Pattern[str] | None":
    patterns = list(exclude_configs)
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def mirrored_config(configs: Mapping[str, str], exclude_configs: Iterable[str] = ()) -> dict[str, str]:
    """The subset of topic-level overrides that travel to the target (see module doc)."""
    excluder = config_excluder(exclude_configs)
    return {
        k: v
        for k, v in configs.items()
        if k in MIRRORED_CONFIGS and not (excluder and excluder.fullmatch(k))
    }


def plan_topics(
    sources: Iterable[TopicDescription],
    targets: Iterable[TopicDescription],
    link: LinkConfig,
    policy: ReplicationPolicy,
    known_source_ids: Mapping[str, str] | None = None,
    owned: Collection[str] | None = None,
) -> TopicPlan:
    """Diff source against target for one link.

    ``known_source_ids`` is the daemon's memory of which source topic ids this link has
    mirrored (``TopicPlan.source_ids`` of the previous plan); None means no memory yet,
    which disables recreation checks and deletion reports for identity naming (where a
    target topic absent upstream may simply be the target's own).

    ``owned`` names the existing target topics the link created or adopted; any other
    existing target topic gets :class:`AdoptExisting` (carrying the diff to apply once
    adopted). None (callers that cannot tell) mirrors into every existing topic.
    """
    by_target = {t.name: t for t in targets}
    known = dict(known_source_ids or {})
    actions: list[Action] = []
    mirrored: list[MirroredTopic] = []
    ids: dict[str, str] = {}
    sources = sorted(sources, key=lambda t: t.name)
    for src in sources:
        if policy.should_mirror_topic(src.name):
            m = _plan_source(src, by_target.get(policy.target_topic(src.name)), link, policy, known,
                             known_source_ids is not None, owned, actions, ids)
            if m is not None:
                mirrored.append(m)
    actions += _plan_gone({s.name for s in sources}, by_target.values(), link, policy, known,
                          known_source_ids is not None, ids)
    return TopicPlan(tuple(actions), tuple(mirrored), ids)


def _plan_source(src: TopicDescription, tgt: TopicDescription | None, link: LinkConfig,
                 policy: ReplicationPolicy, known: Mapping[str, str], remembers: bool,
                 owned: Collection[str] | None, actions: list[Action], ids: dict[str, str],
                 ) -> MirroredTopic | None:
    """One matched source topic: its actions (appended) and its MirroredTopic, or None
    while a recreated source topic's old copy still exists on the target."""
    target_name = policy.target_topic(src.name)
    old_id = known.get(src.name)
    if old_id is not None and src.topic_id is not None and old_id != src.topic_id:
        if tgt is not None:
            actions.append(ReportRecreated(src.name, target_name, old_id, src.topic_id))
            ids[src.name] = old_id  # keep refusing until the old copy is dealt with
            return None
        # The operator removed the old copy: nothing left to mix with, start afresh.
        log.info("source topic %s was recreated and its old copy is gone; mirroring anew", src.name)
    if src.topic_id is not None:
        ids[src.name] = src.topic_id
    wanted = mirrored_config(src.configs, link.exclude_configs) if link.sync_configs else {}
    if tgt is None:
        actions.append(CreateTopic(target_name, src.partitions, wanted, link.replication_factor, src.name))
    elif owned is not None and target_name not in owned:
        actions.append(AdoptExisting(target_name, src.name, src.partitions,
                                     tuple(_diff_existing(src, tgt, wanted, link))))
    else:
        if owned is None and remembers and src.name not in known:
            actions.append(Warn(target_name, f"target topic {target_name!r} already exists and was not "
                                             f"created by link {link.name!r}; mirroring into it"))
        actions.extend(_diff_existing(src, tgt, wanted, link))
    return MirroredTopic(src.name, target_name, src.partitions)


def _plan_gone(source_names: set[str], targets: Iterable[TopicDescription], link: LinkConfig,
               policy: ReplicationPolicy, known: Mapping[str, str], remembers: bool,
               ids: dict[str, str]) -> list[Action]:
    """Target topics of the link whose source topic is gone: deleted or reported."""
    actions: list[Action] = []
    for tgt in sorted(targets, key=lambda t: t.name):
        source_name = policy.source_of(tgt.name)
        if source_name is None or source_name in source_names:
            continue
        ours = source_name in known or (
            link.rename == "prefix" and not remembers and policy.should_mirror_topic(source_name)
        )
        if not ours:
            continue
        if link.propagate_deletes:
            actions.append(DeleteTopic(tgt.name, source_name))
            if source_name in known:  # remembered until the target copy is really gone
                ids[source_name] = known[source_name]
        else:  # reported once: the id is forgotten with this plan
            actions.append(ReportDeleted(source_name, tgt.name))
    return actions


def _diff_existing(
    src: TopicDescription, tgt: TopicDescription, wanted: Mapping[str, str], link: LinkConfig
) -> list[Action]:
    actions: list[Action] = []
    if tgt.partitions < src.partitions:
        actions.append(CreatePartitions(tgt.name, src.partitions))
    elif tgt.partitions > src.partitions:
        actions.append(Warn(tgt.name, f"target has {tgt.partitions} partitions but source {src.name!r} has "
                                      f"{src.partitions}; the extra target partitions stay empty"))
    if link.sync_configs:
        excluder = config_excluder(link.exclude_configs)
        current = {
            k: v
            for k, v in tgt.configs.items()
            if k in MIRRORED_CONFIGS and not (excluder and excluder.fullmatch(k))
        }
        to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
        to_delete = tuple(sorted(k for k in current if k not in wanted))
        if to_set or to_delete:
            actions.append(AlterConfigs(tgt.name, to_set, to_delete))
    return actions
