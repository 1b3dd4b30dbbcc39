"""Heavy batches are decoded off the event loop: a pass driven by Cleaner.astep hands every
big batch's offset-map and filter work to `off_loop` and ends with the same log as the
inline pass."""

from __future__ import annotations

import asyncio
import shutil
import threading

from cluster.log import PartitionLog
from cluster.log.cleaner import HEAVY_RECORDS, Cleaner

from .test_compaction_helpers import append, ccfg, records


def _heavy_log(path) -> PartitionLog:
    log = PartitionLog.open(path, ccfg())
    for round_ in range(6):
        # one heavy batch per round (keys repeat across rounds, so most records go) ...
        append(log, [(f"k{i}", f"r{round_}-{i}") for i in range(HEAVY_RECORDS + 100)], ts=1_000 + round_)
        # ... and small ones
        for j in range(5):
            append(log, [(f"s{j}", f"r{round_}")], ts=1_000 + round_)
    return log


def test_astep_offloads_heavy_batches_and_matches_the_inline_pass(tmp_path) -> None:
    inline = _heavy_log(tmp_path / "inline")
    shutil.copytree(tmp_path / "inline", tmp_path / "offloaded")
    offloaded = PartitionLog.open(tmp_path / "offloaded", ccfg())
    assert Cleaner(inline, check_interval_ms=0).step(10_000, segments=10_000) is not None
    threads: list[str] = []

    async def off_loop(fn):
        def run():
            threads.append(threading.current_thread().name)
            return fn()
        return await asyncio.to_thread(run)

    async def drive() -> None:
        c = Cleaner(offloaded, check_interval_ms=0)
        assert await c.astep(10_000, off_loop, segments=10_000) is not None

    asyncio.run(drive())
    assert threads and all(t != threading.main_thread().name for t in threads)
    assert records(offloaded) == records(inline)
    assert len(records(inline)) < 6 * (HEAVY_RECORDS + 105)  # the pass really removed records
