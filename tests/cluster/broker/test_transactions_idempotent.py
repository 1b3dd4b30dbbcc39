"""Idempotent producers with a real client: a retried Produce is answered, not re-appended.

kafka-python enables idempotence by default (KIP-679, as the Java producer does). The
broker here loses the first reply of a Produce request after appending it (the
connection is dropped), so the client must retry the same batch: the sequence check
recognises the duplicate and answers with the original offset.
"""

from __future__ import annotations

import asyncio

import pytest

from cluster.broker import registry
from cluster.wire.records import decode_batches
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create
from tests.cluster.broker.test_transactions import fetch


@pytest.fixture
def lose_produce_replies(monkeypatch):
    """Drop the replies of the first `n[0]` Produce requests after they were appended."""
    real = registry.HANDLERS[0]
    left = [2]
    appended: list[int] = []

    async def lossy(broker, hdr, req):
        result = await real.fn(broker, hdr, req)
        if left[0] > 0 and result is not None:
            left[0] -= 1
            appended.append(sum(len(p.records or b"") for t in req.topic_data for p in t.partition_data))
            raise ConnectionResetError("test: reply lost after append")
        return result

    monkeypatch.setitem(registry.HANDLERS, 0, registry.Handler(0, real.min_version, real.max_version, lossy))
    return appended


def produce_with_default_settings(bootstrap: str, topic: str, n: int, **extra) -> list[int]:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, retry_backoff_ms=50,
                      request_timeout_ms=5000, **extra)
    try:
        futs = [p.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(n)]
        return [f.get(timeout=60).offset for f in futs]
    finally:
        p.close()


async def test_retried_produce_does_not_duplicate(broker, lose_produce_replies) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "idem", 1)
    offsets = await asyncio.to_thread(produce_with_default_settings, f"127.0.0.1:{broker.config.port}", "idem", 50)
    assert lose_produce_replies, "no Produce reply was dropped: the test did not exercise retries"
    assert sorted(offsets) == list(range(50))
    rc = await fetch(conn, "idem", 0)
    batches = decode_batches(rc.records)
    assert all(h.producer_id >= 0 for h, _ in batches)   # the client really was idempotent
    values = [r.value for _, rs in batches for r in rs]
    assert values == [b"v%d" % i for i in range(50)]
    assert rc.high_watermark == 50
    conn.close()


async def test_without_idempotence_the_same_loss_duplicates(broker, lose_produce_replies) -> None:
    """The control experiment: the lossy broker really provokes retries that duplicate."""
    conn = await RawConn.open(broker.config.port)
    await create(conn, "dup", 1)
    await asyncio.to_thread(produce_with_default_settings, f"127.0.0.1:{broker.config.port}", "dup", 50,
                            enable_idempotence=False, retries=5)
    rc = await fetch(conn, "dup", 0)
    assert rc.high_watermark > 50
    conn.close()


def produce_confluent_idempotent(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
                  "retry.backoff.ms": 50})
    errors: list = []
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(60) == 0
    assert not errors, errors


async def test_librdkafka_idempotent_retry_does_not_duplicate(broker, lose_produce_replies) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "idem-rd", 1)
    await asyncio.to_thread(produce_confluent_idempotent, f"127.0.0.1:{broker.config.port}", "idem-rd", 50)
    assert lose_produce_replies
    rc = await fetch(conn, "idem-rd", 0)
    values = [r.value for _, rs in decode_batches(rc.records) for r in rs]
    assert values == [b"v%d" % i for i in range(50)] and rc.high_watermark == 50
    conn.close()
