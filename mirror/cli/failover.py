"""`dcmirror failover | failback | offsets translate | link pause|resume|adopt`: the incident commands.

Destructive commands (failover, failback) print what they will do (`--dry-run` stops
there: steps, groups, expected loss), save the link's status snapshot to a file they name,
and on a terminal ask for confirmation naming the scope (only `--yes` skips it; `--force`
means "the source is gone", never "do not ask"). Without a terminal and without `--yes`
they change nothing and exit 2 naming the flag. Each step is printed to stderr as it runs,
with its timeout. Reports are rich tables on stdout (incident_view), or stable JSON with
`--json`. Exit 0 on success (also when there was nothing to do), 1 when the procedure could
not proceed, 2 for usage errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

config_arg = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))


def _load(path: Path):
    from mirror.cli.main import _load as load  # mirror.cli.main imports this module at its end

    return load(path)

link_opt = click.option("--link", "link_name", required=True, help="The link (by name) to act on.")
json_opt = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
snap_opt = click.option("--snapshot-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Where to save the status snapshot (default: dcmirror-snapshots/ next to CONFIG).")


def _link(cfg, name: str, config: Path):
    try:
        return cfg.link(name)
    except KeyError:
        raise click.UsageError(f"no link named {name!r} in {config}") from None


def _confirmer(question, assume_yes: bool):
    """Ask on the terminal naming the scope, unless --yes (`--force` is no answer: it says
    the source is gone). Without a terminal the command was refused before (exit 2)."""
    def confirm(report) -> bool:
        if assume_yes:
            return True
        return click.confirm(question(report), default=False, err=True)

    return confirm


def refuse_without_terminal(command: str, yes: bool, dry_run: bool) -> None:
    """A destructive command without a terminal to confirm on and without --yes (a cron
    job, a CI step) changes nothing and exits 2 naming the flag to add."""
    if yes or dry_run or sys.stdin.isatty():
        return
    click.echo(f"dcmirror: {command} changes the clusters and no terminal is attached to confirm it: "
               "add --yes to proceed (or --dry-run to see the plan)", err=True)
    sys.exit(2)


#: TOPIC_, GROUP_, CLUSTER_AUTHORIZATION_FAILED
_DENIED = (29, 30, 31)


def _run(coro):
    from cluster.client.errors import KafkaError, KafkaProtocolError
    from mirror.incident.failover import FailoverError
    from mirror.incident.steps import StepTimeout
    from mirror.replication.mode import ModeError

    try:
        return asyncio.run(coro)
    except (FailoverError, ModeError, StepTimeout) as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:  # a broker's refusal, one sentence (the state is safe to resume)
        hint = ""
        if isinstance(exc, KafkaProtocolError) and exc.error_code in _DENIED:
            hint = ("; the principal of the cluster's client: block may not do this (failover and failback need "
                    "more than the link itself, see README 'What a link needs'): grant it and run the same "
                    "command again, every step is safe to repeat")
        raise click.ClickException(f"{exc}{hint}") from None


def _run_steps(coro_of):
    """Run a procedure with its steps printed to stderr as they go."""
    from mirror.cli.incident_view import StepPrinter

    printer = StepPrinter()
    try:
        return _run(coro_of(printer))
    finally:
        printer.close()


def _snapshots(config: Path, snapshot_dir: Path | None) -> Path:
    return snapshot_dir or config.resolve().parent / "dcmirror-snapshots"


@click.command("failover")
@config_arg
@link_opt
@click.option("--force", is_flag=True,
              help="Unplanned: the source may be gone; promote now and report the loss. Still asks (or needs --yes).")
@click.option("--dry-run", is_flag=True, help="Print the steps, the groups and the expected loss; change nothing.")
@json_opt
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@snap_opt
def failover_cmd(config: Path, link_name: str, force: bool, dry_run: bool, as_json: bool, yes: bool,
                 snapshot_dir: Path | None) -> None:
    """Make LINK's target cluster the primary for the link's topics."""
    from mirror.cli.incident_view import render_failover
    from mirror.incident.failover import run_failover

    cfg = _load(config)
    link = _link(cfg, link_name, config)
    refuse_without_terminal("failover", yes, dry_run)

    def question(r) -> str:
        loss = f", losing at least {r.total_loss} record(s)" if force and r.total_loss else ""
        return (f"Fail over link {link.name}{' (--force: the source is treated as gone)' if force else ''}: "
                f"promote {len({x.target_topic for x in r.partitions})} topic(s) on {link.target}, stop "
                f"mirroring from {link.source}{loss}?")

    report = _run_steps(lambda progress: run_failover(
        cfg, link, force=force, dry_run=dry_run, snapshot_dir=_snapshots(config, snapshot_dir),
        confirm=_confirmer(question, yes), progress=progress))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        render_failover(report)


@click.command("failback")
@config_arg
@link_opt
@json_opt
@click.option("--stay", is_flag=True, help="Keep the new primary; the old source becomes its mirror.")
@click.option("--dry-run", is_flag=True, help="Print the steps, the divergence and the groups; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@snap_opt
def failback_cmd(config: Path, link_name: str, as_json: bool, stay: bool, dry_run: bool, yes: bool,
                 snapshot_dir: Path | None) -> None:
    """After a failover of LINK: reconcile the old source with the new primary and switch back."""
    from mirror.cli.incident_view import render_failback
    from mirror.incident.failback import run_failback

    cfg = _load(config)
    link = _link(cfg, link_name, config)
    refuse_without_terminal("failback", yes, dry_run)

    def question(r) -> str:
        return (f"Fail back link {link.name}: keep {r.total_diverged} diverged record(s) of {link.source} in "
                f"{len(r.diverged_topics)} __dcmirror.diverged.* topic(s), truncate {link.source} and copy "
                f"{link.target} onto it" + ("" if stay else f", then make {link.source} primary again") + "?")

    report = _run_steps(lambda progress: run_failback(
        cfg, link, stay=stay, dry_run=dry_run, snapshot_dir=_snapshots(config, snapshot_dir),
        confirm=_confirmer(question, yes), progress=progress))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        render_failback(report)


def _history_detail(state) -> str:
    d = state.details or {}
    if state.state == "failed-over" and "total_loss" in d:
        bound = d.get("loss_bound") or ("exact" if state.reason == "planned" else "at least")
        return f"loss {bound} {d['total_loss']}" if d["total_loss"] is not None else "loss unknown"
    if d.get("diverged_topics") and state.state in ("normal", "reversed"):
        return "diverged kept in " + ", ".join(sorted(d["diverged_topics"].values()))
    return ", ".join(d.get("topics", [])[:5]) + (" ..." if len(d.get("topics", [])) > 5 else "")


@click.command("history")
@config_arg
@click.option("--link", "links", multiple=True, help="Only these links (default: all).")
@json_opt
def history_cmd(config: Path, links: tuple[str, ...], as_json: bool) -> None:
    """Past failovers, failbacks, pauses and resumes of each link, from its link-state topic."""
    from mirror.cli.incident_view import render_history
    from mirror.incident import failover_ops as ops
    from mirror.records import link_state as ls

    cfg = _load(config)
    chosen = [_link(cfg, name, config) for name in links] if links else list(cfg.links)

    async def read() -> list[dict]:
        rows = []
        for link in chosen:
            target = ops.client_for(cfg, link.target)
            try:
                await target.start()
                states = await ls.read_history(target, link.name)
            finally:
                await target.close()
            rows += [{"link": link.name, "state": s.state.value, "since_ms": s.since_ms, "by": s.by,
                      "reason": s.reason, "detail": _history_detail(s), "details": s.details} for s in states]
        return sorted(rows, key=lambda r: r["since_ms"])

    rows = _run(read())
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
    else:
        render_history(rows)


@click.group("offsets")
def offsets_group() -> None:
    """Consumer-group offsets across a link."""


@offsets_group.command("translate")
@config_arg
@link_opt
@click.option("--group", required=True, help="Consumer group id.")
@json_opt
def translate_cmd(config: Path, link_name: str, group: str, as_json: bool) -> None:
    """GROUP's committed offsets on LINK's source, as offsets on its target."""
    from mirror.incident.translate import translate_group

    cfg = _load(config)
    link = _link(cfg, link_name, config)
    result = _run(translate_group(cfg, link, group))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"group {group}: {link.source} -> {link.target} ({result.mode}, from {result.from_})",
              title_justify="left")
    for col in ("topic", "partition", "source offset", "target topic", "target offset", "may re-read"):
        t.add_column(col)
    for r in result.rows:
        t.add_row(r.topic, str(r.partition), str(r.source_offset), r.target_topic,
                  "-" if r.target_offset is None else str(r.target_offset), str(r.may_reread))
    Console().print(t)


@click.group("link")
def link_group() -> None:
    """Pause or resume a link's copying, or adopt a conflicting target topic."""


