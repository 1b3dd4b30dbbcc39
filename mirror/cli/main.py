"""`dcmirror mirror | status | check ...`: the mirror's user-facing commands (`up`, which
also runs brokers, is in dcmirror_up.py).

Data goes to stdout, messages to stderr; `--json` output is stable and free of progress
text. A config mistake is one readable sentence naming file, line and key (exit 2);
`status` exits 3 over `--max-lag` and 4 when a cluster is unreachable or a partition is
stopped (conflict, error), so scripts and monitoring can alert on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from mirror.config.model import ConfigError, MirrorConfig, load_config

def _load(path: Path) -> MirrorConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"dcmirror: {exc}", err=True)
        sys.exit(2)
    except FileNotFoundError:
        click.echo(f"dcmirror: config file {path} does not exist", err=True)
        sys.exit(2)


def _known_links(cfg: MirrorConfig, links: tuple[str, ...], config: Path) -> None:
    """An unknown --link is a usage error (exit 2) naming the links the config has."""
    known = [x.name for x in cfg.links]
    for name in links:
        if name not in known:
            raise click.UsageError(f"no link named {name!r} in {config}; its links: {', '.join(known) or 'none'}")


config_arg = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))


@click.command("mirror")
@config_arg
@click.option("--link", "links", multiple=True, help="Only these links (default: all).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /metrics, /healthz, /readyz and /status on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--check", "check_first", is_flag=True,
              help="Run `dcmirror check` first; refuse to start (exit 1) if a permission is missing.")
def mirror_cmd(config: Path, links: tuple[str, ...], metrics_port: int | None, metrics_host: str,
               check_first: bool) -> None:
    """Run the mirror daemon for CONFIG against clusters already running anywhere."""
    from mirror.daemon.daemon import Daemon, run_daemon

    cfg = _load(config)
    _known_links(cfg, links, config)
    if check_first:
        from mirror.cli.check import EXIT_MISSING, run_check

        if not run_check(cfg, list(links) or None, err=True):
            click.echo("dcmirror: not starting: the check above found missing permissions or "
                       "unreachable clusters", err=True)
            sys.exit(EXIT_MISSING)
    if metrics_port is None and cfg.metrics is not None:
        metrics_port, metrics_host = cfg.metrics.port, cfg.metrics.host
    from mirror.replication.mode import ModeError

    try:
        asyncio.run(run_daemon(Daemon(cfg, links=list(links) or None, metrics_port=metrics_port,
                                      metrics_host=metrics_host)))
    except ModeError as exc:  # a link asks for what its target cannot do: one sentence
        click.echo(f"dcmirror: {exc}", err=True)
        sys.exit(1)


@click.command("status")
@config_arg
@click.option("--link", "links", multiple=True, help="Only these links.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--max-lag", type=click.IntRange(0), default=None,
              help="Exit 3 if any partition lags by more than this many records.")
@click.option("--watch", is_flag=True, help="Refresh every 2 s until Ctrl-C.")
def status_cmd(config: Path, links: tuple[str, ...], as_json: bool, max_lag: int | None, watch: bool) -> None:
    """Per link, topic and partition: source end, target end, lag in records and time.
    Exit 0 healthy; 3 when a partition lags by more than --max-lag records; 4 when a cluster
    is unreachable, a link cannot be read or a partition is stopped (conflict, error); 2 for
    usage errors."""
    from mirror.incident.status import collect_status, exit_code, render_table

    cfg = _load(config)
    _known_links(cfg, links, config)

    async def once() -> dict:
        return await collect_status(cfg, list(links) or None)

    if watch and not as_json:
        from rich.console import Console
        from rich.live import Live

        async def loop() -> None:
            with Live(console=Console(), refresh_per_second=2) as live:
                while True:
                    live.update(render_table(await once()))
                    await asyncio.sleep(2)

        try:
            asyncio.run(loop())
        except KeyboardInterrupt:
            return
        return
    report = asyncio.run(once())
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        from rich.console import Console

        Console().print(render_table(report))
    sys.exit(exit_code(report, max_lag))


from mirror.cli.check import check_cmd  # noqa: E402

commands = click.Group(commands=[mirror_cmd, status_cmd, check_cmd])  # `up`: dcmirror_up.py

from mirror.cli.failover import commands as _failover_commands  # noqa: E402  (failover, failback, offsets, link)

for _command in _failover_commands:
    commands.add_command(_command)
