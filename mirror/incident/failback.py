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
the `failing-back` link state so a re-run after a crash reuses them. `run_failback` reads
and plans (changing nothing, so `--dry-run` stops there), then runs the named steps
`failback_steps` returns: the list the live output and `--dry-run` print.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError, KafkaProtocolError
from mirror.incident import failover_ops as ops
from mirror.records import link_machine as machine
from mirror.records import link_state as ls
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.incident.failover_plan import FailoverError, save_snapshot
from mirror.incident.steps import NullProgress, Progress, Step, describe, run_steps

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
    dry_run: bool = False
    plan: list[dict[str, Any]] = field(default_factory=list)  # the steps it runs (steps.describe)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step run, in order
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


def group_moves(by_target: dict[TP, FailbackPartition], by_source: dict[TP, FailbackPartition],
                on_new: dict[TP, int], on_old: dict[TP, int]) -> dict[TP, int]:
    """What one group commits on the old source: its offsets on the new primary (same
    offsets, never past the old source's new end); a partition it only read on the old
    source, past the divergence point, goes back there so it misses none of the new
    primary's records."""
    commits: dict[TP, int] = {}
    for (t, p), off in on_new.items():
        part = by_target.get((t, p))
        if part is not None and off >= 0:
            commits[(part.topic, p)] = min(off, part.new_end)
    for (t, p), off in on_old.items():
        part = by_source.get((t, p))
        if part is not None and (t, p) not in commits and off > part.divergence:
            commits[(t, p)] = part.divergence  # it read diverged records; resume where T took over
    return commits


Confirm = Callable[[FailbackReport], bool]


@dataclass
class FailbackRun:
    """What the steps of one failback share."""

    cfg: MirrorConfig
    link: LinkConfig
    new: KafkaClient  # the new primary (the link's target)
    old: KafkaClient  # the old primary, back from the dark
    report: FailbackReport
    state: ls.LinkState
    failing_back: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    diverged_names: dict[str, str] = field(default_factory=dict)
    partition_counts: dict[str, int] = field(default_factory=dict)  # target topic -> partitions
    to_create: dict[str, int] = field(default_factory=dict)  # old source topic -> partitions it needs

    @property
    def parts(self) -> list[FailbackPartition]:
        return self.report.partitions

    def source_topics(self) -> list[str]:
        return sorted({p.topic for p in self.parts})

    def target_topics(self) -> list[str]:
        return sorted({p.target_topic for p in self.parts})


def failback_steps(run: FailbackRun) -> list[Step]:
    """The steps of this failback, in order (what runs, what is shown, what --dry-run prints)."""
    src, tgt, stay = run.link.source, run.link.target, run.report.stay
    copy = 1800.0  # copying a partition's worth of records: generous, still bounded
    steps = [Step("record failing-back", f"record failing-back in the link state on {tgt}", 60, _record_failing_back),
             Step("prepare topics", f"create or grow the topics on {src} to match {tgt}", 120, _prepare_topics),
             Step("mark mirrors", f"mark {src}'s topics as mirrors of {tgt} (its producers are refused from "
                  "here on)", 60, _mark_old_as_mirror),
             Step("keep diverged", f"copy the {run.report.total_diverged} diverged record(s) of {src} into "
                  f"{len(run.report.diverged_topics)} __dcmirror.diverged.* topic(s)", copy, _keep_diverged),
             Step("truncate", f"truncate {src}'s partitions where the histories part", 120, _truncate),
             Step("catch up", f"copy what {src} lacks from {tgt}, offsets preserved", copy, _step_catch_up)]
    groups = Step("groups", f"commit the groups' offsets of {tgt} on {src}", 120, _step_groups)
    if stay:
        return steps + [groups, Step("record reversed", f"record reversed: {tgt} stays primary, a running "
                                     f"mirror copies {tgt} -> {src}", 60, _record_reversed)]
    return steps + [Step("fence", f"fence {tgt}'s topics against producers", 60, _fence_new),
                    Step("last catch up", f"copy what {tgt} took before the fence", copy, _step_catch_up),
                    groups,
                    Step("switch", f"promote {src}'s topics and mark {tgt}'s as its mirrors", 60, _switch),
                    Step("record normal", f"record normal: a running mirror copies {src} -> {tgt} again", 60,
                         _record_normal)]


async def _record_failing_back(run: FailbackRun) -> None:
    await ls.write_state(run.new, run.link.name, ls.LinkState(
        run.failing_back, int(time.time() * 1000), by="dcmirror failback",
        reason="stay" if run.report.stay else "restore", promoted=run.state.promoted,
        details={**run.details, "diverged_topics": run.diverged_names}))


