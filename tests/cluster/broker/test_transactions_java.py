"""Apache Kafka's Java client (4.3.1) running transactions against our broker.

`TransactionalMessageCopier` is the consume-transform-produce program Kafka's own system
tests use for exactly-once: it copies an input partition to an output topic in
transactions, sending the consumed offsets with each one, and (with
`--enable-random-aborts`) aborts some transactions and rewinds to the committed offsets.
Exactly-once holds only if read_committed, aborted ranges, pending offsets and fencing all
behave as in Kafka. `kafka-transactions` (TransactionsCommand) then lists and describes
the transactional id through ListTransactions / DescribeTransactions, and the output
partition's producers through DescribeProducers.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from peers.kafka_broker import kafka_tool
from tests.cluster.broker.test_transactions_clients import consume_all, create_topics
from tests.interop.conftest import require_kafka
from tests.processes import ClusterProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

COPIER = "org.apache.kafka.tools.TransactionalMessageCopier"
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"
N = 1000


def test_java_transactional_copier_is_exactly_once(cluster: ClusterProcess) -> None:
    require_kafka()
    bs = cluster.bootstrap
    create_topics(bs, "copy-in", partitions=1)
    create_topics(bs, "copy-out", partitions=3)
    seed = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for i in range(N):
        seed.produce("copy-in", key=b"%d" % i, value=b"m%04d" % i)
    assert seed.flush(30) == 0

    res = kafka_tool(COPIER, "--broker-list", bs, "--input-topic", "copy-in", "--input-partition", "0",
                     "--output-topic", "copy-out", "--transactional-id", "java-copier",
                     "--consumer-group", "copier", "--transaction-size", "37",
                     "--enable-random-aborts", "--use-group-metadata", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert '"remaining":0' in res.stdout.replace(" ", ""), res.stdout[-2000:]

    committed = consume_all(bs, "copy-out", 3, "read_committed")
    assert committed == sorted(b"m%04d" % i for i in range(N))   # each exactly once
    everything = consume_all(bs, "copy-out", 3, "read_uncommitted")
    # about a third of the 28 transactions abort at random (none: p ~ 1e-5), so aborted
    # copies are in the log and read_committed above really had to skip them
    assert len(everything) > N
    c = Consumer({"bootstrap.servers": bs, "group.id": "copier"})
    try:
        assert c.committed([TopicPartition("copy-in", 0)], timeout=30)[0].offset == N
    finally:
        c.close()

    listed = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "java-copier" in listed.stdout and "CompleteCommit" in listed.stdout, listed.stdout
    described = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "describe", "--transactional-id", "java-copier")
    assert described.returncode == 0, described.stderr[-3000:]
    assert "CompleteCommit" in described.stdout, described.stdout
    producers = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "describe-producers",
                           "--topic", "copy-out", "--partition", "0")
    assert producers.returncode == 0, producers.stderr[-3000:]
    header, *rows = [line.split() for line in producers.stdout.strip().splitlines()]
    assert header[:2] == ["ProducerId", "ProducerEpoch"], producers.stdout
    assert len(rows) == 1 and rows[0][-1] == "None", producers.stdout  # no open transaction
