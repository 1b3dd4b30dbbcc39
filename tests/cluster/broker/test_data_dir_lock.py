"""One broker per data directory: a second one refuses with one sentence, before it reads
or binds anything; the lock goes with its holder (stop, a failed start, kill -9)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.broker.config import BrokerConfig
from cluster.broker.data_dir_lock import DataDirInUse
from cluster.broker.server import Broker
from tests.processes import ClusterProcess, free_port

ROOT = Path(__file__).resolve().parents[3]


def test_a_second_broker_on_a_locked_dir_refuses_in_process(tmp_path) -> None:
    async def run() -> None:
        first = Broker(BrokerConfig(name="a", data_dir=tmp_path / "d", port=0))
        await first.start()
        try:
            second = Broker(BrokerConfig(name="a", data_dir=tmp_path / "d", port=0))
            with pytest.raises(DataDirInUse, match=r"data directory .*/d is in use by another broker \(pid \d+\)"):
                await second.start()
        finally:
            await first.stop()
        again = Broker(BrokerConfig(name="a", data_dir=tmp_path / "d", port=0))
        await again.start()  # stopped: the lock went with it
        await again.stop()

    asyncio.run(run())


def test_a_failed_start_releases_the_lock(tmp_path) -> None:
    async def run() -> None:
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        try:
            with pytest.raises(OSError):
                await Broker(BrokerConfig(name="a", data_dir=tmp_path / "d", port=port)).start()
        finally:
            blocker.close()
        ok = Broker(BrokerConfig(name="a", data_dir=tmp_path / "d", port=0))
        await ok.start()
        await ok.stop()

    asyncio.run(run())


def test_cluster_start_on_a_running_clusters_dir_refuses_then_kill9_frees_it(tmp_path) -> None:
    running = ClusterProcess("east", tmp_path / "east").start()
    try:
        port = free_port()
        res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "east",
                              "--port", str(port), "--data-dir", str(tmp_path / "east")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert res.returncode != 0
        assert f"is in use by another broker (pid {running.proc.pid})" in res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert "ready" not in res.stderr + res.stdout
        running.kill9()
        ClusterProcess("east", tmp_path / "east").start().stop()  # the kernel dropped the lock
    finally:
        running.stop()
