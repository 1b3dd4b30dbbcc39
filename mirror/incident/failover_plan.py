"""What a failover reads and reports: the report, the pure rules behind its numbers, and the
scope (which partitions a link mirrors, how far the target holds them).

The numbers are bounds, and the report says which way: a planned failover's loss is exact
(ends read live after fencing and draining); an unplanned one's is "at least N": what the
source had at the mirror's last contact and the target lacks; records acknowledged after
that contact cannot be counted. A group's re-reads are "known" from its last checkpoint
(the offset mapping's rereads; none when offsets are preserved) and "at most" the records
the target holds past where the group resumes (it may have consumed some of them on the
source after its last checkpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.client.client import KafkaClient
from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy
from mirror.incident import failover_ops as ops
from mirror.records import link_state as ls
from mirror.records.offsets import Checkpoint
from mirror.replication.mode import OffsetMapping, resolve_mode
from mirror.replication.sinks import TranslatingSink

TP = tuple[str, int]


class FailoverError(Exception):
    """The failover cannot proceed; the message says why and what to do."""


# -- report ------------------------------------------------------------------------------


@dataclass
class PartitionRow:
    topic: str
    target_topic: str
    partition: int
    source_end: int | None  # live (planned) or at last contact (unplanned); None if unknown
    mirrored: int  # source offset up to which the target holds the records
    target_end: int
    loss: int | None  # records on the source the target never got (None: unknown)


@dataclass
class GroupRow:
    group: str
    offsets: dict[str, int]  # "topic-partition" on the target -> committed offset
    skipped: str | None = None
    max_duplicates: int = 0  # known from its checkpoint: the offset mapping's rereads (all partitions)
    #: "topic-partition" on the target -> records past where the group resumes: the most it
    #: can re-read (it may have consumed them on the source after its last checkpoint)
    rereads_at_most: dict[str, int] = field(default_factory=dict)
    checkpoint_ms: int | None = None  # its newest checkpoint (unplanned; planned: read live)

    @property
    def may_reread_at_most(self) -> int:
        return max(self.max_duplicates, sum(self.rereads_at_most.values()))


@dataclass
class Report:
    link: str
    source: str
    target: str
    kind: str  # planned | unplanned
    mode: str  # preserve-offsets | translate
    dry_run: bool = False
    fenceable: bool = False  # the source is a dcmirror cluster (a planned failover fences it)
    already: bool = False
    state: str = ""
    last_contact_ms: int | None = None
    snapshot: str | None = None
    partitions: list[PartitionRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    fenced: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)  # the steps it runs (steps.describe)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step run, in order
    elapsed_s: float = 0.0

    @property
    def loss_bound(self) -> str:
        """"exact" for a planned failover (it drains until the target holds every record the
        fenced, or quiet, source has); "at least" for an unplanned one: records the source
        acknowledged after the mirror's last contact cannot be counted."""
        return "exact" if self.kind == "planned" else "at least"

    @property
    def total_loss(self) -> int | None:
        if any(r.loss is None for r in self.partitions):
            return None
        return sum(r.loss or 0 for r in self.partitions)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["total_loss"] = self.total_loss
        doc["loss_bound"] = self.loss_bound
        for row, g in zip(self.groups, doc["groups"]):
            g["may_reread_at_most"] = row.may_reread_at_most
        return doc


# -- pure rules ----------------------------------------------------------------------------


def recovery_rows(mirrored: Mapping[TP, tuple[str, int, int]], known_ends: Mapping[TP, int] | None) -> list[PartitionRow]:
    """Per source partition: ``mirrored[(topic, p)] = (target topic, mirrored source
    offset, target end)``; ``known_ends`` the source ends (live or at last contact).

    Loss = records the source had that the target lacks = known end - mirrored, never
    negative (the target may be ahead of an old contact). Unknown without an end."""
    rows = []
    for (topic, p), (target_topic, up, tend) in sorted(mirrored.items()):
        end = None if known_ends is None else known_ends.get((topic, p))
        loss = None if end is None else max(0, end - up)
        rows.append(PartitionRow(topic, target_topic, p, end, up, tend, loss))
    rows.sort(key=lambda r: (-(r.loss or 0), r.topic, r.partition))
    return rows


def latest_checkpoints(checkpoints: Iterable[Checkpoint]) -> dict[str, dict[TP, Checkpoint]]:
    """Newest checkpoint per group and source partition (records are in write order)."""
    out: dict[str, dict[TP, Checkpoint]] = {}
    for cp in checkpoints:
        out.setdefault(cp.group, {})[(cp.topic, cp.partition)] = cp
    return out


