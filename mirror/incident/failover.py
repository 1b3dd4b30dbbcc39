"""`dcmirror failover`: make a link's target the primary, planned or after losing the source.

Planned (source reachable): fence the source's mirrored topics (`dcmirror.fenced`, which
our brokers' Produce refuses; a foreign source cannot be fenced, so we wait until its end
offsets stop moving), copy what is left ourselves until nothing lags, checkpoint the
groups a last time, and promote the target topics (drop `dcmirror.mirror.source`). Nothing
acknowledged on the source is lost and, offsets being preserved, nothing is duplicated.

Unplanned (`--force`): the source may be gone. Stop the link, promote the target topics,
commit every matching group's newest checkpoint to the target (never moving a group
backwards), and report the recovery point per partition: records the source had at the
mirror's last contact (`__dcmirror.last-contact.<link>`) that the target never got.

Every step is idempotent and the link state (`__dcmirror.link-state.<link>`) records
`failing-over` before and `failed-over` after, so a second run, or a run after a crash
half-way, is harmless. A running daemon sees the state within a second and stops copying.

The arithmetic is pure (`recovery_rows`, `checkpoint_commits`, `OffsetSyncStore.rereads`) and
unit-tested; `run_failover` is the sequence of I/O steps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError
from mirror.incident import failover_ops as ops
from mirror.records import link_machine as machine
from mirror.records import link_state as ls
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.records.offsets import Checkpoint, read_checkpoints
from mirror.config.policy import ReplicationPolicy
from mirror.replication.mode import OffsetMapping, resolve_mode, sink_for
from mirror.replication.sinks import TranslatingSink

log = logging.getLogger(__name__)

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
    max_duplicates: int = 0  # translation mode: records a resumed consumer re-reads (all partitions)


@dataclass
class Report:
    link: str
    source: str
    target: str
    kind: str  # planned | unplanned
    mode: str  # preserve-offsets | translate
    dry_run: bool = False
    already: bool = False
    state: str = ""
    last_contact_ms: int | None = None
    snapshot: str | None = None
    partitions: list[PartitionRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    fenced: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, in order
    elapsed_s: float = 0.0

    def step(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.steps[name] = round(now - since, 3)
        return now

    @property
    def total_loss(self) -> int | None:
        if any(r.loss is None for r in self.partitions):
            return None
        return sum(r.loss or 0 for r in self.partitions)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["total_loss"] = self.total_loss
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


# -- the procedure -----------------------------------------------------------------------


Confirm = Callable[[Report], bool]


async def run_failover(cfg: MirrorConfig, link: LinkConfig, *, force: bool = False, dry_run: bool = False,
                       snapshot_dir: Path, confirm: Confirm = lambda r: True,
                       quiet_s: float = 3.0, drain_timeout_s: float = 120.0) -> Report:
    started = time.monotonic()
    policy = cfg.policy(link)
    target = ops.client_for(cfg, link.target)
    try:
        await target.start()
    except (KafkaError, OSError) as exc:
        raise FailoverError(f"cannot reach the target cluster {link.target!r}: {exc}") from None
    source: KafkaClient | None = None
    report: Report | None = None
    try:
        state_log, contact, source_up = await asyncio.gather(
            ls.read_state(target, link.name), ls.read_last_contact(target, link.name),
            ops.reachable(cfg, link.source))
        state = state_log.state
        kind = "unplanned" if force else "planned"
        scope = await gather_scope(link, policy, target, state, contact)
        report = Report(link.name, link.source, link.target, kind,
                        scope.mapping.mode, dry_run=dry_run,
                        state=state.state, last_contact_ms=contact.at_ms if contact else None)
        if machine.is_done(state.state, machine.Command.FAILOVER):
            report.already = True
            report.kind = state.reason or kind
            report.partitions = already_rows(state, policy, await ops.end_offsets(
                target, [(policy.target_topic(t), p) for t, ps in state.promoted.items() for p in ps]))
            report.notes.append(f"link {link.name} already failed over to {link.target} "
                                f"({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(state.since_ms / 1000))}); "
                                "nothing to do")
            return report
        try:
            failing_over = machine.transition(link.name, state.state, machine.Command.FAILOVER)
        except machine.TransitionError as exc:
            raise FailoverError(str(exc)) from None
        if not force and not source_up:
            raise FailoverError(f"the source cluster {link.source!r} is unreachable; a planned failover "
                                "needs it. Use --force for an unplanned failover (reports the loss)")
        if source_up:
            source = ops.client_for(cfg, link.source)
            await source.start()
        mirrored = await mirrored_positions(scope, target)
        if source is not None:
            live = await ops.end_offsets(source, list(mirrored))
            report.partitions = recovery_rows(mirrored, live)
        else:
            report.partitions = recovery_rows(mirrored, _flat(contact.source_ends) if contact else None)
            if contact is None:
                report.notes.append("no last-contact record: the loss cannot be computed")
        if kind == "planned":
            report.notes.append("planned: the source is fenced and drained first, expected loss is 0")
        if dry_run:
            report.notes.append("dry run: nothing was changed")
            return report
        checkpoints = await read_checkpoints(target, link.name) if kind == "unplanned" else []
        latest = latest_checkpoints(checkpoints)
        snapshot = {"link": link.name, "taken_ms": int(time.time() * 1000), "state": asdict(state),
                    "last_contact": asdict(contact) if contact else None, "plan": report.to_json(),
                    "checkpoints": [asdict(c) for cps in latest.values() for c in cps.values()]}
        report.snapshot = str(save_snapshot(snapshot_dir, link.name, "failover", snapshot))
        if not confirm(report):
            raise FailoverError("not confirmed; nothing was changed")
        since = int(time.time() * 1000)
        await ls.write_state(target, link.name, ls.LinkState(
            failing_over, since, by="dcmirror failover", reason=kind,
            details={"topics": sorted(scope.source_topics())}))
        t = report.step("plan", started)
        if kind == "planned":
            scope = await _planned(cfg, link, policy, source, target, scope, report, since, contact,
                                   quiet_s, drain_timeout_s)
        else:
            await _unplanned(link, policy, source, target, scope, report, latest)
        t = report.step("failover", t)
        mirrored = await mirrored_positions(scope, target)
        if source is not None:
            report.partitions = recovery_rows(mirrored, await ops.end_offsets(source, list(mirrored)))
        elif contact is not None:
            report.partitions = recovery_rows(mirrored, _flat(contact.source_ends))
        promoted = _nested({tp: up for tp, (_, up, _) in mirrored.items()})
        loss = _nested({(r.topic, r.partition): r.loss for r in report.partitions if r.loss is not None})
        promoted_state = machine.transition(link.name, failing_over, machine.Command.PROMOTED)
        await ls.write_state(target, link.name, ls.LinkState(
            promoted_state, int(time.time() * 1000), by="dcmirror failover", reason=kind, promoted=promoted,
            details={"topics": sorted(scope.source_topics()), "total_loss": report.total_loss,
                     "loss": {t: {str(p): n for p, n in ps.items()} for t, ps in loss.items()},
                     "last_contact_ms": report.last_contact_ms}))
        report.state = promoted_state
        report.step("record", t)
        return report
    finally:
        if report is not None:
            report.elapsed_s = round(time.monotonic() - started, 3)
        await target.close()
        if source is not None:
            await source.close()


async def _fence(source: KafkaClient, scope: Scope, target_alias: str, report: Report) -> bool:
    """Fence the source topics against producers; False for a foreign source."""
    if not await ops.is_dcmirror(source):
        return False
    topics = sorted(scope.source_topics())
    await ops.set_configs(source, {t: {ops.FENCED: target_alias} for t in topics})
    report.fenced = topics
    return True


async def _wait_for_daemon(target: KafkaClient, link: str, since: int, contact: ls.Contact | None,
                           report: Report, timeout_s: float = 10.0) -> None:
    """A daemon recording contact lately is running: wait until it acknowledges the new
    state (it then copies and checkpoints nothing more for this link). Without any contact
    record a daemon may have just started: wait a little; with only old ones, none runs."""
    if contact is None:
        timeout_s = 3.0
    elif time.time() * 1000 - contact.at_ms > 60_000:
        return
    deadline = time.monotonic() + timeout_s
    folded = ls.StateLog()
    while time.monotonic() < deadline:
        await ls.read_state(target, link, folded)
        if folded.ack is not None and folded.ack.state_since_ms >= since:
            return
        await asyncio.sleep(0.2)
    report.notes.append("no running mirror acknowledged the failover within "
                        f"{timeout_s:.0f}s; continuing (a daemon started later obeys the link state)")


async def _drain(link: LinkConfig, policy: ReplicationPolicy, source: KafkaClient, target: KafkaClient,
                 scope: Scope, quiet_s: float, fenced: bool, timeout_s: float) -> None:
    """Copy what the target lacks ourselves until source and target agree and, for an
    unfenced (foreign) source, the source ends stayed still for ``quiet_s``."""
    from mirror.replication.copier import LinkCopier
    from mirror.replication.progress import LinkProgress

    sink = sink_for(scope.mapping, target, policy.target_topic, link.name)
    progress = LinkProgress(link.name)
    copier = LinkCopier(link.name, source, sink, progress, policy.target_topic,
                        start_from=link.start_from, max_wait_ms=100)
    tps = sorted(scope.parts)
    copier.set_assignment(tps)
    deadline = time.monotonic() + timeout_s
    last_ends: dict[TP, int] | None = None
    still_since = time.monotonic()
    while True:
        ends = await ops.end_offsets(source, tps)
        if ends != last_ends:
            last_ends, still_since = ends, time.monotonic()
        await copier._resume()
        refused = copier.failing()
        if refused:
            raise FailoverError(f"{next(iter(refused.values()))}; the source stays fenced, fix it and "
                                "run failover again")
        behind = [tp for tp in tps if copier._positions.get(tp, 0) < ends[tp]]
        if not behind and (fenced or time.monotonic() - still_since >= quiet_s):
            return
        if time.monotonic() > deadline:
            raise FailoverError(f"the target did not catch up within {timeout_s:.0f}s "
                                f"({len(behind)} partition(s) behind); the source stays fenced, "
                                "run failover again")
        if behind:
            await copier.step()
        else:
            await asyncio.sleep(0.2)


async def _planned(cfg: MirrorConfig, link: LinkConfig, policy: ReplicationPolicy, source: KafkaClient,
                   target: KafkaClient, scope: Scope, report: Report, since: int,
                   contact: ls.Contact | None, quiet_s: float, drain_timeout_s: float) -> Scope:
    from mirror.replication.checkpoints import Checkpointer
    from mirror.replication.progress import LinkProgress

    t = time.monotonic()
    fenced = await _fence(source, scope, link.target, report)
    t = report.step("fence", t)
    if not fenced:
        report.notes.append(f"{link.source} is not a dcmirror cluster and cannot be fenced: waited until "
                            f"its end offsets stayed still for {quiet_s:.0f}s; stop its producers first")
    # The daemon acknowledges within a second; meanwhile drain (offset-preserving appends it
    # might still make are skipped by the target). Its checkpoints stop before our last one.
    ack = asyncio.create_task(_wait_for_daemon(target, link.name, since, contact, report))
    try:
        if not scope.mapping.preserves:  # a racing daemon's Produce would duplicate: wait for it first
            await ack
        await _drain(link, policy, source, target, scope, quiet_s, fenced, drain_timeout_s)
        t = report.step("drain", t)
        await ack
    finally:
        ack.cancel()
    t = report.step("daemon ack", t)
    if not scope.mapping.preserves:  # the drain wrote new syncs: read them again
        state = ls.LinkState(details={"topics": sorted(scope.source_topics())})
        scope = await gather_scope(link, policy, target, state, None)
    mirrored = await mirrored_positions(scope, target)
    checkpointer = Checkpointer(link.name, policy, source, target, LinkProgress(link.name), scope.mapping,
                                lambda tp: mirrored.get(tp, ("", -1, -1))[1])
    # Both only need the drained target: consumers may read a mirror topic already, and
    # producers find the offsets of nobody; so group offsets and promotion go in parallel.
    await asyncio.gather(_final_checkpoint(checkpointer, policy, source, target, scope, report),
                         _promote(target, scope, report))
    report.step("checkpoint+promote", t)
    return scope


async def _final_checkpoint(checkpointer, policy: ReplicationPolicy, source: KafkaClient, target: KafkaClient,
                            scope: Scope, report: Report) -> None:
    """The Checkpointer's rules (translate, never past what was mirrored, never touch a
    group active on the target), applied once to every group with all requests in
    parallel, committing and recording only what differs from the target's commits."""
    from mirror.records.offsets import encode_checkpoint

    groups = [g.group_id for g in await source.list_groups() if policy.should_mirror_group(g.group_id)]
    if not groups:
        return
    src, tgt, active = await asyncio.gather(
        asyncio.gather(*(source.offset_fetch(g) for g in groups)),
        asyncio.gather(*(target.offset_fetch(g) for g in groups)),
        ops.active_groups(target, groups))
    topics = scope.source_topics()
    now = int(time.time() * 1000)
    records, commits = [], []
    for g, committed, have in zip(groups, src, tgt):
        wanted: dict[TP, Checkpoint] = {}
        for (topic, p), (offset, meta) in committed.items():
            if topic not in topics or offset < 0:
                continue
            down = checkpointer.translate((topic, p), offset)
            if down is not None:
                wanted[(policy.target_topic(topic), p)] = Checkpoint(g, topic, p, offset, down, meta, now)
        changed = {tp: cp for tp, cp in wanted.items() if have.get(tp, (-1, None))[0] != cp.downstream_offset}
        records += [encode_checkpoint(cp) for cp in changed.values()]
        if g in active:
            report.groups.append(GroupRow(g, {}, "active on the target: offsets left alone"))
            continue
        if changed:
            commits.append(target.offset_commit(g, {tp: cp.downstream_offset for tp, cp in changed.items()}))
        report.groups.append(GroupRow(g, {f"{t}-{p}": cp.downstream_offset for (t, p), cp in sorted(wanted.items())},
                                      max_duplicates=_rereads(scope, wanted.values())))
    await asyncio.gather(*commits)
    await checkpointer.store.append(records)


