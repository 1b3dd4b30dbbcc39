"""Running the batch validator without holding the event loop.

Uncompressed batches are checked inline: the C walker does a megabyte in a fraction of a
millisecond. A compressed batch is first tried inline with a small inflation cap
(INLINE_INFLATE, about a millisecond of codec work); only a batch that needs more goes to
a single worker thread, where the codec and the walker run without the GIL. One thread
means one batch inflating at a time, so decompression memory for the whole broker is
bounded by one batch's cap (see `Limits`). Recompression for topics with a
`compression.type` runs on the same thread for the same reasons.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Sequence, TypeVar

from cluster.wire.batch_validator import (
    DEFAULT_LIMITS,
    BatchRefused,
    CheckedBatch,
    Limits,
    Origin,
    validate_batch,
)

log = logging.getLogger(__name__)

INLINE_INFLATE = 1 << 20
T = TypeVar("T")


class BatchChecks:
    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._inline = replace(limits, decompress_ceiling=min(INLINE_INFLATE, limits.decompress_ceiling),
                               decompress_floor=min(INLINE_INFLATE, limits.decompress_floor))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="batch-checks")

    async def validate(self, batches: Sequence[memoryview], origin: Origin) -> list[CheckedBatch]:
        """CheckedBatch per batch, in order; raises BatchRefused for the first bad one."""
        out: list[CheckedBatch | None] = []
        heavy: list[int] = []
        for i, b in enumerate(batches):
            try:
                out.append(validate_batch(b, origin, self._inline, verify_crc=False))
            except BatchRefused as exc:
                if not exc.limit_hit or self.limits.decompress_limit(len(b)) <= self._inline.decompress_limit(len(b)):
                    raise
                out.append(None)
                heavy.append(i)
        if heavy:
            checked = await self.off_loop(
                lambda: [validate_batch(batches[i], origin, self.limits, verify_crc=False) for i in heavy])
            for i, c in zip(heavy, checked):
                out[i] = c
        return out  # type: ignore[return-value]

    async def off_loop(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
