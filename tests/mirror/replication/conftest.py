"""Two in-process brokers, east and west, in the test's event loop: the pieces of a link
(topic sync, checkpoints, a whole runner) joined in memory, without subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
async def brokers(tmp_path: Path):
    """``[east, west]`` bootstrap addresses of two fresh in-process brokers."""
    from cluster.broker.config import BrokerConfig
    from cluster.broker.server import Broker

    bs = [Broker(BrokerConfig(name=n, data_dir=tmp_path / n, port=0, group_initial_rebalance_delay_ms=0)) for n in ("east", "west")]
    for b in bs:
        await b.start()
    yield [f"127.0.0.1:{b.config.port}" for b in bs]
    for b in bs:
        await b.stop()
