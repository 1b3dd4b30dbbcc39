"""`dcmirror service unit --config CONFIG`: the systemd unit that runs dcmirror as a service.

The unit is the one `dcmirror deploy` installs (deploy.services.unit_text writes both), so a
host set up by hand runs exactly what a deployed host runs: the mirror daemon for the
config's links (or some of them), or with `--cluster` one `local:` cluster's broker.
Printed on stdout, to redirect into /etc/systemd/system/dcmirror-<name>.service.
"""

from __future__ import annotations

import getpass
import shutil
import sys
from pathlib import Path

import click

from deploy.services import ServiceSpec, broker_command, mirror_command, unit_text


@click.group("service")
def service_group() -> None:
    """Run dcmirror as a system service."""


def _executable() -> str:
    """The dcmirror next to this interpreter (a venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "dcmirror"
    if beside.exists():
        return str(beside)
    return shutil.which("dcmirror") or "dcmirror"


@service_group.command("unit")
@click.option("--config", "config", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="The dcmirror config the service runs.")
@click.option("--link", "links", multiple=True, help="Only these links (default: all of the config's).")
@click.option("--cluster", default=None, help="A broker unit for this `local:` cluster instead of the mirror.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="The mirror's /metrics port (default: the config's metrics: section).")
@click.option("--user", default=None, help="The user it runs as (default: you).")
@click.option("--exe", default=None, help="Path of the dcmirror executable (default: the one running now).")
def unit_cmd(config: Path, links: tuple[str, ...], cluster: str | None, metrics_port: int | None,
             user: str | None, exe: str | None) -> None:
    """Print the systemd unit that runs the mirror of CONFIG (or, with --cluster, a broker)."""
    from mirror.cli.main import _known_links, _load

    cfg = _load(config)  # a config mistake: file:line:col, exit 2, before any unit is printed
    path = str(config.resolve())
    exe = exe or _executable()
    if cluster is not None:
        if links or metrics_port is not None:
            raise click.UsageError("--cluster prints a broker unit: --link and --metrics-port are the mirror's")
        if cluster not in cfg.clusters or cfg.clusters[cluster].local is None:
            raise click.UsageError(f"--cluster {cluster}: {config} has no cluster {cluster!r} with a local: block")
        spec = ServiceSpec(f"broker-{cluster}", "broker", broker_command(exe, path, cluster), "manual",
                           cluster=cluster)
    else:
        _known_links(cfg, links, config)
        spec = ServiceSpec("mirror", "mirror", mirror_command(exe, path, links, metrics_port), "manual",
                           metrics_port=metrics_port)
    click.echo(unit_text(spec, working_dir=str(config.resolve().parent), user=user or getpass.getuser(),
                         written_by=f"`dcmirror service unit`; install as /etc/systemd/system/dcmirror-{spec.name}.service"),
               nl=False)
