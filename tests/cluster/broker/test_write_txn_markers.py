"""WriteTxnMarkers (key 27) on the wire: epochs checked as Kafka does, missing partitions
named, the marker closes the producer's open transaction (what `kafka-transactions abort`
relies on; the Java tool itself runs in test_transactions_java.py)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, produce


def markers(pid: int, epoch: int, commit: bool, topic: str, partitions: list[int]) -> dict:
    return {"markers": [{"producer_id": pid, "producer_epoch": epoch, "transaction_result": commit,
                         "coordinator_epoch": 0,
                         "topics": [{"name": topic, "partition_indexes": partitions}]}]}


def codes(resp) -> dict[int, int]:
    return {int(p.partition_index): int(p.error_code) for m in resp.markers for t in m.topics for p in t.partitions}


async def test_epochs_and_missing_partitions(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t")
    # an idempotent producer at epoch 2 has written to partition 0
    batch = build_batch([(b"k", b"v", [], 1000)], producer_id=4242, producer_epoch=2, base_sequence=0)
    assert (await produce(conn, "t", 0, batch)).error_code == 0
    resp = await conn.call(27, 1, markers(4242, 1, False, "t", [0, 9]))
    assert codes(resp) == {0: ErrorCode.invalid_producer_epoch, 9: ErrorCode.unknown_topic_or_partition}
    resp = await conn.call(27, 1, markers(4242, 2, False, "t", [0]))
    assert codes(resp) == {0: ErrorCode.none}
    # the marker is in the log after the record: high watermark 2
    listed = await conn.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1, "current_leader_epoch": -1}]}]})
    assert listed.topics[0].partitions[0].offset == 2
    conn.close()


async def test_abort_marker_closes_an_open_transaction(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t")
    part = broker.partitions[("t", 0)]
    state = broker.producer_state.for_partition(part)
    # an open transaction, as a mirror copy or a lost coordinator can leave it
    state.txns.on_data(77, 0)
    assert state.describe() == [] and state.txns.last_stable_offset(10) == 0
    resp = await conn.call(27, 1, markers(77, 0, False, "t", [0]))
    assert codes(resp) == {0: ErrorCode.none}
    assert state.txns.ongoing == {} and [a.producer_id for a in state.txns.aborted] == [77]
    conn.close()


async def test_refused_on_a_mirror_topic(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "m", 1, {"dcmirror.mirror.source": "east"})
    resp = await conn.call(27, 1, markers(77, 0, False, "m", [0]))
    assert codes(resp) == {0: ErrorCode.policy_violation}
    assert broker.partitions[("m", 0)].log.log_end_offset == 0
    conn.close()
