"""Real consumers with small fetch limits read everything, including a batch bigger than
every limit, from a cluster started with a small `--fetch-max-bytes` (KIP-74 end to end)."""

from __future__ import annotations

import time

import pytest

TOPIC = "limits"
PARTITIONS = 3
SMALL = 200  # records per partition
BIG = 300_000  # one value bigger than every fetch limit below, on partition 1


def produce_all(bootstrap: str) -> dict[tuple[int, int], int]:
    """{(partition, offset): value length} of everything produced."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 8192})
    sent: dict[tuple[int, int], int] = {}

    def done(err, msg) -> None:
        assert err is None, err
        sent[(msg.partition(), msg.offset())] = len(msg.value())

    for i in range(SMALL):
        for p in range(PARTITIONS):
            producer.produce(TOPIC, value=b"x" * (100 + i), partition=p, on_delivery=done)
        if i == SMALL // 2:
            producer.flush(30)  # the big record gets a batch of its own
            producer.produce(TOPIC, value=b"B" * BIG, partition=1, on_delivery=done)
            producer.flush(30)
    producer.flush(30)
    assert len(sent) == PARTITIONS * SMALL + 1
    return sent


SMALL_LIMITS = {"fetch.max.bytes": 20_000, "message.max.bytes": 10_000, "max.partition.fetch.bytes": 4096}


def consume_confluent(bootstrap: str, want: int, limits: dict | None = None) -> dict[tuple[int, int], int]:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "limits-ck", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50,
                  **(SMALL_LIMITS if limits is None else limits)})
    c.subscribe([TOPIC])
    got: dict[tuple[int, int], int] = {}
    deadline = time.monotonic() + 60
    try:
        while len(got) < want and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.5):
                assert m.error() is None, m.error()
                got[(m.partition(), m.offset())] = len(m.value())
    finally:
        c.close()
    return got


def consume_kafka_python(bootstrap: str, want: int) -> dict[tuple[int, int], int]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="limits-kp",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      fetch_max_bytes=20_000, max_partition_fetch_bytes=4096, fetch_max_wait_ms=50)
    got: dict[tuple[int, int], int] = {}
    deadline = time.monotonic() + 60
    try:
        while len(got) < want and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=500, max_records=500).items():
                for m in msgs:
                    got[(tp.partition, m.offset)] = len(m.value)
    finally:
        c.close()
    return got


def consume_aiokafka(bootstrap: str, want: int) -> dict[tuple[int, int], int]:
    """aiokafka asks Fetch v4-v9: the pre-flexible reply encoder."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def run() -> dict[tuple[int, int], int]:
        c = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="limits-aio",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_bytes=20_000, max_partition_fetch_bytes=4096,
                             fetch_max_wait_ms=50)
        await c.start()
        got: dict[tuple[int, int], int] = {}
        deadline = time.monotonic() + 60
        try:
            while len(got) < want and time.monotonic() < deadline:
                for tp, msgs in (await c.getmany(timeout_ms=500, max_records=500)).items():
                    for m in msgs:
                        got[(tp.partition, m.offset)] = len(m.value)
        finally:
            await c.stop()
        return got

    return asyncio.run(run())


def consume_confluent_defaults(bootstrap: str, want: int) -> dict[tuple[int, int], int]:
    """librdkafka's own limits (50 MiB per fetch, 1 MiB per partition): only the broker's
    fetch.max.bytes keeps its responses small."""
    return consume_confluent(bootstrap, want, limits={})


@pytest.mark.parametrize("consume", [consume_confluent, consume_kafka_python, consume_aiokafka,
                                     consume_confluent_defaults],
                         ids=["confluent-kafka", "kafka-python", "aiokafka", "confluent-kafka-broker-cap"])
def test_small_fetch_limits_still_consume_everything(cluster_factory, consume) -> None:
    cluster = cluster_factory("east", "--fetch-max-bytes", "65536")
    sent = produce_all(cluster.bootstrap)
    got = consume(cluster.bootstrap, len(sent))
    assert got == sent
    assert max(got.values()) == BIG