def checkpoint_commits(latest: Mapping[str, Mapping[TP, Checkpoint]], policy: ReplicationPolicy,
                       target_ends: Mapping[TP, int], target_committed: Mapping[str, Mapping[TP, int]],
                       ) -> dict[str, dict[TP, int]]:
    """What to commit per group on the target: the checkpointed downstream offset, clamped
    to the target's end (never past what was mirrored), and only where it moves the
    target group forward (a group already consuming on the target is never rewound)."""
    out: dict[str, dict[TP, int]] = {}
    for group, cps in sorted(latest.items()):
        if not policy.should_mirror_group(group):
            continue
        mine: dict[TP, int] = {}
        for (topic, p), cp in cps.items():
            ttp = (policy.target_topic(topic), p)
            if ttp not in target_ends:
                continue
            offset = min(cp.downstream_offset, target_ends[ttp])
            if offset > target_committed.get(group, {}).get(ttp, -1):
                mine[ttp] = offset
        if mine:
            out[group] = mine
    return out


def _rereads(scope: Scope, checkpoints: Iterable[Checkpoint]) -> int:
    """Records a group resuming at these checkpoints reads a second time (the mapping's
    rereads: none when offsets are preserved). Planned and unplanned failovers both report
    this number, so both ask here."""
    return sum(scope.mapping.rereads(cp.topic, cp.partition, cp.upstream_offset) for cp in checkpoints)


def reread_bound(resume: Mapping[TP, int], target_ends: Mapping[TP, int], topics: Iterable[str]) -> dict[str, int]:
    """Per target partition of ``topics`` (those the group consumes), the records past
    ``resume`` (where the group starts reading on the target): all a group can read twice,
    whatever it did on the source after its last checkpoint. A partition with no resume
    offset starts at the log start (auto.offset.reset=earliest): all of it counts."""
    wanted = set(topics)
    return {f"{t}-{p}": max(0, end - resume.get((t, p), 0)) for (t, p), end in sorted(target_ends.items())
            if t in wanted}


def already_rows(state: ls.LinkState, policy: ReplicationPolicy, target_ends: Mapping[TP, int]) -> list[PartitionRow]:
    """The report of a failover that already happened, from its `failed-over` record."""
    loss = {(t, int(p)): int(n) for t, ps in (state.details.get("loss") or {}).items() for p, n in ps.items()}
    rows = []
    for topic, parts in state.promoted.items():
        for p, up in parts.items():
            lost = loss.get((topic, p))
            rows.append(PartitionRow(topic, policy.target_topic(topic), p, None if lost is None else up + lost, up,
                                     target_ends.get((policy.target_topic(topic), p), up), lost))
    rows.sort(key=lambda r: (-(r.loss or 0), r.topic, r.partition))
    return rows


# -- gathering what is mirrored ----------------------------------------------------------


@dataclass
class Scope:
    """The partitions a link mirrors, as the target and the link state know them."""

    policy: ReplicationPolicy
    mapping: OffsetMapping
    parts: dict[TP, str] = field(default_factory=dict)  # source (topic, p) -> target topic
    mirror_topics: set[str] = field(default_factory=set)  # target topics still marked mirrors

    def target_tps(self) -> list[TP]:
        return [(t, p) for (_, p), t in self.parts.items()]

    def source_topics(self) -> set[str]:
        return {t for t, _ in self.parts}


async def gather_scope(link: LinkConfig, policy: ReplicationPolicy, target: KafkaClient,
                       state: ls.LinkState, contact: ls.Contact | None) -> Scope:
    mapping = await resolve_mode(link, target)
    preserve = mapping.preserves
    scope = Scope(policy, mapping)
    topics = await target.list_topics()
    candidates = {}
    for name, meta in topics.items():
        src = policy.source_of(name)
        if src is not None and policy.should_mirror_topic(src):
            candidates[name] = (src, meta)
    overrides = await ops.topic_overrides(target, list(candidates)) if preserve else {}
    known_sources = set(state.promoted) | set((state.details or {}).get("topics", []))
    if contact is not None:
        known_sources |= set(contact.source_ends)
    syncs = await mapping.load(TranslatingSink(target, policy.target_topic, link.name))
    known_sources |= {s.topic for s in syncs}
    for name, (src, meta) in sorted(candidates.items()):
        marked = overrides.get(name, {}).get(ops.MIRROR_SOURCE) == link.source
        if preserve and marked:
            scope.mirror_topics.add(name)
        if (preserve and marked) or src in known_sources:
            for p in meta.partitions:
                scope.parts[(src, p)] = name
    return scope


async def mirrored_positions(scope: Scope, target: KafkaClient) -> dict[TP, tuple[str, int, int]]:
    tends = await ops.end_offsets(target, scope.target_tps())
    out = {}
    for (src, p), tname in scope.parts.items():
        tend = tends[(tname, p)]
        up = scope.mapping.mirrored(src, p, tend)
        out[(src, p)] = (tname, 0 if up is None else up, tend)
    return out


def _flat(ends: Mapping[str, Mapping[int, int]]) -> dict[TP, int]:
    return {(t, p): o for t, ps in ends.items() for p, o in ps.items()}


def _nested(flat: Mapping[TP, int]) -> ls.Ends:
    out: ls.Ends = {}
    for (t, p), o in flat.items():
        out.setdefault(t, {})[p] = o
    return out


def save_snapshot(directory: Path, link: str, what: str, doc: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{link}-{what}-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{link}-{what}-{stamp}-{n}.json"
    path.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))
    return path
