"""The live terminal view of `dcmirror up` (rich), refreshed from the daemon's progress."""

from __future__ import annotations

import asyncio

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mirror.daemon.daemon import Daemon, progress_snapshot


def render(snapshot: dict) -> Group:
    items = []
    for link in snapshot["links"]:
        t = Table(title=f"{link['name']} [{link['mode']}] {link['state']}", title_justify="left")
        for col in ("topic", "partition", "position", "source end", "lag", "lag (s)", "records"):
            t.add_column(col, justify="left" if col == "topic" else "right")
        for p in link["partitions"][:30]:
            t.add_row(p["topic"], str(p["partition"]), str(p["position"]), str(p["source_end"]),
                      str(p["lag"]), f"{p['lag_seconds']:.1f}", str(p["records"]),
                      style="red" if p["lag"] > 0 else None)
        items.append(t)
        for a in link["alarms"][-5:]:
            items.append(Text(f"ALARM {a['kind']}: {a['message']}", style="bold red"))
    items.append(Text("Ctrl-C stops everything", style="dim"))
    return Group(*items)


async def run_live(daemon: Daemon) -> None:
    with Live(console=Console(), refresh_per_second=4) as live:
        while not daemon.stop_event.is_set():
            live.update(render(progress_snapshot(daemon.runners)))
            try:
                await asyncio.wait_for(daemon.stop_event.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
