"""Transactions seen through other clients: kafka-python's and aiokafka's transactional
producers (with offsets) and kafka-python's ListTransactions / DescribeTransactions /
DescribeProducers."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import UnknownTopicOrPartitionError

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
        # DescribeProducers (kafka-transactions describe-producers): the open transaction's
        # first offset on the partition that has its data, nothing open elsewhere
        tps = [TopicPartition("kp", 0), TopicPartition("kp", 1)]
        states = admin.describe_producers(tps)
        open_starts = {tp.partition: ps.current_transaction_start_offset
                       for tp, st in states.items() for ps in st.active_producers}
        assert len({ps.producer_id for st in states.values() for ps in st.active_producers}) == 1
        assert sorted(open_starts.values())[-1] >= 0  # the "drop" record's partition
        for st in states.values():
            for ps in st.active_producers:
                assert ps.producer_epoch >= 0 and ps.last_timestamp > 0 and ps.last_sequence >= 0
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.describe_producers([TopicPartition("kp", 7)])
        listed = [t for ts in admin.list_transactions().values() for t in ts]
        assert [(t.transactional_id, str(t.state.value)) for t in listed] == [("kp-writer", "Ongoing")]
        assert [t for ts in admin.list_transactions(state_filters=["CompleteCommit"]).values() for t in ts] == []
        p.abort_transaction()
        assert str(admin.describe_transactions(["kp-writer"])["kp-writer"].state.value) == "CompleteAbort"
        after = admin.describe_producers(tps)
        assert all(ps.current_transaction_start_offset == -1
                   for st in after.values() for ps in st.active_producers)
    finally:
        p.close()
        admin.close()
    assert consume_all(bs, "kp", 2, "read_committed") == [b"keep%d" % i for i in range(5)]
    assert len(consume_all(bs, "kp", 2, "read_uncommitted")) == 6


def test_aiokafka_transactions_with_offsets(cluster) -> None:
    """aiokafka speaks the oldest versions (InitProducerId/AddPartitions/EndTxn v0)."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTP
    from confluent_kafka import Consumer, TopicPartition

    bs = cluster.bootstrap
    create_topics(bs, "aio", partitions=1)

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bs, transactional_id="aio-writer")
        await p.start()
        try:
            async with p.transaction():
                await p.send_and_wait("aio", b"yes")
                await p.send_offsets_to_transaction({AioTP("aio", 0): 7}, "aio-group")
            await p.begin_transaction()
            await p.send_and_wait("aio", b"no")
            await p.send_offsets_to_transaction({AioTP("aio", 0): 9}, "aio-group")
            await p.abort_transaction()
        finally:
            await p.stop()

    asyncio.run(run())
    assert consume_all(bs, "aio", 1, "read_committed") == [b"yes"]
    c = Consumer({"bootstrap.servers": bs, "group.id": "aio-group"})
    try:
        assert c.committed([TopicPartition("aio", 0)], timeout=30)[0].offset == 7
    finally:
        c.close()
