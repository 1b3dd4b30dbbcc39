"""Real clients against a broker that enforces ACLs: confluent-kafka (librdkafka) sees
TOPIC_AUTHORIZATION_FAILED where Kafka would answer it, and succeeds once granted.

The broker is forced to enforce ACLs without a SASL listener (acl_helpers.EnforcingConfig),
so every connection is User:ANONYMOUS. Relies on granted ACLs (to that principal), no
super users.
"""

from __future__ import annotations

import pytest

from cluster.auth.acl import Operation as Op, ResourceType as RT
from tests.cluster.broker.acl_helpers import ThreadedBroker, grant

confluent_kafka = pytest.importorskip("confluent_kafka")
ANON = "User:ANONYMOUS"


def _produce(bootstrap: str, topic: str) -> list:
    from confluent_kafka import Producer

    results: list = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000, "enable.idempotence": False,
                  "retries": 0})
    p.produce(topic, b"v", on_delivery=lambda err, msg: results.append(err))
    p.flush(15)
    return results


def test_confluent_producer_and_consumer_see_topic_authorization_failed(tmp_path) -> None:
    from confluent_kafka import Consumer, KafkaError

    with ThreadedBroker(tmp_path / "b") as tb:
        tb.run(lambda b: b.create_topic("orders", 1, {}))
        tb.run(lambda b: grant(b, Op.DESCRIBE, name="orders", principal=ANON))
        [err] = _produce(tb.bootstrap, "orders")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        assert tb.run(lambda b: b.partitions[("orders", 0)].high_watermark) == 0

        tb.run(lambda b: grant(b, Op.WRITE, name="orders", principal=ANON))
        assert _produce(tb.bootstrap, "orders") == [None]

        c = Consumer({"bootstrap.servers": tb.bootstrap, "group.id": "g", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        try:
            c.subscribe(["orders"])
            seen = None
            for _ in range(40):
                msg = c.poll(0.5)
                if msg is not None and msg.error() is not None:
                    seen = msg.error().code()
                    break
            # no Read on group "g": the coordinator lookup or join is refused
            assert seen in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED), seen
        finally:
            c.close()
        tb.run(lambda b: grant(b, Op.READ, RT.GROUP, "g", principal=ANON))
        tb.run(lambda b: grant(b, Op.READ, name="orders", principal=ANON))
        c = Consumer({"bootstrap.servers": tb.bootstrap, "group.id": "g", "auto.offset.reset": "earliest"})
        try:
            c.subscribe(["orders"])
            got = None
            for _ in range(60):
                msg = c.poll(0.5)
                if msg is not None and msg.error() is None:
                    got = msg.value()
                    break
            assert got == b"v"
        finally:
            c.close()
