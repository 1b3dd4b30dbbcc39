"""A crash at any moment of a cleaning pass leaves each segment group all old or all new.

Instead of killing a process at chosen points, the pass is run once while the directory is
copied at every step of every swap (through `cleaner.crash_hook`) and between the pass's
own steps (a `.cleaned` file half written). Each copy is exactly what a crash at that
moment would leave on disk; each is then opened (recovery) and checked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cluster.log import PartitionLog
from cluster.log import cleaner as cleaner_mod
from cluster.log.cleaner import clean_steps

from .test_compaction_helpers import append, ccfg, records


def _build(directory: Path, merge: bool) -> PartitionLog:
    log = PartitionLog.open(directory, ccfg())
    for i in range(60):  # unique keys keep segments full unless merging is tested
        pairs = [(f"k{i % 5}", f"v{i}")] + ([] if merge else [(f"u{i}", "once")])
        append(log, pairs, ts=1_000 + i)
    if merge:  # a first pass leaves small segments that the crashing pass merges
        log.compact(now_ms=10_000)
        for i in range(60, 90):
            append(log, [(f"k{i % 5}", f"v{i}")], ts=1_000 + i)
    return log


def _snapshot(src: Path, dst_root: Path, states: list[tuple[str, Path]], label: str) -> None:
    dst = dst_root / f"{len(states):03d}"
    shutil.copytree(src, dst)
    states.append((label, dst))


@pytest.mark.parametrize("merge", [False, True], ids=["first-pass", "merging-pass"])
def test_every_intermediate_state_recovers_to_old_or_new(tmp_path: Path, merge: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    live = tmp_path / "live"
    log = _build(live, merge)
    old = records(log)
    bounds = [s.base_offset for s in log.segments] + [log.log_end_offset]
    states: list[tuple[str, Path]] = []
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    monkeypatch.setattr(cleaner_mod, "crash_hook", lambda step: _snapshot(live, snaps, states, step))
    gen = clean_steps(log, 10_000)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            assert stop.value is not None
            break
        _snapshot(live, snaps, states, "between steps")
    monkeypatch.setattr(cleaner_mod, "crash_hook", None)
    new = records(log)
    assert len(new) < len(old)
    seen = {label for label, _ in states}
    assert {"cleaned-written", "committed", "dropped-indexes", "swapped", "between steps"} <= seen
    if merge:
        assert "deleted-old-segment" in seen

    def part(recs, lo, hi):
        return [r for r in recs if lo <= r[0] < hi]

    for label, directory in states:
        recovered = PartitionLog.open(directory, ccfg())
        names = os.listdir(directory)
        assert not [n for n in names if n.endswith((".cleaned", ".swap"))], (label, names)
        got = records(recovered)
        for lo, hi in zip(bounds, bounds[1:]):
            assert part(got, lo, hi) in (part(old, lo, hi), part(new, lo, hi)), (label, lo, hi)
        for offset, _, _ in got:  # rebuilt indexes find every surviving record
            data = recovered.read(offset, 1)
            assert data and int.from_bytes(data[:8], "big") <= offset
        recovered.compact(now_ms=10_000)  # finishing the job reaches the same end state
        assert records(recovered) == new, label
        recovered.close()