async def _promote(target: KafkaClient, scope: Scope, report: Report) -> None:
    topics = sorted({t for t in scope.parts.values()})
    if scope.mapping.preserves:
        await ops.set_configs(target, {t: {ops.MIRROR_SOURCE: None, ops.FENCED: None} for t in topics})
    report.promoted = topics


async def _unplanned(link: LinkConfig, policy: ReplicationPolicy, source: KafkaClient | None,
                     target: KafkaClient, scope: Scope, report: Report,
                     latest: dict[str, dict[TP, Checkpoint]]) -> None:
    if source is not None:  # best effort: a reachable old primary must not take writes now
        try:
            await _fence(source, scope, link.target, report)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            report.notes.append(f"could not fence {link.source}: {exc}")
    t = time.monotonic()
    await _promote(target, scope, report)
    t = report.step("promote", t)
    tends = await ops.end_offsets(target, scope.target_tps())
    groups = sorted(g for g in latest if policy.should_mirror_group(g))
    active = await ops.active_groups(target, groups)
    committed = {}
    for g in groups:
        if g not in active:
            committed[g] = {tp: o for tp, (o, _) in (await target.offset_fetch(g)).items() if o >= 0}
    commits = checkpoint_commits({g: latest[g] for g in groups if g not in active}, policy, tends, committed)
    for g in groups:
        if g in active:
            report.groups.append(GroupRow(g, {}, "active on the target: offsets left alone"))
            continue
        offsets = commits.get(g, {})
        if offsets:
            await target.offset_commit(g, offsets)
        report.groups.append(GroupRow(g, {f"{t}-{p}": o for (t, p), o in sorted(offsets.items())},
                                      None if offsets else "target already at or past its checkpoint",
                                      _rereads(scope, latest[g].values())))
    report.step("groups", t)
