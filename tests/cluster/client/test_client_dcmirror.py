"""dcmirror's private API through the client (cluster/client/dcmirror.py), against an
in-process dcmirror broker: offset-preserving append, truncate, and telling a dcmirror
cluster from another (the session's test target, Tansu by default, is not one)."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from cluster.client import KafkaClient, KafkaProtocolError, NewTopic
from cluster.wire.batch_builder import build_batch
from cluster.wire.dcmirror_api import MIRROR_SOURCE


def batch(base: int, n: int, tag: str = "v") -> bytes:
    return build_batch([(b"k", f"{tag}{base + i}".encode(), [], 1000 + i) for i in range(n)], base_offset=base)


async def test_is_dcmirror_tells_the_clusters_apart(broker, target) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as ours:
        assert await ours.is_dcmirror()
    async with KafkaClient(target.bootstrap, request_timeout_s=15, retry_deadline_s=5) as other:
        assert await other.is_dcmirror() is (target.kind == "dcmirror")


async def test_append_batches_keeps_offsets_and_skips_what_is_held(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("copy", 1, 1, {MIRROR_SOURCE: "east"})])
        await c.append_batches("copy", 0, batch(10, 4))  # starts where the source's log did
        await c.append_batches("copy", 0, batch(10, 4) + batch(14, 2))  # the held batch is skipped
        assert await c.offset_ranges([("copy", 0)]) == {("copy", 0): (10, 16)}


async def test_append_to_a_topic_that_is_not_a_mirror_is_refused(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("live", 1)])
        with pytest.raises(KafkaProtocolError) as err:
            await c.append_batches("live", 0, batch(0, 2))
        assert err.value.error_code == ErrorCode.invalid_request
        assert await c.end_offsets([("live", 0)]) == {("live", 0): 0}


async def test_append_request_answers_per_partition_without_retrying(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        codes = await c.append_request({"nowhere": [(0, b"")]}, acks=1, timeout_ms=5000)
        assert codes[("nowhere", 0)][0] == ErrorCode.unknown_topic_or_partition


async def test_truncate_cuts_mirror_partitions_of_many_topics(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic(t, 2, 1, {MIRROR_SOURCE: "east"}) for t in ("a", "b")])
        for t in ("a", "b"):
            for p in (0, 1):
                for base in (0, 4, 8):
                    await c.append_batches(t, p, batch(base, 4))
        cut = {("a", 0): 8, ("a", 1): 4, ("b", 0): 6, ("b", 1): 100}
        assert await c.truncate(cut) == {("a", 0): 8, ("a", 1): 4, ("b", 0): 4, ("b", 1): 12}
        assert await c.truncate(cut) == {("a", 0): 8, ("a", 1): 4, ("b", 0): 4, ("b", 1): 12}  # idempotent
        assert await c.end_offsets(list(cut)) == {("a", 0): 8, ("a", 1): 4, ("b", 0): 4, ("b", 1): 12}
        assert await c.truncate({}) == {}


async def test_truncate_refuses_a_topic_that_is_not_a_mirror(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("live", 1)])
        await c.produce("live", 0, batch(0, 5))
        with pytest.raises(KafkaProtocolError) as err:
            await c.truncate({("live", 0): 2})
        assert err.value.error_code == ErrorCode.invalid_request
        assert await c.end_offsets([("live", 0)]) == {("live", 0): 5}
