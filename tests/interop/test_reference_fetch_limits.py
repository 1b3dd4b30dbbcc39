"""Fetch byte limits (KIP-74) compared with Apache Kafka 4.3.1's answers.

The same batches go to the same partitions of both brokers, then the same multi-partition
Fetch requests: which whole batches each partition returns must agree (request max_bytes,
partition_max_bytes, the one oversize first batch, later partitions getting only what is
left of the budget). Kafka may end a partition's records in a partial batch; our client
cuts it (as every client drops it), and dcmirror never sends one, so the comparison is of
whole batches. The broker's fetch.max.bytes cap is not compared: the session's Kafka runs
with its default.
"""
from __future__ import annotations

from typing import Any

import pytest

from cluster.client import FetchPosition, KafkaClient, NewTopic
from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import iter_batches
from peers.kafka_broker import KafkaBroker
from tests.interop.settling import create_ready
from tests.interop.test_reference_kafka import on_both, same
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop

NOW = 1_700_000_000_000


def batch_of(size_hint: int, key: bytes) -> bytes:
    return build_batch([(key, b"v" * (size_hint - 80), [], NOW)])


SMALL = batch_of(1000, b"s")
BIG = batch_of(200_000, b"b")
S = len(SMALL)

# partition -> batches produced, in order
LAYOUT = {0: [BIG, SMALL, SMALL], 1: [SMALL, SMALL, BIG, SMALL], 2: [SMALL] * 6, 3: [SMALL] * 6,
          4: [SMALL] * 6, 5: [SMALL] * 6}

# case -> (max_bytes, [(partition, fetch_offset, partition_max_bytes)])
CASES: dict[str, tuple[int, list[tuple[int, int, int]]]] = {
    "partial-ranges-use-the-budget": (10 * S, [(p, 0, 2 * S + S // 2) for p in (2, 3, 4, 5, 1)]),
    "ranges-on-batch-boundaries": (10 * S, [(p, 0, 3 * S) for p in (2, 3, 4, 5)]),
    "oversize-first-batch-then-nothing": (50_000, [(0, 0, 50_000), (1, 0, 50_000), (2, 0, 50_000)]),
    "oversize-over-partition-limit-only": (300_000, [(0, 0, 50_000), (1, 0, 300_000), (2, 0, 300_000)]),
    "empty-first-partition-keeps-the-exception": (50_000, [(0, 3, 50_000), (1, 2, 50_000), (2, 0, 50_000)]),
    "later-oversize-batch-gets-nothing": (100_000, [(2, 0, 4 * S), (1, 2, 100_000), (3, 0, 100_000)]),
    "partition-max-bytes-zero-first": (50_000, [(2, 0, 0), (3, 0, 2 * S)]),
    "max-bytes-zero": (0, [(2, 0, 2 * S), (3, 0, 2 * S)]),
    "big-batch-behind-small-ones-waits": (50_000, [(1, 0, 50_000)]),
}


async def test_fetch_byte_limits_as_kafka(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                          topic_name: str) -> None:
    async def probe(client: KafkaClient, topic: str) -> dict[str, Any]:
        # Each case is one request on its own: no fetch session, whose partition order (and
        # cached positions) would carry over from the case before, on both brokers alike.
        client.fetch_sessions = False
        await create_ready(client, [NewTopic(topic, len(LAYOUT))])
        for p, batches in LAYOUT.items():
            for b in batches:
                await client.produce(topic, p, b)
        out: dict[str, Any] = {}
        for case, (max_bytes, wants) in CASES.items():
            got = await client.fetch({(topic, p): FetchPosition(off, pmax) for p, off, pmax in wants},
                                     max_wait_ms=0, min_bytes=0, max_bytes=max_bytes)
            out[case] = [(p, got[(topic, p)].error_code,
                          [h.base_offset for _, h in iter_batches(got[(topic, p)].records)])
                         for p, _, _ in wants]
        return out

    answers = await on_both(cluster, kafka_broker, topic_name, probe)
    kafka = same(answers)
    # The comparison is only worth something if the cases really hit the limits.
    assert kafka["oversize-first-batch-then-nothing"] == [(0, 0, [0]), (1, 0, []), (2, 0, [])]
