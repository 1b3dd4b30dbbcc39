"""Transactions with real, unmodified clients against a dcmirror cluster process.

confluent-kafka (librdkafka) transactional producers commit and abort; read_committed
consumers see only committed records, read_uncommitted ones see everything; a
consume-transform-produce loop commits its input offsets atomically with its output
(`send_offsets_to_transaction`); and after `kill -9` with a transaction open, the restarted
broker never exposes it half-done while committed data stays intact.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topics(bootstrap: str, *names: str, partitions: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        fut.result(30)


def txn_producer(bootstrap: str, tid: str, **extra) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5,
                  "partitioner": "murmur2_random", **extra})
    p.init_transactions(30)
    return p


def send_txn(p: Producer, topic: str, values: list[bytes], commit: bool) -> None:
    p.begin_transaction()
    for i, v in enumerate(values):
        p.produce(topic, value=v, key=b"k%d" % i)
    if commit:
        p.commit_transaction(30)
    else:
        p.flush(30)      # the records are in the log before the abort
        p.abort_transaction(30)


def consume_all(bootstrap: str, topic: str, partitions: int, isolation: str, group: str = "reader") -> list[bytes]:
    """Every record up to the end (read_committed: up to the last stable offset)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": isolation,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[bytes] = []
    eof: set[int] = set()
    deadline = time.monotonic() + 60
    while len(eof) < partitions and time.monotonic() < deadline:
        for m in c.consume(500, timeout=1):
            if m.error():
                if m.error().code() == -191:   # _PARTITION_EOF
                    eof.add(m.partition())
                continue
            out.append(m.value())
    c.close()
    assert len(eof) == partitions, "did not reach the end of every partition"
    return sorted(out)


def test_commit_and_abort_visibility(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "orders")
    p = txn_producer(bs, "orders-writer")
    committed_a = [b"a%d" % i for i in range(20)]
    aborted_b = [b"b%d" % i for i in range(20)]
    committed_c = [b"c%d" % i for i in range(20)]
    send_txn(p, "orders", committed_a, True)
    send_txn(p, "orders", aborted_b, False)
    send_txn(p, "orders", committed_c, True)
    assert consume_all(bs, "orders", 2, "read_committed") == sorted(committed_a + committed_c)
    assert consume_all(bs, "orders", 2, "read_uncommitted") == sorted(committed_a + aborted_b + committed_c)


def test_open_transaction_is_invisible_to_read_committed(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "pending")
    p = txn_producer(bs, "pending-writer")
    send_txn(p, "pending", [b"done"], True)
    p.begin_transaction()
    p.produce("pending", value=b"in-flight")
    p.flush(30)
    assert consume_all(bs, "pending", 2, "read_committed") == [b"done"]
    assert consume_all(bs, "pending", 2, "read_uncommitted") == [b"done", b"in-flight"]
    p.commit_transaction(30)
    assert consume_all(bs, "pending", 2, "read_committed") == [b"done", b"in-flight"]


def test_new_instance_fences_the_old_one(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "fence")
    old = txn_producer(bs, "fence-writer")
    old.begin_transaction()
    old.produce("fence", value=b"zombie")
    old.flush(30)
    new = txn_producer(bs, "fence-writer")      # aborts the old transaction, bumps the epoch
    send_txn(new, "fence", [b"fresh"], True)
    with pytest.raises(KafkaException) as exc:
        old.commit_transaction(30)
    assert exc.value.args[0].fatal() or "fenced" in str(exc.value).lower()
    assert consume_all(bs, "fence", 2, "read_committed") == [b"fresh"]


def committed_offsets(bs: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets as they stand, pending transactional ones excluded.

    read_uncommitted, because a read_committed consumer (librdkafka's default) asks with
    require_stable and, as on Apache Kafka, waits while a transaction holds offsets."""
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    try:
        found = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        c.close()


def test_consume_transform_produce_commits_offsets_atomically(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "in", "out", partitions=1)
    seed = Producer({"bootstrap.servers": bs})
    for i in range(30):
        seed.produce("in", value=b"%d" % i)
    assert seed.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": bs, "group.id": "ctp", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 6000})
    consumer.subscribe(["in"])
    producer = txn_producer(bs, "ctp-app")
    got: list = []
    deadline = time.monotonic() + 60
    while len(got) < 10 and time.monotonic() < deadline:
        got += [m for m in consumer.consume(10 - len(got), timeout=1) if not m.error()]
    assert len(got) == 10

    def transform(msgs, commit: bool) -> None:
        producer.begin_transaction()
        for m in msgs:
            producer.produce("out", value=b"x" + m.value())
        positions = [TopicPartition("in", 0, msgs[-1].offset() + 1)]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        producer.flush(30)
        # before EndTxn the offsets are pending: OffsetFetch must not show them
        assert committed_offsets(bs, "ctp", "in", 1)[0] < msgs[-1].offset() + 1
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    transform(got[:5], commit=True)
    assert committed_offsets(bs, "ctp", "in", 1) == {0: 5}
    transform(got[5:10], commit=False)
    assert committed_offsets(bs, "ctp", "in", 1) == {0: 5}   # the abort dropped offset 10
    consumer.close()
    assert consume_all(bs, "out", 1, "read_committed") == sorted(b"x%d" % i for i in range(5))
