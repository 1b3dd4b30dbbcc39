"""Named steps of an incident procedure (failover, failback): one list drives the run, the
live output and `--dry-run`.

A procedure is a list of :class:`Step`: a short name, one line saying what it does (what
`--dry-run` prints and what the live output shows while it runs) and a timeout. The steps
share one context object that each step reads and fills. :func:`run_steps` runs them in
order, tells a :class:`Progress` when each starts and ends, and turns a step that outlives
its timeout into one sentence naming the step (every step is idempotent, so the answer is
always "run the same command again"). No I/O here beyond awaiting the steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Step:
    """One step of a procedure: ``run(ctx)`` does it within ``timeout_s`` seconds."""

    name: str
    what: str
    timeout_s: float
    run: Callable[[Any], Awaitable[None]]


class StepTimeout(Exception):
    """A step did not finish within its timeout; the message names it and says what to do."""


class Progress(Protocol):
    """Who is told about a procedure's steps as they run (the CLI prints them to stderr)."""

    def started(self, index: int, total: int, step: Step) -> None: ...

    def finished(self, step: Step, seconds: float) -> None: ...

    def note(self, text: str) -> None: ...


class NullProgress:
    """Progress that tells nobody (library callers and tests)."""

    def started(self, index: int, total: int, step: Step) -> None:
        pass

    def finished(self, step: Step, seconds: float) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def describe(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """The steps as `--dry-run` and `--json` show them."""
    return [{"step": s.name, "what": s.what, "timeout_s": s.timeout_s} for s in steps]


async def run_steps(steps: Sequence[Step], ctx: Any, progress: Progress, timings: dict[str, float],
                    command: str) -> None:
    """Run ``steps`` in order over ``ctx``; each one's seconds go into ``timings``."""
    for i, step in enumerate(steps, 1):
        progress.started(i, len(steps), step)
        t = time.monotonic()
        try:
            async with asyncio.timeout(step.timeout_s) as deadline:
                await step.run(ctx)
        except TimeoutError:
            if not deadline.expired():
                raise  # a request's own timeout inside the step: the caller reports it
            raise StepTimeout(f"step {i}/{len(steps)} '{step.name}' ({step.what}) did not finish within "
                              f"{step.timeout_s:.0f}s; every step is safe to repeat: run `{command}` "
                              "again") from None
        seconds = round(time.monotonic() - t, 3)
        timings[step.name] = seconds
        progress.finished(step, seconds)
