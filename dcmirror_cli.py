"""The `dcmirror` command: one CLI with a subcommand group per component, and `dcmirror up`.

`up` (the local clusters of a config and the mirror daemon in one process) lives here, not
in mirror/, because it is the one place that composes the two: it starts brokers
(cluster.broker) and the daemon (mirror), and mirror/ never imports the broker
(import-linter contract in pyproject.toml), so the mirror stays a client of any cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

import click

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.auth.acl_store import AclFileError
from cluster.broker.data_dir_lock import DataDirInUse
from cluster.broker.tls import TlsSetupError
from cluster.cli import broker_group, cluster_group
from deploy.cli import deploy_group
from deploy.service_cli import service_group
from mirror.cli.main import _load, config_arg
from mirror.cli.main import commands as mirror_commands
from mirror.config.model import MirrorConfig
from mirror.daemon.daemon import Daemon

log = logging.getLogger(__name__)


def _version() -> str:
    """The installed distribution's version (pyproject), or the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dcmirror")
    except PackageNotFoundError:  # run from a source tree without an install
        import tomllib

        with open(Path(__file__).resolve().parent / "pyproject.toml", "rb") as f:
            return tomllib.load(f)["project"]["version"]


@click.group()
@click.version_option(_version(), "--version", prog_name="dcmirror", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True,
              help="More logging: -v shows internals at INFO (group coordinator...), -vv DEBUG.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="DCMIRROR_LOG_FORMAT", help="json: one JSON object per line (ts, level, logger, message).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="DCMIRROR_LOG_FILE", help="Write logs to this file instead of stderr.")
def cli(verbose: int, quiet: bool, log_format: str, log_file: Path | None) -> None:
    """dcmirror: local Kafka-protocol clusters and mirrors between datacenters."""
    from cluster.logsetup import configure

    if verbose and quiet:
        raise click.UsageError("-v and -q contradict each other: use one")
    configure(verbose, quiet, log_format, log_file)


cli.add_command(cluster_group)
cli.add_command(broker_group)


for _command in mirror_commands.commands.values():
    cli.add_command(_command)
cli.add_command(deploy_group)
cli.add_command(service_group)


class UpError(Exception):
    """A local cluster cannot start (its TLS files cannot be loaded...); one sentence."""


def broker_config(alias: str, local) -> BrokerConfig:
    """The BrokerConfig of a config's `local:` cluster block (names follow BrokerConfig)."""
    limits = {} if local.max_partitions is None else {"max_partitions": local.max_partitions}
    return BrokerConfig(
        name=alias, data_dir=local.data_dir, port=local.port, host=local.host,
        advertised_host=local.advertised_host, node_id=local.node_id, fsync=local.fsync,
        fsync_interval_ms=local.fsync_interval_ms, auto_create_topics=local.auto_create_topics,
        default_partitions=local.default_partitions, fetch_max_bytes=local.fetch_max_bytes,
        default_topic_configs=dict(local.default_topic_configs),
        **dict(local.connections), **limits,
        **dict(local.batch_limits),
        listeners=[dataclasses.replace(lst) for lst in local.listeners],
        ssl_certfile=local.ssl_certfile, ssl_keyfile=local.ssl_keyfile, ssl_cafile=local.ssl_cafile,
        ssl_client_auth=local.ssl_client_auth, allow_unauthenticated=local.allow_unauthenticated,
        sasl_mechanisms=local.sasl_mechanisms, sasl_plain_over_plaintext=local.sasl_plain_over_plaintext,
        super_users=tuple(local.super_users),
    )


async def run_up(cfg: MirrorConfig, *, metrics_port: int | None = None, live: bool = False,
                 only: tuple[str, ...] = ()) -> None:
    """Start every local cluster, then run the daemon (with the live view) until stopped.
    With ``only``: just those local clusters and no mirror (what `dcmirror deploy` runs)."""
    brokers = []
    try:
        for alias, c in cfg.clusters.items():
            if c.local is None or (only and alias not in only):
                continue
            b = Broker(broker_config(alias, c.local))
            try:
                await b.start()
            except (TlsSetupError, AclFileError, DataDirInUse) as exc:
                raise UpError(f"cluster {alias}: {exc}") from None
            brokers.append(b)
            log.info("cluster %s ready on %s (data in %s)", alias,
                     ", ".join(lst.describe() for lst in b.config.listeners), c.local.data_dir)
        if only:
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
            return
        host = "127.0.0.1"
        if metrics_port is None and cfg.metrics is not None:  # the YAML's metrics: section, as `mirror` does
            metrics_port, host = cfg.metrics.port, cfg.metrics.host
        daemon = Daemon(cfg, metrics_port=metrics_port, metrics_host=host)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, daemon.stop)
        if live:
            from mirror.cli.live_view import run_live

            await asyncio.gather(daemon.run(), run_live(daemon))
        else:
            await daemon.run()
    finally:
        for b in brokers:
            await b.stop()
        log.info("all stopped")


@click.command("up")
@config_arg
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None)
@click.option("--no-live", is_flag=True, help="Log lines instead of the live status view.")
@click.option("--cluster", "only", multiple=True, metavar="ALIAS",
              help="Only this local cluster (repeatable), and no mirror: one host's broker.")
def up_cmd(config: Path, metrics_port: int | None, no_live: bool, only: tuple[str, ...]) -> None:
    """Start every local cluster of CONFIG and the mirror for every link (Ctrl-C stops all)."""
    cfg = _load(config)
    for alias in only:
        if alias not in cfg.clusters or cfg.clusters[alias].local is None:
            raise click.UsageError(f"--cluster {alias}: {config} has no cluster {alias!r} with a local: block")
    if only and metrics_port is not None:
        raise click.UsageError("--metrics-port is the mirror's; with --cluster no mirror runs")
    live = sys.stdout.isatty() and not no_live and not only
    try:
        asyncio.run(run_up(cfg, metrics_port=metrics_port, live=live, only=only))
    except (OSError, UpError) as exc:
        raise click.ClickException(str(exc))


cli.add_command(up_cmd)  # clusters + mirror in one process: composes both, so neither owns it


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="dcmirror")


if __name__ == "__main__":
    main()
