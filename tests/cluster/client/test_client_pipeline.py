"""Pipelined rounds of batches by leader (cluster/client/pipeline.py): each round's replies
come back per partition, in round order, with errors as codes (nothing raised, nothing
retried); on the test target by Produce and on the in-process broker by DcMirrorAppend."""

from __future__ import annotations

import time

from kio.schema.errors import ErrorCode

from cluster.client import FetchPosition, KafkaClient, NewTopic
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from cluster.wire.dcmirror_api import MIRROR_SOURCE


def batch(base: int, n: int, tag: str = "v") -> bytes:
    """Stamped now: a broker's retention pass would delete records stamped in 1970."""
    now = int(time.time() * 1000)
    return build_batch([(b"k", f"{tag}{base + i}".encode(), [], now + i) for i in range(n)], base_offset=base)


async def bases(client: KafkaClient, topic: str, p: int) -> list[int]:
    start = (await client.start_offsets([(topic, p)]))[(topic, p)]
    got = (await client.fetch({(topic, p): FetchPosition(start, 1 << 20)}, max_wait_ms=50))[(topic, p)]
    return [h.base_offset for _, h in rb.iter_batches(memoryview(got.records))]


async def test_produce_rounds_land_in_round_order(client: KafkaClient, name: str) -> None:
    await client.create_topics([NewTopic(name, 2)])
    rounds = [{(name, 0): [batch(0, 2, "a")], (name, 1): [batch(0, 1, "b")]},
              {(name, 0): [batch(0, 3, "c")]},
              {(name, 0): [batch(0, 1, "d")], (name, 1): [batch(0, 2, "e")]}]
    replies = await client.produce_rounds(rounds)
    assert [sorted(r) for r in replies] == [sorted(r) for r in rounds]
    assert all(code == 0 for r in replies for code, _, _ in r.values())
    assert [r[(name, 0)][1] for r in replies] == [0, 2, 5]  # base offsets: in round order
    assert [r[(name, 1)][1] for r in (replies[0], replies[2])] == [0, 1]
    assert await bases(client, name, 0) == [0, 2, 5]
    assert await client.produce_rounds([]) == []


async def test_append_rounds_keep_offsets_and_answer_errors_per_partition(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("copy", 1, 1, {MIRROR_SOURCE: "east"}), NewTopic("live", 1)])
        replies = await c.append_rounds([{("copy", 0): [batch(7, 3)], ("live", 0): [batch(0, 1)]},
                                         {("copy", 0): [batch(10, 2)]}])
        assert replies[0][("copy", 0)][0] == 0 and replies[1][("copy", 0)][0] == 0
        assert replies[0][("live", 0)][0] == ErrorCode.invalid_request  # not a mirror topic: a code
        assert await bases(c, "copy", 0) == [7, 10]
        assert await c.end_offsets([("live", 0)]) == {("live", 0): 0}
