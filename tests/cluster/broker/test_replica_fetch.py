"""Follower fetches against a real broker over the wire (cluster/broker/replicas.py).

The broker leads partition t-0 with a follower, broker 2, whose fetcher is the pure
FollowerPartition over a local PartitionLog: its requests are what a follower broker will
send, and the broker's answers are applied by the same code. Checks: follower reads go
beyond the high watermark, consumers stay capped at it, the watermark moves with the
follower's fetch offset, acks=all waits for it (or NOT_ENOUGH_REPLICAS / REQUEST_TIMED_OUT),
epochs are fenced as Kafka, a diverged follower gets DivergingEpoch and truncates, and a
partition without followers answers a replica fetch with NOT_LEADER_OR_FOLLOWER.
"""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker import replicas
from cluster.log import LogConfig, PartitionLog
from cluster.replication.follower import FetchState, FollowerPartition
from cluster.replication.leader import ReplicationConfig
from cluster.replication.state import PartitionAssignment
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create, fetch_all, produce_body

TS = 1_700_000_000_000


def batch(v: bytes) -> bytes:
    return build_batch([(b"k", v, [], TS)])


async def produce(conn, records: bytes, acks: int = -1, timeout: int = 5000, topic: str = "t"):
    body = produce_body(topic, 0, records)
    body.update(acks=acks, timeout=timeout)
    return (await conn.call(0, 9, body)).responses[0].partition_responses[0]


async def replica_fetch(conn, fields: dict, replica_id: int = 2, version: int = 12, topic: str = "t",
                        topic_id=None):
    body = {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": topic, "partitions": [fields]}]}
    if version >= 15:
        body["replica_state"] = {"replica_id": replica_id, "replica_epoch": 3}
        body["topics"] = [{"topic_id": topic_id, "partitions": [fields]}]
    else:
        body["replica_id"] = replica_id
    return (await conn.call(1, version, body)).responses[0].partitions[0]


def apply(fp: FollowerPartition, p) -> FetchState:
    div = p.diverging_epoch
    return fp.on_fetch_response(
        error_code=p.error_code, high_watermark=p.high_watermark, log_start_offset=p.log_start_offset,
        records=p.records, diverging_epoch=(div.epoch, div.end_offset) if div.end_offset >= 0 else None,
        now_ms=1).state


@pytest.fixture
async def led(broker, tmp_path):
    """(conn, leader Partition, follower) with t-0 led by the broker, ISR {1, 2}, min ISR 2."""
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "t")).error_code == ErrorCode.none
    assert (await produce(conn, batch(b"before"))).error_code == ErrorCode.none  # single replica
    part = broker.partitions[("t", 0)]
    rec = PartitionAssignment(broker.node_id, 1, (broker.node_id, 2), (broker.node_id, 2), 0)
    part.lead(broker.node_id, rec, ReplicationConfig(60_000, 2),
              high_watermark=part.log.log_end_offset, now_ms=replicas.now_ms())
    log = PartitionLog.open(tmp_path / "follower" / "t-0", LogConfig())
    fp = FollowerPartition("t", 0, 2, 3, rec, log)
    yield conn, part, fp
    log.close()
    conn.close()


async def test_follower_reads_past_hw_and_moves_it(led, broker):
    conn, part, fp = led
    assert part.high_watermark == 1
    assert (await produce(conn, batch(b"one"), acks=1)).error_code == ErrorCode.none
    assert part.high_watermark == 1 and part.log.log_end_offset == 2
    consumer = await fetch_all(conn, "t", 0)
    assert consumer == part.log.read(0, 1 << 20, max_offset=1)  # capped at the HW
    p = await replica_fetch(conn, fp.fetch_request_fields(1 << 20))
    assert apply(fp, p) is FetchState.FETCHING
    assert fp.log.log_end_offset == 2 and p.high_watermark == 1
    assert fp.log.read(0, 1 << 20) == part.log.read(0, 1 << 20)  # the leader's bytes
    p = await replica_fetch(conn, fp.fetch_request_fields(1 << 20), version=16, topic_id=broker.catalogue.topics["t"].uuid)
    assert p.error_code == ErrorCode.none and p.high_watermark == 2
    apply(fp, p)
    assert fp.high_watermark == 2 and part.high_watermark == 2
    assert await fetch_all(conn, "t", 0) == part.log.read(0, 1 << 20)


