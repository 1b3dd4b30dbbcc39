"""Topic sync against two in-process brokers in one event loop (no subprocesses): the
pre-existing-target-topic cases of mirror/replication/existing.py as the daemon meets them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.wire.batch_builder import build_batch
from mirror.config.model import LinkConfig
from mirror.replication.existing import MIRROR_SOURCE
from mirror.config.policy import ReplicationPolicy
from mirror.replication.progress import LinkProgress
from mirror.replication.mode import IdentityMapping
from mirror.replication.topic_sync import TopicSync


@pytest.fixture
async def two(tmp_path: Path):
    from cluster.broker.config import BrokerConfig
    from cluster.broker.server import Broker

    brokers = [Broker(BrokerConfig(name=n, data_dir=tmp_path / n, port=0)) for n in ("east", "west")]
    for b in brokers:
        await b.start()
    clients = [KafkaClient(f"127.0.0.1:{b.config.port}", retry_deadline_s=5) for b in brokers]
    for c in clients:
        await c.start()
    yield clients
    for c in clients:
        await c.close()
    for b in brokers:
        await b.stop()


def sync_for(source: KafkaClient, target: KafkaClient) -> TopicSync:
    link = LinkConfig(name="e2w", source="east", target="west", topics=["orders.*"])
    return TopicSync(link, ReplicationPolicy.for_link(link, ["east", "west"]), source, target,
                     LinkProgress("e2w"), IdentityMapping(), "east", config_path="dc.yaml")


async def marker(client: KafkaClient, topic: str) -> str | None:
    entry = (await client.describe_configs([topic]))[topic].get(MIRROR_SOURCE)
    return entry.value if entry is not None else None


async def test_an_empty_foreign_topic_is_adopted_grown_and_marked(two) -> None:
    east, west = two
    await east.create_topics([NewTopic("orders.a", 3, -1, {"retention.ms": "3600000"})])
    await west.create_topics([NewTopic("orders.a", 1, -1, {})])  # what an auto-creating lookup leaves
    sync = sync_for(east, west)
    mirrored = await sync.once()
    assert [(m.source, m.partitions) for m in mirrored] == [("orders.a", 3)]
    assert len((await west.list_topics())["orders.a"].partitions) == 3
    assert await marker(west, "orders.a") == "east"
    assert (await west.describe_configs(["orders.a"]))["orders.a"]["retention.ms"].value == "3600000"
    assert await sync.once() == mirrored  # owned now: nothing more to do


async def test_a_foreign_topic_with_a_record_is_a_conflict_alone(two) -> None:
    east, west = two
    for t in ("orders.a", "orders.b"):
        await east.create_topics([NewTopic(t, 2, -1, {})])
    await west.create_topics([NewTopic("orders.b", 1, -1, {})])
    await west.produce("orders.b", 0, build_batch([(b"k", b"app", [], 1)]))
    sync = sync_for(east, west)
    mirrored = await sync.once()
    assert [m.source for m in mirrored] == ["orders.a"]
    states = {tp: (pp.state, pp.error) for tp, pp in sync.progress.partitions.items()}
    assert set(states) == {("orders.b", 0), ("orders.b", 1)}
    state, reason = states[("orders.b", 0)]
    assert state == "conflict" and "1 record(s) in partition(s) 0 of 1" in reason
    assert "dcmirror link adopt dc.yaml --link e2w --topic orders.b --truncate" in reason
    assert await marker(west, "orders.b") is None  # not taken, producers still allowed
    # once it is the link's (what `link adopt` ends with), the next round mirrors it
    await west.incremental_alter_configs({"orders.b": {MIRROR_SOURCE: "east"}})
    assert {m.source for m in await sync.once()} == {"orders.a", "orders.b"}
    assert {pp.state for pp in sync.progress.partitions.values()} == {"starting"}


async def test_group_offsets_on_an_empty_foreign_topic_make_it_a_conflict(two) -> None:
    east, west = two
    await east.create_topics([NewTopic("orders.g", 1, -1, {})])
    await west.create_topics([NewTopic("orders.g", 1, -1, {})])
    await west.offset_commit("billing", {("orders.g", 0): 0})
    sync = sync_for(east, west)
    assert await sync.once() == []
    assert "committed offsets of group(s) billing" in sync.progress.partitions[("orders.g", 0)].error


async def test_a_match_everything_pattern_never_selects_internal_topics(two) -> None:
    """The source lists __consumer_offsets and __transaction_state (is_internal, as Kafka
    after first use); a link whose pattern matches every name still leaves them alone."""
    east, west = two
    conn = await east.any_connection()
    for key_type in (0, 1):  # first use: they appear in Metadata
        await conn.send(conn.build(10, {"key_type": key_type, "coordinator_keys": ["x"]}))
    await east.create_topics([NewTopic("orders.a", 1, -1, {})])
    east.invalidate()
    listed = await east.list_topics(include_internal=True)
    assert listed["__consumer_offsets"].is_internal and listed["__transaction_state"].is_internal
    link = LinkConfig(name="e2w", source="east", target="west", topics=[".*"])
    sync = TopicSync(link, ReplicationPolicy.for_link(link, ["east", "west"]), east, west,
                     LinkProgress("e2w"), IdentityMapping(), "east", config_path="dc.yaml")
    assert [m.source for m in await sync.once()] == ["orders.a"]
    assert not {"__consumer_offsets", "__transaction_state"} & set(await west.list_topics(include_internal=True))
