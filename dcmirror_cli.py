"""The `dcmirror` command: one CLI with a subcommand group per component."""

from __future__ import annotations

import logging
import os
import sys

import click

from cluster.cli import cluster_group


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info is default, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """dcmirror: local Kafka-protocol clusters and mirrors between datacenters."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(cluster_group)


def _add_optional(module: str, attr: str) -> None:
    """Attach subcommands whose modules exist (components land one issue at a time)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module.split(".")[0]):
            return
        raise
    obj = getattr(mod, attr, None)
    if isinstance(obj, click.Command):
        if isinstance(obj, click.Group) and attr == "commands":
            for c in obj.commands.values():
                cli.add_command(c)
        else:
            cli.add_command(obj)


_add_optional("mirror.cli", "commands")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="dcmirror")


if __name__ == "__main__":
    main()
