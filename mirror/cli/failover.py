"""`dcmirror failover | failback | offsets translate | link pause|resume|adopt`: the incident commands.

Destructive commands print what they will do (`--dry-run` stops there), save the link's
status snapshot to a file they name, and on a terminal ask for confirmation naming the
scope (`--yes` / `--force` skip it); without a terminal they never wait for input. Reports
are rich tables on stdout, or stable JSON with `--json`; messages go to stderr. Exit 0 on
success (also when there was nothing to do), 1 when the procedure could not proceed.
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
    def confirm(report) -> bool:
        if assume_yes or not sys.stdin.isatty():
            return True
        return click.confirm(question(report), default=False, err=True)

    return confirm


def _utc(ms: int | None) -> str:
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


#: TOPIC_, GROUP_, CLUSTER_AUTHORIZATION_FAILED
_DENIED = (29, 30, 31)


def _run(coro):
    from cluster.client.errors import KafkaError, KafkaProtocolError
    from mirror.incident.failover import FailoverError
    from mirror.replication.mode import ModeError

    try:
        return asyncio.run(coro)
    except (FailoverError, ModeError) as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:  # a broker's refusal, one sentence (the state is safe to resume)
        hint = ""
        if isinstance(exc, KafkaProtocolError) and exc.error_code in _DENIED:
            hint = ("; the principal of the cluster's client: block may not do this (failover and failback need "
                    "more than the link itself, see README 'What a link needs'): grant it and run the same "
                    "command again, every step is safe to repeat")
        raise click.ClickException(f"{exc}{hint}") from None


def render_failover(report) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    err = Console(stderr=True)
    live = report.kind == "planned"
    title = (f"failover {report.link}: {report.source} -> {report.target} ({report.kind}, {report.mode})"
             + (" DRY RUN" if report.dry_run else ""))
    t = Table(title=title, title_justify="left")
    for col in ("topic", "partition", "source end" + (" (live)" if live else " (last contact)"),
                "mirrored", "target end", "expected loss" if report.dry_run else "loss"):
        t.add_column(col, justify="left" if col == "topic" else "right")
    for r in report.partitions:
        t.add_row(r.topic, str(r.partition), "?" if r.source_end is None else str(r.source_end),
                  str(r.mirrored), str(r.target_end), "?" if r.loss is None else str(r.loss),
                  style="red" if r.loss else None)
    out.print(t)
    total = report.total_loss
    where = (f"source ends read live from {report.source}" if live and not report.already
             else f"last contact with {report.source}: {_utc(report.last_contact_ms)}")
    out.print(f"recovery point: {'unknown' if total is None else total} record(s) not mirrored ({where})")
    if report.groups:
        g = Table(title="consumer groups on " + report.target, title_justify="left")
        for col in ("group", "offsets committed", "note", "may re-read"):
            g.add_column(col)
        for row in report.groups:
            offs = ", ".join(f"{k}@{v}" for k, v in row.offsets.items()) or "-"
            g.add_row(row.group, offs, row.skipped or "", str(row.max_duplicates))
        out.print(g)
    if report.promoted:
        out.print(f"promoted on {report.target}: {len(report.promoted)} topic(s)")
    if report.fenced:
        out.print(f"fenced on {report.source}: {len(report.fenced)} topic(s)")
    for note in report.notes:
        err.print(note)
    if report.snapshot:
        err.print(f"status snapshot saved to {report.snapshot}")
    out.print(f"link state: {report.state} ({report.elapsed_s:.2f}s)")


@click.command("failover")
@config_arg
@link_opt
@click.option("--force", is_flag=True, help="Unplanned: the source may be gone; promote now and report the loss.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the expected loss; change nothing.")
@json_opt
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@snap_opt
def failover_cmd(config: Path, link_name: str, force: bool, dry_run: bool, as_json: bool, yes: bool,
                 snapshot_dir: Path | None) -> None:
    """Make LINK's target cluster the primary for the link's topics."""
    from mirror.incident.failover import run_failover

    cfg = _load(config)
    link = _link(cfg, link_name, config)

    def question(r) -> str:
        return (f"Fail over link {link.name}: promote {len(r.promoted or {x.target_topic for x in r.partitions})} "
                f"topic(s) on {link.target}, stop mirroring from {link.source}"
                + (f", losing {r.total_loss} record(s)" if r.total_loss else "") + "?")

    report = _run(run_failover(cfg, link, force=force, dry_run=dry_run,
                               snapshot_dir=snapshot_dir or config.resolve().parent / "dcmirror-snapshots",
                               confirm=_confirmer(question, yes or force)))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        render_failover(report)


def render_failback(report) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    err = Console(stderr=True)
    t = Table(title=f"failback {report.link}: {report.target} -> {report.source}"
                    + (" (stay)" if report.stay else ""), title_justify="left")
    for col in ("topic", "partition", "promoted at", "old end", "divergence", "diverged", "new end"):
        t.add_column(col, justify="left" if col == "topic" else "right")
    for p in report.partitions:
        t.add_row(p.topic, str(p.partition), "?" if p.promoted_at is None else str(p.promoted_at), str(p.old_end),
                  str(p.divergence), str(p.diverged), str(p.new_end), style="yellow" if p.diverged else None)
    out.print(t)
    out.print(f"diverged records kept: {report.total_diverged}")
    for topic, name in sorted(report.diverged_topics.items()):
        out.print(f"  {topic} -> {name}")
    for group, offs in sorted(report.groups.items()):
        out.print(f"group {group} on {report.source}: " + ", ".join(f"{k}@{v}" for k, v in offs.items()))
    for note in report.notes:
        err.print(note)
    if report.snapshot:
        err.print(f"status snapshot saved to {report.snapshot}")
    out.print(f"link state: {report.state} ({report.elapsed_s:.2f}s)")


@click.command("failback")
@config_arg
@link_opt
@json_opt
@click.option("--stay", is_flag=True, help="Keep the new primary; the old source becomes its mirror.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@snap_opt
def failback_cmd(config: Path, link_name: str, as_json: bool, stay: bool, yes: bool,
                 snapshot_dir: Path | None) -> None:
    """After a failover of LINK: reconcile the old source with the new primary and switch back."""
    from mirror.incident.failback import run_failback

    cfg = _load(config)
    link = _link(cfg, link_name, config)

    def question(r) -> str:
        return (f"Fail back link {link.name}: keep {r.total_diverged} diverged record(s) of {link.source} in "
                f"{len(r.diverged_topics)} __dcmirror.diverged.* topic(s), truncate {link.source} and copy "
                f"{link.target} onto it" + ("" if stay else f", then make {link.source} primary again") + "?")

    report = _run(run_failback(cfg, link, stay=stay,
                               snapshot_dir=snapshot_dir or config.resolve().parent / "dcmirror-snapshots",
                               confirm=_confirmer(question, yes)))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        render_failback(report)


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


commands = [failover_cmd, failback_cmd, offsets_group, link_group]
