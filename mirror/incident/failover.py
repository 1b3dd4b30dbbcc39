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

The arithmetic is pure (failover_plan: `recovery_rows`, `checkpoint_commits`,
`reread_bound`) and unit-tested. `run_failover` reads and plans, then runs the list of
named steps `failover_steps` returns: the same list the live output and `--dry-run` print.
A paused link is drained like a running one: the pause stops the daemon's copying, not a
planned failover's own catch-up (what a paused link held back is copied, nothing is lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.config.policy import ReplicationPolicy
from mirror.incident import failover_ops as ops
from mirror.incident.failover_plan import (  # noqa: F401  (the report's names, re-exported)
    TP,
    FailoverError,
    GroupRow,
    PartitionRow,
    Report,
    Scope,
    _flat,
    _nested,
    _rereads,
    already_rows,
    checkpoint_commits,
    gather_scope,
    latest_checkpoints,
    mirrored_positions,
    recovery_rows,
    reread_bound,
    save_snapshot,
)
from mirror.incident.steps import NullProgress, Progress, Step, describe, run_steps
from mirror.records import link_machine as machine
from mirror.records import link_state as ls
from mirror.records.offsets import Checkpoint, read_checkpoints
from mirror.replication.mode import sink_for

log = logging.getLogger(__name__)

Confirm = Callable[[Report], bool]


@dataclass
class FailoverRun:
    """What the steps of one failover share: clients, what was read, and the report."""

    cfg: MirrorConfig
    link: LinkConfig
    policy: ReplicationPolicy
    target: KafkaClient
    report: Report
    scope: Scope
    progress: Progress
    state: ls.LinkState
    contact: ls.Contact | None
    source: KafkaClient | None = None
    source_is_dcmirror: bool = False
    quiet_s: float = 3.0
    drain_timeout_s: float = 120.0
    latest: dict[str, dict[TP, Checkpoint]] = field(default_factory=dict)
    failing_over: str = ""
    since_ms: int = 0
    ack: asyncio.Task | None = None

    @property
    def planned(self) -> bool:
        return self.report.kind == "planned"


# -- the steps ---------------------------------------------------------------------------


def failover_steps(run: FailoverRun) -> list[Step]:
    """The steps of this failover, in order: what runs, what the live output shows and what
    `--dry-run` prints."""
    link = run.link
    record = Step("record failing-over", f"record failing-over in the link state on {link.target}: "
                  "a running mirror stops copying the link", 60, _record_failing_over)
    done = Step("record failed-over", "record failed-over with the promoted ends and the loss", 60,
                _record_failed_over)
    if run.planned:
        fence = (f"fence the mirrored topics on {link.source} (its producers are refused from here on)"
                 if run.source_is_dcmirror else f"{link.source} is not a dcmirror cluster and cannot be "
                 "fenced: stop its producers first")
        still = "" if run.source_is_dcmirror else f", then until its end offsets stay still for {run.quiet_s:.0f}s"
        return [record, Step("fence", fence, 60, _step_fence),
                Step("drain", f"copy what {link.target} lacks until it holds all of {link.source}{still}",
                     run.drain_timeout_s + 30, _step_drain),
                Step("daemon ack", "wait (up to 10s) for a running mirror to acknowledge the failover", 30,
                     _step_ack),
                Step("checkpoint+promote", f"commit every group's final offsets on {link.target} and promote "
                     "its topics (writable, no longer mirrors)", 120, _step_checkpoint_promote), done]
    steps = [record]
    if run.source is not None:
        steps.append(Step("fence", f"fence the mirrored topics on {link.source} (best effort: it is reachable "
                          "and must not take writes now)", 30, _step_fence_best_effort))
    return steps + [Step("promote", f"promote the topics on {link.target} (writable, no longer mirrors)", 60,
                         _step_promote),
                    Step("groups", f"commit each group's newest checkpoint on {link.target} (never moving a "
                         "group back)", 120, _step_groups), done]


async def _record_failing_over(run: FailoverRun) -> None:
    run.since_ms = int(time.time() * 1000)
    await ls.write_state(run.target, run.link.name, ls.LinkState(
        run.failing_over, run.since_ms, by="dcmirror failover", reason=run.report.kind,
        details={"topics": sorted(run.scope.source_topics())}))


