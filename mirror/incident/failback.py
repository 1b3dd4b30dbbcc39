"""`dcmirror failback`: bring the old source back after a failover, losing nothing it holds.

After an unplanned failover the old source (S) may hold records it acknowledged but never
mirrored, while the new primary (T) took new writes at the same offsets. Per partition:

1. **Divergence point** D: T holds S's batches byte for byte up to the mirrored end at
   promotion (kept in the `failed-over` link state), so D = min(that end, S's end, T's end),
   confirmed by comparing the batch ending at D on both sides (bytes, hence CRC, base
   offset and leader epoch); on a mismatch D walks back a batch at a time.
2. **Keep the diverged records**: S's batches [D, end) are copied, offsets preserved, into
   `__dcmirror.diverged.<topic>.<UTC time>` on S (read-only, retention -1, never mirrored,
   never deleted by dcmirror; the report lists it).
3. **Truncate** S's partitions to D (private DcMirrorTruncate; S's topics are marked as
   mirrors of T first, so its producers are refused from here on).
4. **Catch up** S from T with offsets preserved, so S becomes identical to T.
5. **Groups** follow: offsets committed on T are committed on S (same offsets); a group
   only known on S that was past D is moved back to D so it misses nothing.
6. **Direction**: by default the original direction is restored (fence and drain T,
   promote S, mark T's topics as mirrors of S, link state `normal`: the daemon resumes
   S -> T). With `--stay`, T stays primary, S stays a mirror of T, link state `reversed`.

Every step is idempotent (a re-run finds no divergence, the diverged topic already
complete, truncation at the log end, nothing to copy); the diverged topic names are kept in
the `failing-back` link state so a re-run after a crash reuses them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError, KafkaProtocolError
from mirror.incident import failover_ops as ops
from mirror.records import link_machine as machine
from mirror.records import link_state as ls
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.incident.failover import Confirm, FailoverError, save_snapshot

log = logging.getLogger(__name__)

TP = tuple[str, int]
DIVERGED_PREFIX = "__dcmirror.diverged."


@dataclass
class FailbackPartition:
    topic: str  # on the old source
    target_topic: str  # on the new primary
    partition: int
    promoted_at: int | None
    old_end: int
    divergence: int
    diverged: int  # records kept aside, then cut from the old source
    new_end: int = -1


@dataclass
class FailbackReport:
    link: str
    source: str
    target: str
    stay: bool
    state: str = ""
    already: bool = False
    snapshot: str | None = None
    partitions: list[FailbackPartition] = field(default_factory=list)
    diverged_topics: dict[str, str] = field(default_factory=dict)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def total_diverged(self) -> int:
        return sum(p.diverged for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["total_diverged"] = self.total_diverged
        return doc


def diverged_topic_name(topic: str, stamp: str) -> str:
    name = f"{DIVERGED_PREFIX}{topic}.{stamp}"
    return name if len(name) <= 249 else f"{DIVERGED_PREFIX}{topic[: 249 - len(DIVERGED_PREFIX) - len(stamp) - 1]}.{stamp}"


def divergence_candidate(promoted_at: int | None, old_end: int, new_end: int) -> int:
    """Where the histories may start to differ, before checking bytes."""
    candidate = min(old_end, new_end)
    return candidate if promoted_at is None else min(candidate, promoted_at)


Batch = tuple[int, int, bytes]  # base offset, next offset, the batch's bytes


def divergence_step(d: int, old: Batch | None, new: Batch | None) -> int | None:
    """None if ``d`` is where the histories part (the batches ending at ``d`` are identical,
    or one log has nothing before it); else the next, earlier candidate: the start of the
    mismatching or straddling batch."""
    if old is None or new is None:
        return None
    if old == new and old[1] == d:
        return None
    return min(old[0], new[0])


async def _last_batch_before(client: KafkaClient, topic: str, p: int, offset: int, floor: int):
    """(base, next, bytes) of the batch holding ``offset - 1``, or None at the log start."""
    if offset <= floor:
        return None
    try:
        batches = await ops.fetch_batches(client, topic, p, offset - 1, offset, max_bytes=1 << 20)
    except KafkaProtocolError:  # below the log start: nothing to compare
        return None
    if not batches:
        return None
    from cluster.wire import record_batch as rb

    h = rb.read_header(batches[0])
    return h.base_offset, h.next_offset, bytes(batches[0])


async def same_batch_before(old: KafkaClient, old_topic: str, new: KafkaClient, new_topic: str, p: int,
                            offset: int) -> bool:
    """Both logs hold the identical batch ending exactly at ``offset`` (or both start there)."""
    a = await _last_batch_before(old, old_topic, p, offset, 0)
    b = await _last_batch_before(new, new_topic, p, offset, 0)
    if a is None or b is None:
        return a is None and b is None
    return a == b and a[1] == offset


async def find_divergence(old: KafkaClient, old_topic: str, new: KafkaClient, new_topic: str, p: int,
                          candidate: int) -> int:
    """Walk back from ``candidate`` until the batch ending there is identical on both."""
    floor_old = (await old.list_offsets(old_topic, [p], -2))[p][0]
    floor_new = (await new.list_offsets(new_topic, [p], -2))[p][0]
    floor = max(floor_old, floor_new)
    d = candidate
    for _ in range(10_000):
        if d <= floor:
            return d
        a = await _last_batch_before(old, old_topic, p, d, floor)
        b = await _last_batch_before(new, new_topic, p, d, floor)
        back = divergence_step(d, a, b)
        if back is None:
            return d
        d = back
    raise FailoverError(f"{old_topic}-{p}: no common history found near offset {candidate}")


async def _catch_up(new: KafkaClient, old: KafkaClient, parts: list[FailbackPartition]) -> None:
    """Copy what the old source lacks from the new primary, offsets preserved, partitions in
    parallel; then record each partition's new end."""
    old_ends = await ops.end_offsets(old, [(p.topic, p.partition) for p in parts])
    new_ends = await ops.end_offsets(new, [(p.target_topic, p.partition) for p in parts])
    sem = asyncio.Semaphore(16)

    async def one(part: FailbackPartition) -> None:
        start, end = old_ends[(part.topic, part.partition)], new_ends[(part.target_topic, part.partition)]
        if start < end:
            async with sem:
                await ops.copy_preserving(new, part.target_topic, old, part.topic, part.partition, start, end)

    await asyncio.gather(*(one(p) for p in parts))
    done = await ops.end_offsets(old, [(p.topic, p.partition) for p in parts])
    for part in parts:
        part.new_end = done[(part.topic, part.partition)]


