"""A periodic task for the coordinators' timers: call `fn` every `interval_s`, log (never
propagate) its failures, stop cleanly. Shared so every coordinator ticks the same way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable


def start_ticker(fn: Callable[[], None], interval_s: float, name: str,
                 log: logging.Logger) -> asyncio.Task[None]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                fn()
            except Exception:
                log.exception("%s tick failed", name)

    return asyncio.create_task(loop(), name=name)


async def stop_ticker(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