async def _step_fence(run: FailoverRun) -> None:
    if run.source_is_dcmirror:
        await _fence(run.source, run.scope, run.link.target, run.report)
    # The daemon acknowledges within a second; meanwhile drain (offset-preserving appends it
    # might still make are skipped by the target). Its checkpoints stop before our last one.
    run.ack = asyncio.create_task(_wait_for_daemon(run.target, run.link.name, run.since_ms, run.contact,
                                                   run.report))


async def _step_drain(run: FailoverRun) -> None:
    if not run.scope.mapping.preserves and run.ack is not None:  # a racing daemon's Produce would duplicate
        await run.ack
    lag = sum(max(0, (r.source_end or 0) - r.mirrored) for r in run.report.partitions)
    if lag:
        run.progress.note(f"  {lag} record(s) to copy" + (" (held back by the pause)"
                                                          if run.state.state == "paused" else ""))
    await _drain(run.link, run.policy, run.source, run.target, run.scope, run.quiet_s,
                 run.source_is_dcmirror, run.drain_timeout_s)


async def _step_ack(run: FailoverRun) -> None:
    if run.ack is not None:
        await run.ack


async def _step_checkpoint_promote(run: FailoverRun) -> None:
    if not run.scope.mapping.preserves:  # the drain wrote new syncs: read them again
        state = ls.LinkState(details={"topics": sorted(run.scope.source_topics())})
        run.scope = await gather_scope(run.link, run.policy, run.target, state, None)
    # Both only need the drained target: consumers may read a mirror topic already, and
    # producers find the offsets of nobody; so group offsets and promotion go in parallel.
    await asyncio.gather(_final_checkpoint(run, apply=True), _promote(run.target, run.scope, run.report))


async def _step_fence_best_effort(run: FailoverRun) -> None:
    try:
        await _fence(run.source, run.scope, run.link.target, run.report)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        run.report.notes.append(f"could not fence {run.link.source}: {exc}")
        run.progress.note(f"  could not fence {run.link.source}: {exc}")


async def _step_promote(run: FailoverRun) -> None:
    await _promote(run.target, run.scope, run.report)


async def _step_groups(run: FailoverRun) -> None:
    await _unplanned_groups(run, apply=True)


async def _record_failed_over(run: FailoverRun) -> None:
    link, report = run.link, run.report
    mirrored = await mirrored_positions(run.scope, run.target)
    if run.source is not None:
        try:
            report.partitions = recovery_rows(mirrored, await ops.end_offsets(run.source, list(mirrored)))
        except (KafkaError, OSError, asyncio.TimeoutError):
            if run.planned:
                raise
    elif run.contact is not None:
        report.partitions = recovery_rows(mirrored, _flat(run.contact.source_ends))
    promoted = _nested({tp: up for tp, (_, up, _) in mirrored.items()})
    loss = _nested({(r.topic, r.partition): r.loss for r in report.partitions if r.loss is not None})
    promoted_state = machine.transition(link.name, run.failing_over, machine.Command.PROMOTED)
    await ls.write_state(run.target, link.name, ls.LinkState(
        promoted_state, int(time.time() * 1000), by="dcmirror failover", reason=report.kind, promoted=promoted,
        details={"topics": sorted(run.scope.source_topics()), "total_loss": report.total_loss,
                 "loss_bound": report.loss_bound,
                 "loss": {t: {str(p): n for p, n in ps.items()} for t, ps in loss.items()},
                 "last_contact_ms": report.last_contact_ms}))
    report.state = promoted_state


# -- reading and planning ----------------------------------------------------------------


async def _connect_target(cfg: MirrorConfig, link: LinkConfig) -> KafkaClient:
    target = ops.client_for(cfg, link.target)
    try:
        await target.start()
    except (KafkaError, OSError) as exc:
        await target.close()
        raise FailoverError(f"cannot reach the target cluster {link.target!r}: {exc}") from None
    return target