async def _prepare_topics(run: FailbackRun) -> None:
    old_topics = await run.old.list_topics(include_internal=True)
    for topic, n in sorted(run.to_create.items()):
        if topic not in old_topics:
            await ops.ensure_mirror_topic(run.old, topic, n, {ops.MIRROR_SOURCE: run.link.target})
        elif old_topics[topic].num_partitions < n:  # grown on the new primary meanwhile
            await run.old.create_partitions({topic: n})


async def _mark_old_as_mirror(run: FailbackRun) -> None:
    await ops.set_configs(run.old, {t: {ops.MIRROR_SOURCE: run.link.target, ops.FENCED: None}
                                    for t in run.source_topics()})


async def _keep_diverged(run: FailbackRun) -> None:
    for part in run.parts:
        if not part.diverged:
            continue
        missing = await ops.keep_records(run.old, part.topic, {part.partition: (part.divergence, part.old_end)},
                                         run.diverged_names[part.topic], run.partition_counts[part.target_topic],
                                         run.link.source)
        if missing:
            raise FailoverError(f"{missing[0]}; nothing was truncated, run failback again")


async def _truncate(run: FailbackRun) -> None:
    await ops.truncate(run.old, {(p.topic, p.partition): p.divergence for p in run.parts if p.diverged})


async def _step_catch_up(run: FailbackRun) -> None:
    await _catch_up(run.new, run.old, run.parts)


async def _step_groups(run: FailbackRun) -> None:
    await _move_groups(run, apply=True)


async def _move_groups(run: FailbackRun, *, apply: bool) -> None:
    """Offsets committed on the new primary follow to the old source (same offsets)."""
    link, new, old, report = run.link, run.new, run.old, run.report
    policy = run.cfg.policy(link)
    by_target = {(p.target_topic, p.partition): p for p in run.parts}
    by_source = {(p.topic, p.partition): p for p in run.parts}
    groups = {g.group_id for g in await new.list_groups() if policy.should_mirror_group(g.group_id)}
    groups |= {g.group_id for g in await old.list_groups() if policy.should_mirror_group(g.group_id)}
    active = await ops.active_groups(old, sorted(groups))
    report.groups = {}
    for g in sorted(groups):
        if g in active:
            note = f"group {g} has members on {link.source}; its offsets were left alone"
            if note not in report.notes:
                report.notes.append(note)
            continue
        on_new = {tp: off for tp, (off, _) in (await new.offset_fetch(g)).items()}
        on_old = {tp: off for tp, (off, _) in (await old.offset_fetch(g)).items()}
        commits = group_moves(by_target, by_source, on_new, on_old)
        if commits:
            if apply:
                await old.offset_commit(g, commits)
            report.groups[g] = {f"{t}-{p}": o for (t, p), o in sorted(commits.items())}


async def _record_reversed(run: FailbackRun) -> None:
    link = run.link
    stayed = machine.transition(link.name, run.failing_back, machine.Command.STAYED)
    await ls.write_state(run.new, link.name, ls.LinkState(
        stayed, int(time.time() * 1000), by="dcmirror failback --stay", promoted=run.state.promoted,
        details={**run.details, "diverged_topics": run.diverged_names}))
    run.report.state = stayed
    run.report.notes.append(f"{link.target} stays primary; {link.source}'s topics are read-only mirrors "
                            f"of it. Run `dcmirror failback` again (without --stay) to switch back")


async def _fence_new(run: FailbackRun) -> None:
    await ops.set_configs(run.new, {t: {ops.FENCED: run.link.source} for t in run.target_topics()})


async def _switch(run: FailbackRun) -> None:
    await ops.set_configs(run.old, {t: {ops.MIRROR_SOURCE: None, ops.FENCED: None} for t in run.source_topics()})
    await ops.set_configs(run.new, {t: {ops.MIRROR_SOURCE: run.link.source, ops.FENCED: None}
                                    for t in run.target_topics()})


async def _record_normal(run: FailbackRun) -> None:
    restored = machine.transition(run.link.name, run.failing_back, machine.Command.RESTORED)
    await ls.write_state(run.new, run.link.name, ls.LinkState(
        restored, int(time.time() * 1000), by="dcmirror failback",
        details={"diverged_topics": run.diverged_names}))
    run.report.state = restored


# -- reading and planning (changes nothing) -------------------------------------------------


