"""The journal: replay, tombstones, torn tails, compaction, and kill -9 mid commit loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from cluster.groups.store import GroupStore


def test_replay_with_overwrites_and_tombstones(tmp_path: Path):
    s = GroupStore(tmp_path)
    assert s.open() == {}
    s.append([(b"a", b"1"), (b"b", b"2")])
    s.append([(b"a", b"3"), (b"b", None), (b"c", b"")])
    s.close()
    assert GroupStore(tmp_path).open() == {b"a": b"3", b"c": b""}


def test_torn_tail_is_truncated_and_appends_continue(tmp_path: Path):
    s = GroupStore(tmp_path)
    s.open()
    s.append([(b"k1", b"v1")])
    journal = tmp_path / "journal"
    first_frame = journal.stat().st_size
    s.append([(b"k2", b"v2")])
    s.close()
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-3])  # the second frame was torn mid-write
    s = GroupStore(tmp_path)
    assert s.open() == {b"k1": b"v1"}
    assert journal.stat().st_size == first_frame
    s.append([(b"k3", b"v3")])
    s.close()
    assert GroupStore(tmp_path).open() == {b"k1": b"v1", b"k3": b"v3"}


def test_corrupt_frame_ends_replay(tmp_path: Path):
    s = GroupStore(tmp_path)
    s.open()
    s.append([(b"k1", b"v1")])
    s.append([(b"k2", b"v2")])
    s.close()
    journal = tmp_path / "journal"
    data = bytearray(journal.read_bytes())
    data[-1] ^= 0xFF  # CRC no longer matches the last frame
    journal.write_bytes(bytes(data))
    assert GroupStore(tmp_path).open() == {b"k1": b"v1"}


def test_compaction_keeps_only_live_records(tmp_path: Path):
    s = GroupStore(tmp_path, compact_ratio=2.0, compact_min_bytes=1000)
    s.open()
    for i in range(500):
        s.append([(b"offset", str(i).encode()), (b"tmp%d" % i, b"x"), (b"tmp%d" % i, None)])
    assert s.journal_bytes() < 1000 * 2  # compacted along the way
    assert s.live == {b"offset": b"499"}
    s.close()
    assert GroupStore(tmp_path).open() == {b"offset": b"499"}


def test_interrupted_compaction_leftover_is_ignored(tmp_path: Path):
    s = GroupStore(tmp_path)
    s.open()
    s.append([(b"k", b"v")])
    s.close()
    (tmp_path / "journal.tmp").write_bytes(b"half a snapshot")
    assert GroupStore(tmp_path).open() == {b"k": b"v"}
    assert not (tmp_path / "journal.tmp").exists()


def test_fsync_policies(tmp_path: Path):
    for policy in ("always", "interval", "never"):
        s = GroupStore(tmp_path / policy, fsync=policy)
        s.open()
        s.append([(b"k", policy.encode())])
        s.sync()
        s.close()
        assert GroupStore(tmp_path / policy).open() == {b"k": policy.encode()}


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cluster.groups.coordinator import GroupCoordinator

    async def main():
        c = GroupCoordinator(Path(sys.argv[1]), 1, compact_min_bytes=20_000)
        await c.start()
        i = 0
        while True:
            parts = [{"partition_index": p, "committed_offset": i, "committed_metadata": f"m{i}"} for p in range(3)]
            r = await c.offset_commit("g", -1, "", None, [{"name": "t", "partitions": parts}])
            assert all(p["error_code"] == 0 for t in r["topics"] for p in t["partitions"])
            sys.stdout.write(f"{i}\\n")
            sys.stdout.flush()
            i += 1

    asyncio.run(main())
    """
)


async def test_kill_9_mid_commit_loop_loses_nothing_acknowledged(tmp_path: Path):
    from cluster.groups.coordinator import GroupCoordinator

    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 3000:  # enough to have compacted several times (20 kB threshold)
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acked >= 3000
    c = GroupCoordinator(tmp_path, 1)
    await c.start()
    try:
        r = await c.offset_fetch("g", None)
        parts = r["topics"][0]["partitions"]
        assert [p["partition_index"] for p in parts] == [0, 1, 2]
        for p in parts:
            assert p["committed_offset"] >= acked
            assert p["metadata"] == f"m{p['committed_offset']}"
    finally:
        await c.close()
