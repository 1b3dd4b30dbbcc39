"""A real kill -9 in the middle of appends: every acknowledged batch must survive.

The child process appends deterministic batches in a loop and prints each acknowledged
(base, last) pair, flushing stdout after append() returned; the parent SIGKILLs it while it
is still writing, reopens the log and compares every acknowledged batch byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.log import LogConfig, PartitionLog

from .helpers import make_batch, read_all

REPO = Path(__file__).resolve().parents[3]

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cluster.log import LogConfig, PartitionLog
from tests.cluster.log.helpers import make_batch

log = PartitionLog.open(sys.argv[2], LogConfig(segment_bytes=8192, index_interval_bytes=512,
                                               fsync=sys.argv[3], retention_ms=-1))
i = 0
while True:
    r = log.append([make_batch(1 + i % 4, value_size=50 + i % 200, tag=i)], leader_epoch=0, now_ms=i)
    log.maybe_flush(i * 10)  # "interval": an fdatasync every 100 appends
    sys.stdout.write(f"{i} {r.base_offset} {r.last_offset}\n")
    sys.stdout.flush()
    i += 1
"""


@pytest.mark.parametrize("policy", ["never", "interval"])
def test_kill_9_loses_no_acknowledged_append(tmp_path, policy):
    directory = tmp_path / "t-0"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(REPO), str(directory), policy],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    acked: list[tuple[int, int, int]] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 400:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"child died early: {proc.stderr.read() if proc.stderr else ''}")
            acked.append(tuple(int(x) for x in line.split()))  # type: ignore[arg-type]
        os.kill(proc.pid, signal.SIGKILL)
        # acknowledgements already in the pipe count too
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():
            parts = line.split()
            if len(parts) == 3:
                acked.append(tuple(int(x) for x in parts))  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    log = PartitionLog.open(directory, LogConfig(segment_bytes=8192, index_interval_bytes=512,
                                                 retention_ms=-1))
    assert log.segment_count > 3
    stored = {base: (last, records) for base, last, records in read_all(log)}
    for i, base, last in acked:
        assert base in stored, f"acknowledged batch {i} at {base} lost"
        assert stored[base] == (last, make_batch(1 + i % 4, value_size=50 + i % 200, tag=i)[61:])
    # anything stored beyond the acknowledgements is whole batches, and appends continue
    assert log.log_end_offset >= acked[-1][2] + 1
    r = log.append([make_batch()], leader_epoch=0, now_ms=0)
    assert r.base_offset == log.log_end_offset - 1
