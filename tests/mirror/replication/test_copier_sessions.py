"""The copier over the client's fetch sessions (KIP-227): partitions added and removed by
reassignment while it runs still get every batch, exactly once and in order, from a real
in-process broker whose session follows the assignment (incremental fetches, forgotten
partitions)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.client import KafkaClient, NewTopic
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from mirror.replication.copier import LinkCopier
from mirror.replication.progress import LinkProgress
from mirror.replication.sinks import Written
from tests.cluster.broker.rawconn import until

TP = tuple[str, int]
PARTS = 6


@dataclass
class RecordingSink:
    """Keeps the base offsets of every batch written, per partition."""

    got: dict[TP, list[int]] = field(default_factory=dict)
    mode: str = "preserve-offsets"

    async def resume_positions(self, tps):
        """Where each partition resumes: after its last batch (one record each), or None."""
        return {tp: self.got[tp][-1] + 1 if self.got.get(tp) else None for tp in tps}

    async def write(self, data):
        out = {}
        for tp, bs in data.items():
            self.got.setdefault(tp, []).extend(rb.read_header(b).base_offset for b in bs)
            out[tp] = Written(rb.read_header(bs[-1]).next_offset, [], None, len(bs))
        return out


async def produce_round(client: KafkaClient, n: int) -> None:
    now = int(time.time() * 1000)
    for p in range(PARTS):
        for i in range(n):
            await client.produce("r", p, build_batch([(b"k", f"{p}-{i}".encode(), [], now)]))


async def test_reassignment_keeps_every_batch_through_sessions(tmp_path: Path) -> None:
    broker = Broker(BrokerConfig(name="src", data_dir=tmp_path / "b", port=0))
    await broker.start()
    stop = asyncio.Event()
    try:
        async with KafkaClient(f"127.0.0.1:{broker.config.port}") as producer, \
                KafkaClient(f"127.0.0.1:{broker.config.port}") as source:
            await producer.create_topics([NewTopic("r", PARTS)])
            await produce_round(producer, 3)
            sink = RecordingSink()
            copier = LinkCopier("l", source, sink, LinkProgress("l"), lambda t: t,  # type: ignore[arg-type]
                                max_wait_ms=100)
            copier.set_assignment([("r", p) for p in (0, 1, 2)])
            task = asyncio.ensure_future(copier.run(stop))

            def copied(parts, n) -> bool:
                return all(len(sink.got.get(("r", p), [])) >= n for p in parts)

            await until(lambda: copied((0, 1, 2), 3))
            copier.set_assignment([("r", p) for p in (2, 3, 4, 5)])  # 0 and 1 go, 3-5 come
            await produce_round(producer, 2)
            await until(lambda: copied((2, 3, 4, 5), 5))
            copier.set_assignment([("r", p) for p in (0, 5)])  # 0 comes back, resumes from the sink
            await produce_round(producer, 2)
            await until(lambda: copied((0, 5), 7))
            stop.set()
            await asyncio.wait_for(task, 10)
        for p in (0, 5):
            assert sink.got[("r", p)] == list(range(7))
        for p in (2, 3, 4):
            assert sink.got[("r", p)] == list(range(5))
        assert sink.got[("r", 1)] == list(range(3))
        assert broker.fetch_sessions.incremental_fetches > 3
    finally:
        stop.set()
        await broker.stop()
