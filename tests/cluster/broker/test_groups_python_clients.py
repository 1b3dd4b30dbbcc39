"""Consumer groups with the pure-Python clients: aiokafka (in-process broker) and kafka-python.

aiokafka runs in the broker's own event loop, so the whole rebalance happens in-process;
kafka-python runs against a CLI-started cluster because its consumer blocks.
"""

from __future__ import annotations

import asyncio
import time

from tests.clients import create_topic

PARTITIONS = 6


async def _aio_setup(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for p in range(PARTITIONS):
            for i in range(4):
                await producer.send_and_wait(topic, f"{p}-{i}".encode(), partition=p)
    finally:
        await producer.stop()


async def test_aiokafka_group_shares_partitions_and_commits(broker) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    topic = "aio"
    await _aio_setup(bootstrap, topic)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id="aio-group", auto_offset_reset="earliest",
            enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=300,
        )

    c1, c2 = consumer(), consumer()
    await c1.start()
    await c2.start()
    try:
        got: list[bytes] = []
        async def drain(c: AIOKafkaConsumer) -> None:
            batches = await c.getmany(timeout_ms=100)
            got.extend(m.value for ms in batches.values() for m in ms)

        for _ in range(600):
            await asyncio.gather(drain(c1), drain(c2))
            a1 = {tp.partition for tp in c1.assignment()}
            a2 = {tp.partition for tp in c2.assignment()}
            if a1 and a2 and not a1 & a2 and a1 | a2 == set(range(PARTITIONS)) and len(got) >= 4 * PARTITIONS:
                break
        assert a1 and a2 and not a1 & a2 and a1 | a2 == set(range(PARTITIONS))
        assert sorted(got) == sorted(f"{p}-{i}".encode() for p in range(PARTITIONS) for i in range(4))
        await c1.commit()
        await c2.commit()
        [d] = await broker.groups.describe_groups(["aio-group"])
        assert d["group_state"] == "Stable" and len(d["members"]) == 2
    finally:
        await c2.stop()
    try:
        for _ in range(600):
            await c1.getmany(timeout_ms=100)
            if {tp.partition for tp in c1.assignment()} == set(range(PARTITIONS)):
                break
        assert {tp.partition for tp in c1.assignment()} == set(range(PARTITIONS))
        for p in range(PARTITIONS):
            assert await c1.committed(TopicPartition(topic, p)) == 4
    finally:
        await c1.stop()


def test_kafka_python_group_resumes_from_commits(cluster) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = "kp"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    for p in range(PARTITIONS):
        producer.send(topic, f"a-{p}".encode(), partition=p)
    producer.flush()

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic, bootstrap_servers=cluster.bootstrap, group_id="kp-group", auto_offset_reset="earliest",
            enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=300,
        )

    def consume(consumers: list, want: int, seconds: float = 60.0) -> list[bytes]:
        got: list[bytes] = []
        deadline = time.monotonic() + seconds
        while len(got) < want and time.monotonic() < deadline:
            for c in consumers:
                for ms in c.poll(timeout_ms=100).values():
                    got.extend(m.value for m in ms)
        return got

    c1, c2 = consumer(), consumer()
    assert sorted(consume([c1, c2], PARTITIONS)) == sorted(f"a-{p}".encode() for p in range(PARTITIONS))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        a1, a2 = {tp.partition for tp in c1.assignment()}, {tp.partition for tp in c2.assignment()}
        if a1 and a2 and a1 | a2 == set(range(PARTITIONS)):
            break
        consume([c1, c2], 1, seconds=0.2)
    assert a1 and a2 and not a1 & a2 and a1 | a2 == set(range(PARTITIONS))
    c1.commit()
    c2.commit()
    c1.close()
    c2.close()

    for p in range(PARTITIONS):
        producer.send(topic, f"b-{p}".encode(), partition=p)
    producer.flush()
    producer.close()
    c3 = consumer()
    assert sorted(consume([c3], PARTITIONS)) == sorted(f"b-{p}".encode() for p in range(PARTITIONS))
    c3.close()
