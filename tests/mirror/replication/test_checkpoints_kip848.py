"""The checkpoint rule ("commit only for groups with no members on the target") with a
KIP-848 consumer group on a real target: DescribeGroups shows such a group as Dead (as
Kafka does), so the rule must learn of its members from ConsumerGroupDescribe (our client
asks it). While a consumer-protocol member is in the group nothing is committed; once it
leaves, the next round commits."""

from __future__ import annotations



from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.wire.batch_builder import build_batch
from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy
from mirror.replication.checkpoints import Checkpointer
from mirror.replication.mode import IdentityMapping
from mirror.replication.progress import LinkProgress

HEARTBEAT = 68


async def _heartbeat(client: KafkaClient, epoch: int) -> int:
    conn = await client.any_connection()
    body = {"group_id": "billing", "member_id": "kip848-member", "member_epoch": epoch, "rebalance_timeout": 30_000,
            "subscribed_topic_names": ["orders"] if epoch == 0 else None, "topic_partitions": [] if epoch == 0 else None}
    resp = await conn.send(conn.build(HEARTBEAT, body, 1))
    assert resp.error_code == 0
    return resp.member_epoch


async def test_an_active_consumer_protocol_group_is_not_checkpointed_until_it_leaves(brokers) -> None:
    east = KafkaClient(brokers[0], retry_deadline_s=5)
    west = KafkaClient(brokers[1], retry_deadline_s=5)
    await east.start()
    await west.start()
    try:
        for c in (east, west):
            await c.create_topics([NewTopic("orders", 2, -1, {})])
        for p in (0, 1):
            await east.produce("orders", p, build_batch([(None, b"v%d" % i, [], 1) for i in range(10)]))
        await east.offset_commit("billing", {("orders", 0): 7, ("orders", 1): 3})
        assert await _heartbeat(west, 0) == 1  # a KIP-848 consumer is live in "billing" on the target
        link = LinkConfig(name="e2w", source="east", target="west", topics=["orders"], groups=["billing"])
        cp = Checkpointer("e2w", ReplicationPolicy.for_link(link, ["east", "west"]), east, west,
                          LinkProgress("e2w"), IdentityMapping(), lambda tp: 10)
        results = await cp.once({"orders"})
        # skipped as active (not attempted and refused: a "simple" commit to a group with
        # members would be UNKNOWN_MEMBER_ID from the broker, every round)
        assert [(r.group, r.skipped_active) for r in results] == [("billing", True)]
        assert await west.offset_fetch("billing") == {}
        assert await _heartbeat(west, -1) == -1  # it leaves
        results = await cp.once({"orders"})
        assert [r.skipped_active for r in results] == [False]
        assert {tp: o for tp, (o, _) in (await west.offset_fetch("billing")).items()} == \
            {("orders", 0): 7, ("orders", 1): 3}
    finally:
        await east.close()
        await west.close()
