"""The Metadata watch: a link's runner with two in-process brokers in one event loop, the
full topic sync on a 60 s interval, so only the watch can make a new source topic (or a
partition increase) reach the target before the test's deadline."""

from __future__ import annotations

import asyncio
from pathlib import Path


from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.wire.batch_builder import build_batch
from mirror.config.model import ClusterConfig, LinkConfig, MirrorConfig
from mirror.replication.link import LinkRunner


async def until(pred, what: str, timeout: float = 30.0) -> None:
    """Wait for an async condition (the deadline is far beyond the 60 s-free path's needs)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not reached within {timeout}s"
        await asyncio.sleep(0.05)


def runner(addrs: dict[str, str], tmp_path: Path, watch_s: float) -> LinkRunner:
    link = LinkConfig(name="e2w", source="east", target="west", topics=["orders.*"],
                      sync_interval_s=60.0, topic_watch_interval_s=watch_s)
    cfg = MirrorConfig(clusters={n: ClusterConfig(n, [a]) for n, a in addrs.items()}, links=[link],
                       path=tmp_path / "m.yaml")
    return LinkRunner(cfg, link)


async def test_a_topic_created_after_the_first_sync_is_mirrored_by_the_watch(brokers, tmp_path) -> None:
    addrs = dict(zip(("east", "west"), brokers))
    east, west = (KafkaClient(addrs[n], retry_deadline_s=5) for n in ("east", "west"))
    await east.start()
    await west.start()
    await east.create_topics([NewTopic("orders.a", 1, -1, {})])
    r = runner(addrs, tmp_path, 0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    try:
        await asyncio.wait_for(r.synced.wait(), 30)  # the first sync happened: the next is 60 s away
        await east.create_topics([NewTopic("orders.new", 2, -1, {}), NewTopic("other", 1, -1, {})])
        await east.produce("orders.new", 1, build_batch([(b"k", b"v", [], 1)]))

        async def copied() -> bool:
            topics = await west.list_topics()
            if "orders.new" not in topics:
                return False
            return (await west.list_offsets("orders.new", [1], -1))[1][0] == 1

        await until(copied, "orders.new created on the target and its record copied")
        assert "other" not in await west.list_topics()  # the watch follows the link's patterns
        await east.create_partitions({"orders.a": 3})
        await until(lambda: _partitions(west, "orders.a", 3), "orders.a grown to 3 partitions on the target")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await east.close()
        await west.close()


async def _partitions(client: KafkaClient, topic: str, n: int) -> bool:
    return len((await client.list_topics())[topic].partitions) == n
