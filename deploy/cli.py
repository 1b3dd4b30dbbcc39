"""`dcmirror deploy INVENTORY | deploy rollback INVENTORY | deploy status INVENTORY`.

``dcmirror deploy INVENTORY`` is short for ``dcmirror deploy apply INVENTORY`` (a click
group cannot take an argument and subcommands both, so the group inserts ``apply`` when
the first word is not a subcommand). The plan goes to stdout (``--json``: one JSON
document, nothing else), progress to stderr; every failure is one sentence, exit 1, and an
inventory mistake is ``file:line:column`` and exit 2, as for the mirror config.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror.config.yaml_loader import ConfigError

if TYPE_CHECKING:
    from deploy.inventory import Inventory
    from deploy.plan import HostPlan

# asyncssh (under deploy.ssh) is imported by the commands, not here: every `dcmirror ...`
# command loads this module, and asyncssh costs import time (and warns about DSA on import).


class _DefaultApply(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["apply", *args]
        return super().parse_args(ctx, args)


@click.group("deploy", cls=_DefaultApply)
def deploy_group() -> None:
    """Put clusters and mirrors onto hosts over SSH: `dcmirror deploy INVENTORY` (plan, then roll)."""


inventory_arg = click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))


def _load(path: Path) -> Inventory:
    from deploy.inventory import load_inventory

    try:
        return load_inventory(path)
    except ConfigError as exc:
        click.echo(f"dcmirror: {exc}", err=True)
        sys.exit(2)


def _run(coro):
    from deploy.ssh import DeployError

    try:
        return asyncio.run(coro)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None


def _emitter(as_json: bool):
    from deploy.plan import render

    def emit(plans: list[HostPlan]) -> None:
        if as_json:
            click.echo(json.dumps({"hosts": [p.to_json() for p in plans]}, indent=2))
        else:
            click.echo(render(plans))

    return emit


def _echo(as_json: bool):
    return lambda line: click.echo(line, err=True)


@deploy_group.command("apply")
@inventory_arg
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
@click.option("--source", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="The dcmirror source tree to ship [default: the one this dcmirror runs from].")
@click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A directory of dependency wheels [default: built with pip wheel and cached].")
def apply_cmd(inventory: Path, dry_run: bool, as_json: bool, source: Path | None, wheelhouse: Path | None) -> None:
    """Plan, then install the release and roll host by host, each broker gated on health."""
    from deploy.release import default_source, prepare
    from deploy.runner import deploy

    inv = _load(inventory)

    async def go() -> list[HostPlan]:
        release = await asyncio.to_thread(prepare, source or default_source(), wheelhouse)
        return await deploy(inv, release, dry_run=dry_run, echo=_echo(as_json), emit_plan=_emitter(as_json))

    plans = _run(go())
    if not dry_run:
        click.echo("deploy: nothing to change" if not any(p.changes for p in plans) else "deploy: done", err=True)


@deploy_group.command("rollback")
@inventory_arg
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
def rollback_cmd(inventory: Path, dry_run: bool, as_json: bool) -> None:
    """Every host back to the release that was current before, rolling as a deploy does."""
    from deploy.runner import rollback

    inv = _load(inventory)
    _run(rollback(inv, dry_run=dry_run, echo=_echo(as_json), emit_plan=_emitter(as_json)))
    if not dry_run:
        click.echo("rollback: done", err=True)


@deploy_group.command("status")
@inventory_arg
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(inventory: Path, as_json: bool) -> None:
    """Each host's release, services and broker health."""
    from deploy.runner import render_status, status

    inv = _load(inventory)
    rows = _run(status(inv))
    click.echo(json.dumps({"hosts": rows}, indent=2) if as_json else render_status(rows))


commands = deploy_group
