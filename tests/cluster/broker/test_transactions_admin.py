"""Transactions seen through other clients: kafka-python's transactional producer and
its admin client's ListTransactions / DescribeTransactions."""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from tests.cluster.broker.test_transactions_clients import consume_all, create_topics


def test_kafka_python_transactions_and_admin_views(cluster) -> None:
    bs = cluster.bootstrap
    create_topics(bs, "kp")
    p = KafkaProducer(bootstrap_servers=bs, transactional_id="kp-writer", linger_ms=5)
    admin = KafkaAdminClient(bootstrap_servers=bs)
    try:
        p.init_transactions()
        p.begin_transaction()
        for i in range(5):
            p.send("kp", key=b"k", value=b"keep%d" % i)
        p.commit_transaction()
        p.begin_transaction()
        p.send("kp", key=b"k", value=b"drop").get(timeout=30)
        desc = admin.describe_transactions(["kp-writer"])["kp-writer"]
        assert str(desc.state.value) == "Ongoing"
        assert {(tp.topic, tp.partition) for tp in desc.topic_partitions} <= {("kp", 0), ("kp", 1)}
        assert desc.topic_partitions and desc.transaction_timeout_ms > 0
        listed = [t for ts in admin.list_transactions().values() for t in ts]
        assert [(t.transactional_id, str(t.state.value)) for t in listed] == [("kp-writer", "Ongoing")]
        assert [t for ts in admin.list_transactions(state_filters=["CompleteCommit"]).values() for t in ts] == []
        p.abort_transaction()
        assert str(admin.describe_transactions(["kp-writer"])["kp-writer"].state.value) == "CompleteAbort"
    finally:
        p.close()
        admin.close()
    assert consume_all(bs, "kp", 2, "read_committed") == [b"keep%d" % i for i in range(5)]
    assert len(consume_all(bs, "kp", 2, "read_uncommitted")) == 6
