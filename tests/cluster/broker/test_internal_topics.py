"""`__consumer_offsets` and `__transaction_state` in Metadata, and what clients may do to them.

As Apache Kafka 4.3.1 (tests/interop/test_reference_internal_topics.py compares): unknown
but flagged internal before first use, listed with every partition after the first
FindCoordinator of their kind, still listed after a restart; Produce refused with
INVALID_TOPIC_EXCEPTION. DeleteTopics/CreatePartitions refused too (Kafka allows them);
ListOffsets and DescribeProducers see empty partitions.
"""

from __future__ import annotations

from pathlib import Path

from kio.schema.errors import ErrorCode as E

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn

CO, TS = "__consumer_offsets", "__transaction_state"
_META = {"allow_auto_topic_creation": True, "include_topic_authorized_operations": False}


async def _meta(conn: RawConn, names: list[str] | None) -> dict:
    topics = None if names is None else [{"name": n, "topic_id": None} for n in names]
    r = await conn.call(3, 12, {"topics": topics, **_META})
    return {t.name: t for t in r.topics}


async def test_listed_after_first_use_and_after_restart(tmp_path: Path) -> None:
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0))
    await broker.start()
    try:
        conn = await RawConn.open(broker.advertised_port)
        before = await _meta(conn, [CO, TS])
        assert [(t.error_code, t.is_internal, len(t.partitions)) for t in before.values()] == [
            (E.unknown_topic_or_partition, True, 0)] * 2
        assert not {CO, TS} & set(await _meta(conn, None))
        await conn.call(10, 4, {"key_type": 0, "coordinator_keys": ["g"]})
        after = await _meta(conn, [CO, TS])
        assert (after[CO].error_code, after[CO].is_internal, len(after[CO].partitions)) == (0, True, 50)
        assert after[TS].error_code == E.unknown_topic_or_partition
        await conn.call(10, 4, {"key_type": 1, "coordinator_keys": ["tx"]})
        listed = await _meta(conn, None)
        assert listed[CO].is_internal and listed[TS].is_internal and len(listed[TS].partitions) == 50
        by_id = await conn.call(3, 12, {"topics": [{"name": None, "topic_id": listed[TS].topic_id}], **_META})
        assert (by_id.topics[0].name, by_id.topics[0].is_internal) == (TS, True)
        topic_id = listed[CO].topic_id
        conn.close()
    finally:
        await broker.stop()
    again = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0))
    await again.start()
    try:
        conn = await RawConn.open(again.advertised_port)
        listed = await _meta(conn, None)
        assert listed[CO].topic_id == topic_id and listed[TS].is_internal
        conn.close()
    finally:
        await again.stop()


async def test_produce_delete_grow_create_refused(broker) -> None:
    conn = await RawConn.open(broker.advertised_port)
    try:
        await conn.call(10, 4, {"key_type": 0, "coordinator_keys": ["g"]})
        batch = build_batch([(b"k", b"v", [], 0)])
        p = await conn.call(0, 9, {"acks": 1, "timeout": 1000, "transactional_id": None, "topic_data": [
            {"name": n, "partition_data": [{"index": 0, "records": batch}]} for n in (CO, TS)]})
        assert [r.partition_responses[0].error_code for r in p.responses] == [E.invalid_topic_exception] * 2
        d = await conn.call(20, 6, {"topics": [{"name": CO, "topic_id": None}], "timeout": 1000})
        assert d.responses[0].error_code == E.invalid_topic_exception
        for validate in (True, False):
            g = await conn.call(37, 3, {"topics": [{"name": CO, "count": 60, "assignments": None}],
                                        "timeout": 1000, "validate_only": validate})
            assert g.results[0].error_code == E.invalid_topic_exception
        c = await conn.call(19, 7, {"topics": [{"name": n, "num_partitions": 1, "replication_factor": 1,
                                                "assignments": [], "configs": []} for n in (CO, TS)],
                                    "timeout": 1000, "validate_only": False})
        assert [t.error_code for t in c.topics] == [E.topic_already_exists, E.invalid_topic_exception]
        listed = await _meta(conn, [CO])
        assert len(listed[CO].partitions) == 50 and CO not in broker.catalogue.topics
        # tools that walk every partition (find-hanging, kafka-get-offsets) see empty ones
        lo = await conn.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": CO, "partitions": [{"partition_index": 49, "current_leader_epoch": -1, "timestamp": -1}]}]})
        assert (lo.topics[0].partitions[0].error_code, lo.topics[0].partitions[0].offset) == (0, 0)
        dp = await conn.call(61, 0, {"topics": [{"name": CO, "partition_indexes": [0, 50]}]})
        assert [(p.error_code, len(p.active_producers)) for p in dp.topics[0].partitions] == [
            (0, 0), (E.unknown_topic_or_partition, 0)]
    finally:
        conn.close()