async def _read(cfg: MirrorConfig, link: LinkConfig, target: KafkaClient, force: bool, dry_run: bool,
                progress: Progress) -> tuple[FailoverRun, bool]:
    """Link state, last contact, the source's reachability and the scope; and whether the
    source answers."""
    progress.note(f"reading the link state of {link.name} and what {link.target} holds")
    policy = cfg.policy(link)
    state_log, contact, source_up = await asyncio.gather(
        ls.read_state(target, link.name), ls.read_last_contact(target, link.name),
        ops.reachable(cfg, link.source))
    state = state_log.state
    scope = await gather_scope(link, policy, target, state, contact)
    kind = "unplanned" if force else "planned"
    report = Report(link.name, link.source, link.target, kind, scope.mapping.mode, dry_run=dry_run,
                    state=state.state, last_contact_ms=contact.at_ms if contact else None)
    return FailoverRun(cfg, link, policy, target, report, scope, progress, state, contact), source_up


async def _already(run: FailoverRun) -> Report:
    """The report of a failover that already happened (nothing to do)."""
    state, report, policy = run.state, run.report, run.policy
    report.already = True
    report.kind = state.reason or report.kind
    report.partitions = already_rows(state, policy, await ops.end_offsets(
        run.target, [(policy.target_topic(t), p) for t, ps in state.promoted.items() for p in ps]))
    report.notes.append(f"link {run.link.name} already failed over to {run.link.target} "
                        f"({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(state.since_ms / 1000))}); "
                        "nothing to do")
    return report


async def _plan(run: FailoverRun, source_up: bool) -> None:
    """Connect the source when it answers, read the ends and preview the groups."""
    link, report = run.link, run.report
    if run.planned and not source_up:
        raise FailoverError(f"the source cluster {link.source!r} is unreachable; a planned failover "
                            "needs it. Use --force for an unplanned failover (reports the loss)")
    if source_up:
        run.source = ops.client_for(run.cfg, link.source)
        await run.source.start()
        run.source_is_dcmirror = report.fenceable = await ops.is_dcmirror(run.source)
    mirrored = await mirrored_positions(run.scope, run.target)
    if run.source is not None:
        report.partitions = recovery_rows(mirrored, await ops.end_offsets(run.source, list(mirrored)))
    else:
        report.partitions = recovery_rows(mirrored, _flat(run.contact.source_ends) if run.contact else None)
        if run.contact is None:
            report.notes.append("no last-contact record: the loss cannot be computed")
    if run.planned:
        report.notes.append(
            f"planned: {link.source} is fenced and drained first, expected loss is 0" if run.source_is_dcmirror
            else f"planned: {link.source} is not a dcmirror cluster and cannot be fenced: stop its producers "
                 f"first; the failover waits until its end offsets stay still for {run.quiet_s:.0f}s")
        await _final_checkpoint(run, apply=False)
    else:
        run.latest = latest_checkpoints(await read_checkpoints(run.target, link.name))
        await _unplanned_groups(run, apply=False)


def _snapshot(run: FailoverRun, snapshot_dir: Path) -> None:
    doc = {"link": run.link.name, "taken_ms": int(time.time() * 1000), "state": asdict(run.state),
           "last_contact": asdict(run.contact) if run.contact else None, "plan": run.report.to_json(),
           "checkpoints": [asdict(c) for cps in run.latest.values() for c in cps.values()]}
    run.report.snapshot = str(save_snapshot(snapshot_dir, run.link.name, "failover", doc))


async def run_failover(cfg: MirrorConfig, link: LinkConfig, *, force: bool = False, dry_run: bool = False,
                       snapshot_dir: Path, confirm: Confirm = lambda r: True,
                       quiet_s: float = 3.0, drain_timeout_s: float = 120.0,
                       progress: Progress | None = None) -> Report:
    started = time.monotonic()
    progress = progress or NullProgress()
    target = await _connect_target(cfg, link)
    run: FailoverRun | None = None
    try:
        run, source_up = await _read(cfg, link, target, force, dry_run, progress)
        run.quiet_s, run.drain_timeout_s = quiet_s, drain_timeout_s
        if machine.is_done(run.state.state, machine.Command.FAILOVER):
            return await _already(run)
        try:
            run.failing_over = machine.transition(link.name, run.state.state, machine.Command.FAILOVER)
        except machine.TransitionError as exc:
            raise FailoverError(str(exc)) from None
        await _plan(run, source_up)
        steps = failover_steps(run)
        run.report.plan = describe(steps)
        run.report.steps["plan"] = round(time.monotonic() - started, 3)
        if dry_run:
            run.report.notes.append("dry run: nothing was changed")
            return run.report
        _snapshot(run, snapshot_dir)
        if not confirm(run.report):
            raise FailoverError("not confirmed; nothing was changed")
        await run_steps(steps, run, progress, run.report.steps, f"dcmirror failover --link {link.name}")
        return run.report
    finally:
        if run is not None:
            run.report.elapsed_s = round(time.monotonic() - started, 3)
            if run.ack is not None:
                run.ack.cancel()
            if run.source is not None:
                await run.source.close()
        await target.close()


