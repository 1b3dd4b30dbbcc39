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


def _latest_stable(bs: str, topic: str) -> int:
    """The end a read_committed consumer sees (the last stable offset) of partition 0."""
    c = Consumer({"bootstrap.servers": bs, "group.id": "lso-probe", "isolation.level": "read_committed"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30, cached=False)[1]
    finally:
        c.close()


def test_kafka_transactions_aborts_a_hanging_transaction(cluster: ClusterProcess) -> None:
    """`kafka-transactions describe-producers` finds an open transaction's start offset and
    `kafka-transactions abort` ends it through WriteTxnMarkers: the last stable offset moves
    past it and read_committed readers skip its records."""
    require_kafka()
    bs = cluster.bootstrap
    create_topics(bs, "hang", partitions=1)
    plain = Producer({"bootstrap.servers": bs})
    plain.produce("hang", value=b"before", partition=0)
    assert plain.flush(30) == 0
    stuck = Producer({"bootstrap.servers": bs, "transactional.id": "stuck", "linger.ms": 5})
    stuck.init_transactions(30)
    stuck.begin_transaction()
    for i in range(3):
        stuck.produce("hang", value=b"open%d" % i, partition=0)
    assert stuck.flush(30) == 0
    plain.produce("hang", value=b"after", partition=0)
    assert plain.flush(30) == 0
    assert _latest_stable(bs, "hang") == 1  # held at the open transaction's first offset

    producers = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "describe-producers",
                           "--topic", "hang", "--partition", "0")
    assert producers.returncode == 0, producers.stderr[-3000:]
    open_rows = [r for r in (line.split() for line in producers.stdout.splitlines()[1:]) if r[-1] != "None"]
    assert [r[-1] for r in open_rows] == ["1"], producers.stdout

    # find-hanging walks every partition's producers and asks the coordinator about each
    # open one: this transaction is known and young, so nothing is reported as hanging
    hanging = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "find-hanging", "--broker-id", "1")
    assert hanging.returncode == 0, hanging.stdout[-3000:] + hanging.stderr[-3000:]
    header, *hanging_rows = hanging.stdout.strip().splitlines()
    assert header.split()[:3] == ["Topic", "Partition", "ProducerId"] and hanging_rows == [], hanging.stdout

    aborted = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "abort", "--topic", "hang",
                         "--partition", "0", "--start-offset", "1")
    assert aborted.returncode == 0, aborted.stdout[-3000:] + aborted.stderr[-3000:]
    assert _latest_stable(bs, "hang") == 6  # 1 + 3 open + 1 after + the ABORT marker
    assert consume_all(bs, "hang", 1, "read_committed") == [b"after", b"before"]
    again = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "describe-producers",
                       "--topic", "hang", "--partition", "0")
    assert all(line.split()[-1] == "None" for line in again.stdout.splitlines()[1:]), again.stdout


def test_find_hanging_reports_a_transaction_no_coordinator_knows(cluster: ClusterProcess) -> None:
    """A mirrored transactional batch whose transaction never ended here (its coordinator
    is the source cluster's) is what `find-hanging` exists for: it is listed. `abort` is
    refused while the topic is a mirror (the source's marker will come, and a local one
    would shift the copy's offsets); promoting the topic aborts the orphan by itself."""
    require_kafka()
    import asyncio

    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    from cluster.wire.batch_builder import build_batch
    from tests.cluster.broker.rawconn import RawConn
    from tests.cluster.broker.test_bad_input import create
    from tests.cluster.broker.test_mirror_append import mirror_append

    bs = cluster.bootstrap
    orphan = build_batch([(b"k", b"orphan", [], 1_700_000_000_000)], producer_id=5555,
                         producer_epoch=0, base_sequence=0, transactional=True)

    async def plant() -> None:
        conn = await RawConn.open(int(bs.rsplit(":", 1)[1]))
        assert (await create(conn, "mirrored", 1, {"dcmirror.mirror.source": "east"})).error_code == 0
        assert (await mirror_append(conn, "mirrored", 0, orphan)).error_code == 0
        conn.close()

    asyncio.run(plant())
    hanging = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "find-hanging", "--broker-id", "1")
    assert hanging.returncode == 0, hanging.stdout[-3000:] + hanging.stderr[-3000:]
    rows = [line.split() for line in hanging.stdout.strip().splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[5]) for r in rows] == [("mirrored", "0", "5555", "0")], hanging.stdout
    abort = [TRANSACTIONS, "--bootstrap-server", bs, "abort", "--topic", "mirrored",
             "--partition", "0", "--start-offset", "0"]
    refused = kafka_tool(*abort)
    assert refused.returncode != 0 and "policy" in refused.stderr, refused.stderr[-3000:]

    # promotion (failover drops the mirror marking) aborts such orphans by itself
    admin = AdminClient({"bootstrap.servers": bs})
    res = ConfigResource(ConfigResource.Type.TOPIC, "mirrored", incremental_configs=[
        ConfigEntry("dcmirror.mirror.source", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res])[res].result(30)
    again = kafka_tool(TRANSACTIONS, "--bootstrap-server", bs, "find-hanging", "--broker-id", "1")
    assert again.stdout.strip().splitlines()[1:] == [], again.stdout
    assert consume_all(bs, "mirrored", 1, "read_committed") == []
