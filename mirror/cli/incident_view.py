"""How the incident commands show themselves: steps as they run, reports, plans, history.

Steps go to stderr as they start and end (a spinner while one runs on a terminal), so a
failover that waits — for a foreign source to go quiet, for a drain — says what it waits
for *before* it waits; reports are rich tables on stdout. The numbers are printed as the
bounds they are: an unplanned failover's loss is "at least N" (records acknowledged after
the last contact cannot be counted), a group's re-reads are "known" and "at most".
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table

from mirror.incident.steps import Step


def utc(ms: int | None) -> str:
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


class StepPrinter:
    """A Progress (mirror.incident.steps) printing each step to stderr as it runs."""

    def __init__(self) -> None:
        self.err = Console(stderr=True, highlight=False)
        self._status: Status | None = None

    def started(self, index: int, total: int, step: Step) -> None:
        self.err.print(f"[{index}/{total}] {step.name}: {step.what} (timeout {step.timeout_s:.0f}s)", markup=False)
        if self.err.is_terminal:
            self._status = self.err.status(f"{step.name}...")
            self._status.start()

    def finished(self, step: Step, seconds: float) -> None:
        self._stop()
        self.err.print(f"      done in {seconds:.2f}s", markup=False)

    def note(self, text: str) -> None:
        self.err.print(text, markup=False)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        """Stop a spinner left by a step that failed."""
        self._stop()


def render_plan(out: Console, plan: list[dict[str, Any]], done: bool) -> None:
    t = Table(title="steps" + (" (run)" if done else " it would run"), title_justify="left")
    for col in ("#", "step", "what", "timeout"):
        t.add_column(col)
    for i, s in enumerate(plan, 1):
        t.add_row(str(i), s["step"], s["what"], f"{s['timeout_s']:.0f}s")
    out.print(t)


def _loss_line(report) -> str:
    total = report.total_loss
    if report.kind == "planned" and not report.already:
        if report.dry_run:
            lag = sum(r.loss or 0 for r in report.partitions)
            return (f"expected loss: 0 ({lag} lagging record(s) are copied after the fence, before promotion)"
                    if report.fenceable
                    else f"expected loss: 0 if {report.source}'s producers are stopped first "
                         f"({lag} lagging record(s) are copied before promotion)")
        return f"recovery point: {total} record(s) not mirrored (exact: ends read live from {report.source})"
    if total is None:
        return "recovery point: unknown (no last contact with the source was recorded)"
    return (f"recovery point: at least {total} record(s) not mirrored (known at the last contact with "
            f"{report.source}, {utc(report.last_contact_ms)}); records it acknowledged after that "
            "cannot be counted")


def render_failover(report) -> None:
    out = Console()
    err = Console(stderr=True)
    live = report.kind == "planned"
    title = (f"failover {report.link}: {report.source} -> {report.target} ({report.kind}, {report.mode})"
             + (" DRY RUN" if report.dry_run else ""))
    t = Table(title=title, title_justify="left")
    last = "to drain" if live and report.dry_run else ("expected loss" if report.dry_run else "loss")
    if not live:
        last = ("expected loss" if report.dry_run else "loss") + " (at least)"
    for col in ("topic", "partition", "source end" + (" (live)" if live else " (last contact)"),
                "mirrored", "target end", last):
        t.add_column(col, justify="left" if col == "topic" else "right")
    for r in report.partitions:
        t.add_row(r.topic, str(r.partition), "?" if r.source_end is None else str(r.source_end),
                  str(r.mirrored), str(r.target_end), "?" if r.loss is None else str(r.loss),
                  style="red" if r.loss and not (live and report.dry_run) else None)
    out.print(t)
    out.print(_loss_line(report))
    if report.groups:
        out.print(_groups_table(report))
    if report.plan:
        render_plan(out, report.plan, done=not report.dry_run)
    if report.promoted:
        out.print(f"promoted on {report.target}: {len(report.promoted)} topic(s)")
    if report.fenced:
        out.print(f"fenced on {report.source}: {len(report.fenced)} topic(s)")
    for note in report.notes:
        err.print(note, markup=False)
    if report.snapshot:
        err.print(f"status snapshot saved to {report.snapshot}", markup=False)
    out.print(f"link state: {report.state} ({report.elapsed_s:.2f}s)")


def _groups_table(report) -> Table:
    g = Table(title="consumer groups on " + report.target, title_justify="left")
    for col in ("group", "offsets committed", "checkpoint", "note", "may re-read (known)", "at most (per partition)"):
        g.add_column(col)
    for row in report.groups:
        offs = ", ".join(f"{k}@{v}" for k, v in row.offsets.items()) or "-"
        most = ", ".join(f"{k}: {v}" for k, v in row.rereads_at_most.items() if v) or "0"
        g.add_row(row.group, offs, "read live" if report.kind == "planned" else utc(row.checkpoint_ms),
                  row.skipped or "", str(row.max_duplicates),
                  most if report.kind != "planned" else str(row.max_duplicates))
    return g


def render_failback(report) -> None:
    out = Console()
    err = Console(stderr=True)
    t = Table(title=f"failback {report.link}: {report.target} -> {report.source}"
                    + (" (stay)" if report.stay else "") + (" DRY RUN" if report.dry_run else ""),
              title_justify="left")
    for col in ("topic", "partition", "promoted at", "old end", "divergence", "diverged", "new end"):
        t.add_column(col, justify="left" if col == "topic" else "right")
    for p in report.partitions:
        t.add_row(p.topic, str(p.partition), "?" if p.promoted_at is None else str(p.promoted_at), str(p.old_end),
                  str(p.divergence), str(p.diverged), str(p.new_end), style="yellow" if p.diverged else None)
    out.print(t)
    out.print(f"diverged records {'to keep' if report.dry_run else 'kept'}: {report.total_diverged}")
    for topic, name in sorted(report.diverged_topics.items()):
        out.print(f"  {topic} -> {name}")
    for group, offs in sorted(report.groups.items()):
        out.print(f"group {group} on {report.source}{' (would commit)' if report.dry_run else ''}: "
                  + ", ".join(f"{k}@{v}" for k, v in offs.items()))
    if report.plan:
        render_plan(out, report.plan, done=not report.dry_run)
    for note in report.notes:
        err.print(note, markup=False)
    if report.snapshot:
        err.print(f"status snapshot saved to {report.snapshot}", markup=False)
    out.print(f"link state: {report.state} ({report.elapsed_s:.2f}s)")


def render_history(rows: list[dict[str, Any]]) -> None:
    t = Table(title="link history (newest last)", title_justify="left")
    for col in ("time", "link", "state", "by", "reason", "detail"):
        t.add_column(col)
    for r in rows:
        t.add_row(utc(r["since_ms"]), r["link"], r["state"], r["by"], r["reason"], r["detail"])
    Console().print(t)
