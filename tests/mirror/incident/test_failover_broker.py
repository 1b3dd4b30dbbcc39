"""The broker pieces failover and failback stand on, in-process: fencing a topic against
producers (`dcmirror.fenced`) and the private DcMirrorTruncate (10001), driven through the
same helpers (mirror/incident/failover_ops.py) the commands use."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaProtocolError
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from mirror.incident import failover_ops as ops


def batch(base: int, n: int, tag: str = "v") -> bytes:
    return build_batch([(b"k", f"{tag}{base + i}".encode(), [], 1000 + i) for i in range(n)], base_offset=base)


async def test_fenced_topic_refuses_producers_with_a_clear_error(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("orders", 1)])
        await c.produce("orders", 0, batch(0, 3))
        await ops.set_configs(c, {"orders": {ops.FENCED: "west"}})
        with pytest.raises(KafkaProtocolError) as err:
            await c.produce("orders", 0, batch(0, 1))
        assert err.value.error_code == ErrorCode.invalid_request
        assert "fenced" in str(err.value) and "west" in str(err.value)
        assert (await ops.topic_overrides(c, ["orders"]))["orders"][ops.FENCED] == "west"
        await ops.set_configs(c, {"orders": {ops.FENCED: None}})
        await c.produce("orders", 0, batch(0, 1))
        assert (await ops.end_offsets(c, [("orders", 0)]))[("orders", 0)] == 4


async def test_truncate_only_mirror_topics_and_is_idempotent(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        assert (await c.any_connection()).versions.supports(codec.DCMIRROR_TRUNCATE)
        await c.create_topics([NewTopic("live", 1), NewTopic("copy", 1, 1, {ops.MIRROR_SOURCE: "east"})])
        await c.produce("live", 0, batch(0, 5))
        with pytest.raises(KafkaProtocolError) as err:
            await ops.truncate(c, {("live", 0): 2})
        assert err.value.error_code == ErrorCode.invalid_request
        for base in (0, 4, 8):  # batches [0,4) [4,8) [8,12)
            await c.append_batches("copy", 0, batch(base, 4))
        assert await ops.truncate(c, {("copy", 0): 8}) == {("copy", 0): 8}
        assert await ops.truncate(c, {("copy", 0): 8}) == {("copy", 0): 8}  # twice: harmless
        assert await ops.truncate(c, {("copy", 0): 100}) == {("copy", 0): 8}  # beyond the end: nothing
        assert await ops.truncate(c, {("copy", 0): 6}) == {("copy", 0): 4}  # a straddling batch goes whole
        # the partition continues from there with other records at the same offsets
        await c.append_batches("copy", 0, batch(4, 4, "w"))
        got = await ops.fetch_batches(c, "copy", 0, 0, 8)
        assert b"".join(bytes(b) for b in got) == batch(0, 4) + batch(4, 4, "w")


async def test_copy_preserving_keeps_offsets_and_skips_what_is_held(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("a", 1, 1, {ops.MIRROR_SOURCE: "x"}),
                               NewTopic("b", 1, 1, {ops.MIRROR_SOURCE: "x"})])
        for base in range(0, 30, 3):
            await c.append_batches("a", 0, batch(base, 3))
        assert await ops.copy_preserving(c, "a", c, "b", 0, 12, 21) == 21
        assert await ops.copy_preserving(c, "a", c, "b", 0, 12, 21) == 21  # re-run: skipped
        assert (await ops.end_offsets(c, [("b", 0)], -2))[("b", 0)] == 12  # log start follows
        assert (await ops.end_offsets(c, [("b", 0)]))[("b", 0)] == 21
        a = await ops.fetch_batches(c, "a", 0, 12, 21)
        b = await ops.fetch_batches(c, "b", 0, 12, 21)
        assert [bytes(x) for x in a] == [bytes(x) for x in b]