async def _move_groups(link: LinkConfig, cfg: MirrorConfig, new: KafkaClient, old: KafkaClient,
                       parts: list[FailbackPartition], report: FailbackReport) -> None:
    """Offsets committed on the new primary follow to the old source (same offsets)."""
    policy = cfg.policy(link)
    by_target = {(p.target_topic, p.partition): p for p in parts}
    by_source = {(p.topic, p.partition): p for p in parts}
    groups = {g.group_id for g in await new.list_groups() if policy.should_mirror_group(g.group_id)}
    groups |= {g.group_id for g in await old.list_groups() if policy.should_mirror_group(g.group_id)}
    active = await ops.active_groups(old, sorted(groups))
    for g in sorted(groups):
        if g in active:
            report.notes.append(f"group {g} has members on {link.source}; its offsets were left alone")
            continue
        commits: dict[TP, int] = {}
        for (t, p), (off, _) in (await new.offset_fetch(g)).items():
            part = by_target.get((t, p))
            if part is not None and off >= 0:
                commits[(part.topic, p)] = min(off, part.new_end)
        for (t, p), (off, _) in (await old.offset_fetch(g)).items():
            part = by_source.get((t, p))
            if part is not None and (t, p) not in commits and off > part.divergence:
                commits[(t, p)] = part.divergence  # it read diverged records; resume where T took over
        if commits:
            await old.offset_commit(g, commits)
            report.groups[g] = {f"{t}-{p}": o for (t, p), o in sorted(commits.items())}