async def test_acks_all_waits_for_the_follower(led, broker):
    conn, part, fp = led
    apply(fp, await replica_fetch(conn, fp.fetch_request_fields(1 << 20)))
    follower_conn = await RawConn.open(broker.config.port)
    pending = asyncio.ensure_future(produce(conn, batch(b"acked")))
    await until(lambda: part.log.log_end_offset == 2)
    assert not pending.done()
    apply(fp, await replica_fetch(follower_conn, fp.fetch_request_fields(1 << 20)))  # gets it
    assert not pending.done()
    apply(fp, await replica_fetch(follower_conn, fp.fetch_request_fields(1 << 20)))  # reports it
    r = await asyncio.wait_for(pending, 5)
    assert r.error_code == ErrorCode.none and r.base_offset == 1
    follower_conn.close()


async def test_acks_all_times_out_and_refuses_under_min_isr(led, broker):
    conn, part, fp = led
    r = await produce(conn, batch(b"late"), timeout=200)
    assert r.error_code == ErrorCode.request_timed_out
    assert (await produce(conn, batch(b"acks1"), acks=1)).error_code == ErrorCode.none
    part.replica.on_isr_committed(PartitionAssignment(broker.node_id, 1, (broker.node_id,),
                                                      (broker.node_id, 2), 1), replicas.now_ms())
    end = part.log.log_end_offset
    assert (await produce(conn, batch(b"refused"))).error_code == ErrorCode.not_enough_replicas
    assert part.log.log_end_offset == end  # nothing appended


async def test_epochs_are_fenced(led):
    conn, part, fp = led
    fields = fp.fetch_request_fields(1 << 20)
    assert (await replica_fetch(conn, {**fields, "current_leader_epoch": 0})).error_code \
        == ErrorCode.fenced_leader_epoch
    assert (await replica_fetch(conn, {**fields, "current_leader_epoch": 2})).error_code \
        == ErrorCode.unknown_leader_epoch
    assert (await replica_fetch(conn, fields, replica_id=7)).error_code == ErrorCode.not_leader_or_follower


async def test_diverged_follower_truncates(led):
    conn, part, fp = led
    apply(fp, await replica_fetch(conn, fp.fetch_request_fields(1 << 20)))
    # a tail in epoch 0 the leader never had (it led epoch 0 with one record, then epoch 1)
    fp.log.append_preserving([build_batch([(b"x", b"stray", [], TS)] * 3, base_offset=1)], now_ms=1)
    assert (await produce(conn, batch(b"epoch1"), acks=1)).error_code == ErrorCode.none
    p = await replica_fetch(conn, fp.fetch_request_fields(1 << 20))
    assert (p.diverging_epoch.epoch, p.diverging_epoch.end_offset) == (0, 1) and not p.records
    apply(fp, p)
    assert fp.log.log_end_offset == 1
    apply(fp, await replica_fetch(conn, fp.fetch_request_fields(1 << 20)))
    assert fp.log.read(0, 1 << 20) == part.log.read(0, 1 << 20)


async def test_single_replica_partition_has_no_followers(led):
    conn, part, fp = led
    assert (await create(conn, "solo")).error_code == ErrorCode.none
    assert (await produce(conn, batch(b"v"), topic="solo")).error_code == ErrorCode.none
    p = await replica_fetch(conn, {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                                   "last_fetched_epoch": -1, "log_start_offset": 0,
                                   "partition_max_bytes": 1 << 20}, topic="solo")
    assert p.error_code == ErrorCode.not_leader_or_follower
    assert await fetch_all(conn, "solo", 0)  # consumers unaffected: HW = log end


async def list_latest(conn, replica_id: int = -1):
    resp = await conn.call(2, 7, {"replica_id": replica_id, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]})
    return resp.topics[0].partitions[0]


async def test_list_offsets_of_a_new_leader(led, broker):
    conn, part, fp = led
    rec = PartitionAssignment(broker.node_id, 2, (broker.node_id, 2), (broker.node_id, 2), 1)
    # leads epoch 2 knowing nothing committed yet (as after a restart): HW 0 < epoch start 1
    part.lead(broker.node_id, rec, ReplicationConfig(60_000, 2), high_watermark=0, now_ms=replicas.now_ms())
    fp.become_follower(rec)
    assert (await list_latest(conn)).error_code == ErrorCode.offset_not_available
    follower_view = await list_latest(conn, replica_id=2)
    assert (follower_view.error_code, follower_view.offset) == (0, 1)  # the log end
    apply(fp, await replica_fetch(conn, fp.fetch_request_fields(1 << 20)))
    apply(fp, await replica_fetch(conn, fp.fetch_request_fields(1 << 20)))
    latest = await list_latest(conn)
    assert (latest.error_code, latest.offset) == (0, 1)
