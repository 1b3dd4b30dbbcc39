"""Consumer groups with the pure-Python clients: aiokafka (in-process broker) and kafka-python.

aiokafka runs in the broker's own event loop, so the whole rebalance happens in-process;
kafka-python runs against a CLI-started cluster because its consumer blocks.
"""

from __future__ import annotations

import asyncio
import threading
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
            if a1 and a2 and not a1 & a2 and a1 | a2 == set(range(PARTITIONS)) and len(set(got)) >= 4 * PARTITIONS:
                positions = [await c.position(tp) for c in (c1, c2) for tp in c.assignment()]
                if positions == [4] * PARTITIONS:  # every owner has read its partitions to the end
                    break
        assert a1 and a2 and not a1 & a2 and a1 | a2 == set(range(PARTITIONS))
        # at-least-once: a partition moved before any commit is read again by its new owner
        assert set(got) == {f"{p}-{i}".encode() for p in range(PARTITIONS) for i in range(4)}
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


class _KafkaPythonMember(threading.Thread):
    """One kafka-python consumer polling in its own thread, as applications run them.

    kafka-python rejoins only inside poll(), and poll() blocks while a join waits for the
    other members: two consumers polled in turn from one thread would starve each other.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id="kp-group", auto_offset_reset="earliest",
            enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=300,
        )
        # Learn the topic's partitions before joining: a leader that assigns without them
        # must rejoin when they arrive, and kafka-python 3.0 sometimes wedges on that path.
        assert topic in self.consumer.topics()
        self.consumer.subscribe([topic])
        self.values: list[bytes] = []
        self.partitions: set[int] = set()
        self.next_offsets: dict[int, int] = {}
        self.commit_requested = threading.Event()
        self.committed = threading.Event()
        self.stop_requested = threading.Event()

    def run(self) -> None:
        from kafka.errors import CommitFailedError, RebalanceInProgressError

        while not self.stop_requested.is_set():
            for ms in self.consumer.poll(timeout_ms=100).values():
                self.values.extend(m.value for m in ms)
                for m in ms:
                    self.next_offsets[m.partition] = m.offset + 1
            # position() would block on the coordinator mid-rebalance: track reads instead
            self.partitions = {tp.partition for tp in self.consumer.assignment()}
            if self.commit_requested.is_set() and not self.committed.is_set():
                try:
                    self.consumer.commit()
                except (RebalanceInProgressError, CommitFailedError):
                    # kafka-python refuses to commit while it believes it is rejoining (its
                    # own state; the broker need not say so): poll again and retry, as
                    # applications do.
                    continue
                self.committed.set()
        self.consumer.close()


def _wait(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_kafka_python_group_resumes_from_commits(cluster) -> None:
    from kafka import KafkaProducer

    topic = "kp"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    for p in range(PARTITIONS):
        producer.send(topic, f"a-{p}".encode(), partition=p)
    producer.flush()

    m1, m2 = _KafkaPythonMember(cluster.bootstrap, topic), _KafkaPythonMember(cluster.bootstrap, topic)
    m1.start()
    m2.start()
    try:
        _wait(lambda: m1.partitions and m2.partitions and not m1.partitions & m2.partitions
              and m1.partitions | m2.partitions == set(range(PARTITIONS))
              and all(m.next_offsets.get(p) == 1 for m in (m1, m2) for p in m.partitions))
        # at-least-once: a partition moved before any commit is read again by its new owner
        assert set(m1.values + m2.values) == {f"a-{p}".encode() for p in range(PARTITIONS)}
        for m in (m1, m2):
            m.commit_requested.set()
        _wait(lambda: m1.committed.is_set() and m2.committed.is_set())
    finally:
        for m in (m1, m2):
            m.stop_requested.set()
            m.join(30)

    for p in range(PARTITIONS):
        producer.send(topic, f"b-{p}".encode(), partition=p)
    producer.flush()
    producer.close()
    m3 = _KafkaPythonMember(cluster.bootstrap, topic)
    m3.start()
    try:
        _wait(lambda: len(m3.values) >= PARTITIONS)
        assert sorted(m3.values) == sorted(f"b-{p}".encode() for p in range(PARTITIONS))
    finally:
        m3.stop_requested.set()
        m3.join(30)