async def _locate_topic(run: FailbackRun, topic: str, ttopic: str, pids: list[int], old_parts: int) -> list[FailbackPartition]:
    """Per partition of ``topic``: where the old source's and the new primary's histories part.
    A partition the old source does not have yet starts empty there (end 0, nothing diverged)."""
    old, new = run.old, run.new
    have = [p for p in pids if p < old_parts]
    old_ends = {**{(topic, p): 0 for p in pids}, **await ops.end_offsets(old, [(topic, p) for p in have])}
    new_ends = await ops.end_offsets(new, [(ttopic, p) for p in pids])
    sem = asyncio.Semaphore(16)

    async def locate(p: int) -> FailbackPartition:
        at = run.state.promoted.get(topic, {}).get(p)
        e, w = old_ends[(topic, p)], new_ends[(ttopic, p)]
        d = min(e, w)  # a re-run (or nothing diverged): identical up to the shorter end
        if p in have:
            async with sem:
                if not await same_batch_before(old, topic, new, ttopic, p, d):
                    d = await find_divergence(old, topic, new, ttopic, p, divergence_candidate(at, e, w))
        return FailbackPartition(topic, ttopic, p, at, e, d, max(0, e - d), new_end=w)

    return list(await asyncio.gather(*(locate(p) for p in pids)))


async def _plan(run: FailbackRun) -> None:
    policy, report = run.cfg.policy(run.link), run.report
    topics = sorted(set(run.state.promoted) | set(run.details.get("topics", [])))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    new_topics = await run.new.list_topics()
    old_topics = await run.old.list_topics(include_internal=True)
    for topic in topics:
        ttopic = policy.target_topic(topic)
        if ttopic not in new_topics:
            report.notes.append(f"{ttopic} no longer exists on {run.link.target}; skipped")
            continue
        pids = sorted(new_topics[ttopic].partitions)
        run.partition_counts[ttopic] = len(pids)
        old_parts = old_topics[topic].num_partitions if topic in old_topics else 0
        if old_parts < len(pids):
            run.to_create[topic] = len(pids)
        report.partitions += await _locate_topic(run, topic, ttopic, pids, old_parts)
    for part in report.partitions:
        if part.diverged and part.topic not in run.diverged_names:
            run.diverged_names[part.topic] = diverged_topic_name(part.topic, stamp)
    earlier = run.details.get("diverged_topics", {})
    report.diverged_topics = {t: n for t, n in run.diverged_names.items()
                              if any(p.topic == t and p.diverged for p in report.partitions) or t in earlier}
    await _move_groups(run, apply=False)


async def _connect(cfg: MirrorConfig, link: LinkConfig) -> tuple[KafkaClient, KafkaClient]:
    new, old = ops.client_for(cfg, link.target), ops.client_for(cfg, link.source)
    for alias, client in ((link.target, new), (link.source, old)):
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            await new.close()
            await old.close()
            raise FailoverError(f"cannot reach {alias!r}: {exc}; failback needs both clusters") from None
    if not (await ops.is_dcmirror(old) and await ops.is_dcmirror(new)):
        await new.close()
        await old.close()
        raise FailoverError("failback needs dcmirror clusters on both sides (offsets are preserved "
                            "and the old source is truncated); for other clusters, re-mirror instead")
    return new, old


async def run_failback(cfg: MirrorConfig, link: LinkConfig, *, stay: bool = False, dry_run: bool = False,
                       snapshot_dir: Path, confirm: Confirm = lambda r: True,
                       progress: Progress | None = None) -> FailbackReport:
    started = time.monotonic()
    progress = progress or NullProgress()
    report = FailbackReport(link.name, link.source, link.target, stay, dry_run=dry_run)
    new, old = await _connect(cfg, link)
    try:
        progress.note(f"reading the link state of {link.name} and where {link.source} and {link.target} part")
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
        details = dict(state.details or {})
        run = FailbackRun(cfg, link, new, old, report, state, failing_back, details,
                          dict(details.get("diverged_topics", {})))
        await _plan(run)
        steps = failback_steps(run)
        report.plan = describe(steps)
        report.steps["plan"] = round(time.monotonic() - started, 3)
        if dry_run:
            report.notes.append("dry run: nothing was changed")
            return report
        snapshot = {"link": link.name, "taken_ms": int(time.time() * 1000), "state": asdict(state),
                    "plan": report.to_json()}
        report.snapshot = str(save_snapshot(snapshot_dir, link.name, "failback", snapshot))
        if not confirm(report):
            raise FailoverError("not confirmed; nothing was changed")
        await run_steps(steps, run, progress, report.steps, f"dcmirror failback --link {link.name}")
        return report
    finally:
        report.elapsed_s = round(time.monotonic() - started, 3)
        await new.close()
        await old.close()