# -- the operations the steps are made of ---------------------------------------------------


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
    copier = LinkCopier(link.name, source, sink, LinkProgress(link.name), policy.target_topic,
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
        copied = await _copy_once(copier)
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
        if not behind or not copied:
            await asyncio.sleep(0.05 if behind else 0.2)


async def _copy_once(copier) -> int:
    """One resume + fetch + write outside the copier's own loop. Its loop clears the
    "assignment changed" signal before each step; a caller of `step` alone must too, or
    every fetch is cancelled at once as "reassigned" and nothing is ever copied (a paused
    link's planned failover timed out after 120 s). (A public LinkCopier method would be
    better: copier.py has another owner this session.)"""
    copier._changed.clear()
    await copier._resume()
    return await copier.step() if copier._positions else 0


async def _final_checkpoint(run: FailoverRun, *, apply: bool) -> None:
    """The Checkpointer's rules (translate, never past what was mirrored, never touch a
    group active on the target), applied once to every group with all requests in
    parallel, committing and recording only what differs from the target's commits.
    Without ``apply`` (the plan, `--dry-run`): only the report's group rows."""
    from mirror.records.offsets import encode_checkpoint
    from mirror.replication.checkpoints import Checkpointer
    from mirror.replication.progress import LinkProgress

    policy, source, target, scope, report = run.policy, run.source, run.target, run.scope, run.report
    mirrored = await mirrored_positions(scope, target)
    checkpointer = Checkpointer(run.link.name, policy, source, target, LinkProgress(run.link.name),
                                scope.mapping, lambda tp: mirrored.get(tp, ("", -1, -1))[1])
    groups = [g.group_id for g in await source.list_groups() if policy.should_mirror_group(g.group_id)]
    report.groups = []
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
    if apply:
        await asyncio.gather(*commits)
        await checkpointer.store.append(records)


async def _promote(target: KafkaClient, scope: Scope, report: Report) -> None:
    topics = sorted({t for t in scope.parts.values()})
    if scope.mapping.preserves:
        await ops.set_configs(target, {t: {ops.MIRROR_SOURCE: None, ops.FENCED: None} for t in topics})
    report.promoted = topics


async def _unplanned_groups(run: FailoverRun, *, apply: bool) -> None:
    """Commit each idle group's newest checkpoint on the target where it moves the group
    forward; report per group the re-reads known from its checkpoint and, per partition,
    the most it can re-read (the records past where it resumes). Without ``apply``: only
    the report (the plan, `--dry-run`)."""
    policy, target, latest = run.policy, run.target, run.latest
    tends = await ops.end_offsets(target, run.scope.target_tps())
    groups = sorted(g for g in latest if policy.should_mirror_group(g))
    active = await ops.active_groups(target, groups)
    committed = {}
    for g in groups:
        if g not in active:
            committed[g] = {tp: o for tp, (o, _) in (await target.offset_fetch(g)).items() if o >= 0}
    commits = checkpoint_commits({g: latest[g] for g in groups if g not in active}, policy, tends, committed)
    run.report.groups = []
    for g in groups:
        if g in active:
            run.report.groups.append(GroupRow(g, {}, "active on the target: offsets left alone"))
            continue
        offsets = commits.get(g, {})
        if offsets and apply:
            await target.offset_commit(g, offsets)
        resume = {**committed.get(g, {}), **offsets}
        run.report.groups.append(GroupRow(
            g, {f"{t}-{p}": o for (t, p), o in sorted(offsets.items())},
            None if offsets else "target already at or past its checkpoint", _rereads(run.scope, latest[g].values()),
            rereads_at_most=reread_bound(resume, tends, {policy.target_topic(t) for t, _ in latest[g]}),
            checkpoint_ms=max((cp.timestamp_ms for cp in latest[g].values()), default=None)))
