"""Fixtures shared by every test package: real cluster processes and in-process brokers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.processes import ClusterProcess


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator:
    """Start dcmirror clusters through the CLI; all are stopped at the end of the test."""
    started: list[ClusterProcess] = []

    def make(name: str = "east", *extra: str) -> ClusterProcess:
        c = ClusterProcess(name, tmp_path / name, extra_args=list(extra)).start()
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def cluster(cluster_factory) -> ClusterProcess:
    return cluster_factory("east")


@pytest.fixture
async def broker(tmp_path: Path):
    """An in-process broker on a free port (fast; for protocol-level tests)."""
    from cluster.broker.config import BrokerConfig
    from cluster.broker.server import Broker

    b = Broker(BrokerConfig(name="test", data_dir=tmp_path / "broker", port=0,
                            group_initial_rebalance_delay_ms=0))  # tests' groups: no 3 s wait
    await b.start()
    yield b
    await b.stop()
