"""Waiting for a stop event, a wake-up event or a timeout, whichever comes first: the one
wait every loop of the client and the mirror (group member, copier, link runner) sleeps in,
so a stop is never held up by a sleep."""

from __future__ import annotations

import asyncio


async def until(stop: asyncio.Event, other: asyncio.Event | None, timeout: float | None = None) -> bool:
    """Wait for `stop`, `other` or the timeout; True unless `stop` is set."""
    waits = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waits.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return not stop.is_set()
