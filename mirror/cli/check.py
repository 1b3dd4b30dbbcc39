"""`dcmirror check CONFIG`: the permission check as a command (and `mirror --check`'s gate).

A table per link and end on stdout (or `--json`); exit 1 when anything is missing or an
end cannot be reached, so a deployment pipeline can stop before the daemon starts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

EXIT_MISSING = 1


def run_check(cfg, links: list[str] | None, *, as_json: bool = False, err: bool = False) -> bool:
    """Check, print the report (to stderr when ``err``), return whether everything is granted."""
    from rich.console import Console

    from mirror.preflight.check import check_config, render_check

    report = asyncio.run(check_config(cfg, links))
    if as_json:
        click.echo(json.dumps(report, indent=1), err=err)
    else:
        console = Console(stderr=err)
        for item in render_check(report):
            if isinstance(item, str):
                click.echo(item, err=err)
            else:
                console.print(item)
    return bool(report["ok"])


@click.command("check")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--link", "links", multiple=True, help="Only these links (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_cmd(config: Path, links: tuple[str, ...], as_json: bool) -> None:
    """Verify, on both ends of each link, every permission the link needs (exit 1 if any is missing)."""
    from mirror.cli.main import _load

    cfg = _load(config)
    unknown = [l for l in links if l not in {x.name for x in cfg.links}]
    if unknown:
        raise click.UsageError(f"no link named {unknown[0]!r} in {config}")
    if not run_check(cfg, list(links) or None, as_json=as_json):
        sys.exit(EXIT_MISSING)