async def run_failback(cfg: MirrorConfig, link: LinkConfig, *, stay: bool = False, snapshot_dir: Path,
                       confirm: Confirm = lambda r: True) -> FailbackReport:
    started = time.monotonic()
    policy = cfg.policy(link)
    report = FailbackReport(link.name, link.source, link.target, stay)
    new = ops.client_for(cfg, link.target)  # the new primary (the link's target)
    old = ops.client_for(cfg, link.source)  # the old primary, back from the dark
    try:
        for alias, client in ((link.target, new), (link.source, old)):
            try:
                await client.start()
            except (KafkaError, OSError) as exc:
                raise FailoverError(f"cannot reach {alias!r}: {exc}; failback needs both clusters") from None
        if not (await ops.is_dcmirror(old) and await ops.is_dcmirror(new)):
            raise FailoverError("failback needs dcmirror clusters on both sides (offsets are preserved "
                                "and the old source is truncated); for other clusters, re-mirror instead")
        state = (await ls.read_state(new, link.name)).state
        report.state = state.state
        command = machine.Command.FAILBACK_STAY if stay else machine.Command.FAILBACK
        if machine.is_done(state.state, command):
            report.already = True
            report.notes.append(f"link {link.name} is {state.state}: nothing to fail back")
            return report
        try:
            failing_back = machine.transition(link.name, state.state, command)
        except machine.TransitionError as exc:
            raise FailoverError(str(exc)) from None
        promoted = state.promoted
        details = dict(state.details or {})
        topics = sorted(set(promoted) | set(details.get("topics", [])))
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        diverged_names: dict[str, str] = dict(details.get("diverged_topics", {}))
        new_topics = await new.list_topics()
        old_topics = await old.list_topics(include_internal=True)
        parts: list[FailbackPartition] = []
        for topic in topics:
            ttopic = policy.target_topic(topic)
            if ttopic not in new_topics:
                report.notes.append(f"{ttopic} no longer exists on {link.target}; skipped")
                continue
            pids = sorted(new_topics[ttopic].partitions)
            if topic not in old_topics:
                await ops.ensure_mirror_topic(old, topic, len(pids), {ops.MIRROR_SOURCE: link.target})
            elif old_topics[topic].num_partitions < len(pids):  # grown on the new primary meanwhile
                await old.create_partitions({topic: len(pids)})
            old_ends = await ops.end_offsets(old, [(topic, p) for p in pids])
            new_ends = await ops.end_offsets(new, [(ttopic, p) for p in pids])
            sem = asyncio.Semaphore(16)

            async def locate(p: int, topic: str = topic, ttopic: str = ttopic) -> FailbackPartition:
                at = promoted.get(topic, {}).get(p)
                e, w = old_ends[(topic, p)], new_ends[(ttopic, p)]
                d = min(e, w)  # a re-run (or nothing diverged): identical up to the shorter end
                async with sem:
                    if not await same_batch_before(old, topic, new, ttopic, p, d):
                        d = await find_divergence(old, topic, new, ttopic, p, divergence_candidate(at, e, w))
                return FailbackPartition(topic, ttopic, p, at, e, d, max(0, e - d))

            parts += await asyncio.gather(*(locate(p) for p in pids))
        report.partitions = parts
        for part in parts:
            if part.diverged and part.topic not in diverged_names:
                diverged_names[part.topic] = diverged_topic_name(part.topic, stamp)
        report.diverged_topics = {t: n for t, n in diverged_names.items() if any(
            p.topic == t and p.diverged for p in parts) or t in details.get("diverged_topics", {})}
        snapshot = {"link": link.name, "taken_ms": int(time.time() * 1000), "state": asdict(state),
                    "plan": report.to_json()}
        report.snapshot = str(save_snapshot(snapshot_dir, link.name, "failback", snapshot))
        if not confirm(report):  # type: ignore[arg-type]
            raise FailoverError("not confirmed; nothing was changed")
        await ls.write_state(new, link.name, ls.LinkState(
            failing_back, int(time.time() * 1000), by="dcmirror failback", reason="stay" if stay else "restore",
            promoted=promoted, details={**details, "diverged_topics": diverged_names}))
        # From here the old source refuses its producers: its topics are mirrors of the new primary.
        await ops.set_configs(old, {t: {ops.MIRROR_SOURCE: link.target, ops.FENCED: None}
                                    for t in sorted({p.topic for p in parts})})
        for part in parts:
            if not part.diverged:
                continue
            missing = await ops.keep_records(old, part.topic, {part.partition: (part.divergence, part.old_end)},
                                             diverged_names[part.topic],
                                             len(new_topics[part.target_topic].partitions), link.source)
            if missing:
                raise FailoverError(f"{missing[0]}; nothing was truncated, run failback again")
        cut = {(p.topic, p.partition): p.divergence for p in parts if p.diverged}
        await ops.truncate(old, cut)
        await _catch_up(new, old, parts)
        if stay:
            await _move_groups(link, cfg, new, old, parts, report)
            stayed = machine.transition(link.name, failing_back, machine.Command.STAYED)
            await ls.write_state(new, link.name, ls.LinkState(
                stayed, int(time.time() * 1000), by="dcmirror failback --stay", promoted=promoted,
                details={**details, "diverged_topics": diverged_names}))
            report.state = stayed
            report.notes.append(f"{link.target} stays primary; {link.source}'s topics are read-only mirrors "
                                f"of it. Run `dcmirror failback` again (without --stay) to switch back")
            return report
        target_topics = sorted({p.target_topic for p in parts})
        await ops.set_configs(new, {t: {ops.FENCED: link.source} for t in target_topics})
        await _catch_up(new, old, parts)  # the new primary is fenced: this is the last catch-up
        await _move_groups(link, cfg, new, old, parts, report)
        await ops.set_configs(old, {t: {ops.MIRROR_SOURCE: None, ops.FENCED: None}
                                    for t in sorted({p.topic for p in parts})})
        await ops.set_configs(new, {t: {ops.MIRROR_SOURCE: link.source, ops.FENCED: None} for t in target_topics})
        restored = machine.transition(link.name, failing_back, machine.Command.RESTORED)
        await ls.write_state(new, link.name, ls.LinkState(
            restored, int(time.time() * 1000), by="dcmirror failback",
            details={"diverged_topics": diverged_names}))
        report.state = restored
        return report
    finally:
        report.elapsed_s = round(time.monotonic() - started, 3)
        await new.close()
        await old.close()