def _set_simple_state(config: Path, link_name: str, command: str) -> None:
    """`link pause` / `link resume`: one step of the link state machine."""
    from mirror.incident import failover_ops as ops
    from mirror.records import link_machine as machine
    from mirror.records import link_state as ls

    cfg = _load(config)
    link = _link(cfg, link_name, config)

    async def run() -> str:
        target = ops.client_for(cfg, link.target)
        await target.start()
        try:
            current = (await ls.read_state(target, link.name)).state
            cmd = machine.Command(command)
            if machine.is_done(current.state, cmd):
                return f"link {link.name} is already {current.state}"
            try:
                state = machine.transition(link.name, current.state, cmd)
            except machine.TransitionError as exc:
                raise click.ClickException(str(exc)) from None
            await ls.write_state(target, link.name, ls.LinkState(state, int(time.time() * 1000),
                                                                 by=f"dcmirror link {command}"))
            return f"link {link.name} is now {state}"
        finally:
            await target.close()

    click.echo(asyncio.run(run()), err=True)


@link_group.command("pause")
@config_arg
@link_opt
def pause_cmd(config: Path, link_name: str) -> None:
    """Stop copying LINK (the daemon keeps recording last contact with the source)."""
    _set_simple_state(config, link_name, "pause")


@link_group.command("resume")
@config_arg
@link_opt
def resume_cmd(config: Path, link_name: str) -> None:
    """Resume copying a paused LINK."""
    _set_simple_state(config, link_name, "resume")


@link_group.command("adopt")
@config_arg
@link_opt
@click.option("--topic", required=True, help="The conflicting target topic (or its source topic).")
@click.option("--truncate", is_flag=True,
              help="Keep the topic's records in a __dcmirror.kept.<topic>.<time> topic, then empty it.")
@json_opt
def adopt_cmd(config: Path, link_name: str, topic: str, truncate: bool, as_json: bool) -> None:
    """Resolve a `conflict`: make an existing target TOPIC the link's mirror of its source."""
    from mirror.incident.adopt import run_adopt

    cfg = _load(config)
    link = _link(cfg, link_name, config)
    report = _run(run_adopt(cfg, link, topic, truncate=truncate))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    elif report.already:
        click.echo(f"{report.topic}: nothing to do ({'; '.join(report.notes)})", err=True)
    else:
        kept = (f"; its {report.kept_records} record(s) are kept in {report.kept_topic}"
                if report.kept_topic else "")
        click.echo(f"{report.topic} is now mirrored by link {report.link}{kept}", err=True)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)


commands = [failover_cmd, failback_cmd, history_cmd, offsets_group, link_group]
