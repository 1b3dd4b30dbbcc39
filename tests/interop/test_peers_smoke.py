"""Smoke tests for the real peers themselves: if these fail, every interop test and
benchmark built on `peers/` is meaningless, so they say which peer broke and how."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from peers.kafka_broker import TOPICS, KafkaBroker
from peers.mirrormaker import MirrorMaker2

pytestmark = pytest.mark.interop


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    fut.result(timeout=30)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors: list[object] = []
    for i, v in enumerate(values):
        p.produce(topic, value=v, key=str(i).encode(), partition=0,
                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert p.flush(30) == 0, "records still in flight after 30 s"
    assert not errors, errors


def consume_all(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list[bytes]:
    """Read `n` values from partition 0 from the beginning (assign: no group join)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"smoke-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for m in c.consume(num_messages=n, timeout=1.0):
                if m.error() is None:
                    out.append(m.value())
        return out
    finally:
        c.close()


@pytest.mark.parametrize("peer", ["kafka_broker", "tansu_broker"])
def test_produce_then_consume(peer: str, request: pytest.FixtureRequest,
                              topic_name: str) -> None:
    broker = request.getfixturevalue(peer)
    create_topic(broker.bootstrap, topic_name)
    values = [f"record-{i}".encode() for i in range(10)]
    produce(broker.bootstrap, topic_name, values)
    assert consume_all(broker.bootstrap, topic_name, len(values)) == values


def test_kafka_topics_cli_lists_created_topic(kafka_broker: KafkaBroker,
                                              topic_name: str) -> None:
    created = kafka_broker.tool(TOPICS, "--create", "--topic", topic_name,
                                "--partitions", "2")
    assert created.returncode == 0, created.stderr
    listed = kafka_broker.tool(TOPICS, "--list")
    assert listed.returncode == 0, listed.stderr
    assert topic_name in listed.stdout.split()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mirrormaker2_replicates_a_topic(kafka_broker: KafkaBroker, topic_name: str) -> None:
    values = [f"mm2-{i}".encode() for i in range(20)]
    create_topic(kafka_broker.bootstrap, topic_name)
    produce(kafka_broker.bootstrap, topic_name, values)
    with KafkaBroker() as target, \
            MirrorMaker2(kafka_broker.bootstrap, target.bootstrap, topics=topic_name) as mm2:
        mm2.wait_replicated(topic_name, len(values), timeout=360)
        got = consume_all(target.bootstrap, mm2.target_topic(topic_name), len(values))
        assert got == values, mm2.log_tail()
