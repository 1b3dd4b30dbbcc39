"""Group offsets and group inspection against the selected target cluster."""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import Consumer

from cluster.client import KafkaClient, KafkaProtocolError, NewTopic


async def test_simple_commit_then_fetch(client: KafkaClient, name: str) -> None:
    await client.create_topics([NewTopic(name, 3)])
    group = f"g-{name}"
    await client.offset_commit(group, {(name, 0): 10, (name, 2): 42})
    committed = await client.offset_fetch(group)
    assert {tp: off for tp, (off, _) in committed.items()} == {(name, 0): 10, (name, 2): 42}
    asked = await client.offset_fetch(group, [(name, 0), (name, 1)])
    assert asked[(name, 0)][0] == 10 and asked[(name, 1)][0] == -1
    await client.offset_commit(group, {(name, 0): 11})
    assert (await client.offset_fetch(group, [(name, 0)]))[(name, 0)][0] == 11


async def test_commit_metadata_round_trips(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "OffsetFetch returns null metadata whatever was committed")
    await client.create_topics([NewTopic(name, 1)])
    await client.offset_commit(f"g-{name}", {(name, 0): 7}, metadata="checkpoint:3")
    assert await client.offset_fetch(f"g-{name}") == {(name, 0): (7, "checkpoint:3")}


async def test_find_coordinator_is_a_known_broker(client: KafkaClient, name: str) -> None:
    info = await client.find_coordinator(f"g-{name}")
    assert info.node_id in client.cached_metadata.brokers
    assert info.port > 0


async def test_list_describe_delete(client: KafkaClient, name: str) -> None:
    await client.create_topics([NewTopic(name, 1)])
    group = f"g-{name}"
    await client.offset_commit(group, {(name, 0): 5})
    assert group in [g.group_id for g in await client.list_groups()]
    desc = (await client.describe_groups([group]))[group]
    assert desc.state == "Empty" and desc.members == ()
    assert await client.delete_groups([group]) == {group: None}
    assert await client.offset_fetch(group) == {}


async def test_describe_group_with_live_member(client: KafkaClient, target, name: str) -> None:
    await client.create_topics([NewTopic(name, 1)])
    group = f"g-{name}"
    assigned = threading.Event()
    stop = threading.Event()

    def consume() -> None:
        c = Consumer({"bootstrap.servers": target.bootstrap, "group.id": group, "client.id": "live-member",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "log_level": 0,
                      "enable.auto.commit": False, "partition.assignment.strategy": "range"})
        c.subscribe([name], on_assign=lambda _c, _p: assigned.set())
        try:
            while not stop.is_set():
                c.poll(0.1)
        finally:
            c.close()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    try:
        assert await asyncio.to_thread(assigned.wait, 60)
        desc = (await client.describe_groups([group]))[group]
        assert desc.state == "Stable" and desc.protocol_type == "consumer"
        assert len(desc.members) == 1 and desc.members[0].member_id
        if target.kind != "tansu":  # Tansu reports an empty client_id for members
            assert desc.members[0].client_id == "live-member"
        # A simple commit is refused while the group has members.
        try:
            await client.offset_commit(group, {(name, 0): 1})
            refused = False
        except KafkaProtocolError:
            refused = True
        assert refused
    finally:
        stop.set()
        await asyncio.to_thread(worker.join, 30)
