"""kill -9 of a broker process with a transaction open: never half-visible afterwards.

Either the transaction is finished by its producer after the restart (the coordinator's
journal still knows its partitions) or it is aborted when its timeout passes; in both
cases read_committed consumers see all of it or none of it, and committed transactions
from before the crash are intact.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from tests.cluster.broker.test_transactions_clients import consume_all, create_topics, send_txn, txn_producer


def end_offsets(bs: str, topic: str, partitions: int, isolation: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bs, "group.id": "probe", "isolation.level": isolation})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def test_open_transaction_aborted_by_timeout_after_kill9(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "crash")
    before = [b"before%d" % i for i in range(10)]
    p = txn_producer(bs, "crash-writer", **{"transaction.timeout.ms": 4000})
    send_txn(p, "crash", before, True)
    p.begin_transaction()
    for i in range(10):
        p.produce("crash", value=b"open%d" % i)
    p.flush(30)
    cluster.kill9()
    del p   # the producer process "dies" too; only the broker's timeout can end the txn
    cluster.start()
    # until the timeout passes the open transaction holds the LSO: nothing of it is readable
    assert set(consume_all(bs, "crash", 2, "read_committed")) <= set(before)
    deadline = time.monotonic() + 60
    while end_offsets(bs, "crash", 2, "read_committed") != end_offsets(bs, "crash", 2, "read_uncommitted"):
        assert time.monotonic() < deadline, "the open transaction was never aborted"
        time.sleep(0.2)
    assert consume_all(bs, "crash", 2, "read_committed") == sorted(before)
    assert "timed out" in cluster.log_text()   # ended by the coordinator's timeout
    assert len(consume_all(bs, "crash", 2, "read_uncommitted")) == 20
    # the transactional id is usable again and its next transaction commits
    q = txn_producer(bs, "crash-writer")
    send_txn(q, "crash", [b"after"], True)
    assert consume_all(bs, "crash", 2, "read_committed") == sorted(before + [b"after"])


def test_producer_finishes_its_transaction_after_broker_kill9(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "resume")
    p = txn_producer(bs, "resume-writer")
    send_txn(p, "resume", [b"first"], True)
    p.begin_transaction()
    for i in range(10):
        p.produce("resume", value=b"second%d" % i)
    p.flush(30)
    cluster.kill9()
    cluster.start()
    p.commit_transaction(60)
    assert consume_all(bs, "resume", 2, "read_committed") == sorted([b"first"] + [b"second%d" % i for i in range(10)])
