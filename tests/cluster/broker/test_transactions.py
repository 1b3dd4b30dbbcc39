"""Transactions at the protocol level, against an in-process broker over real sockets.

Raw requests (no client library in between) so every Kafka rule is checked directly:
fencing, produce refused outside a transaction, last stable offset and aborted ranges
for read_committed fetches, offsets pending until commit, and state rebuilt after a
restart from the journal and the partition logs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kio.schema.errors import ErrorCode as E

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire import control
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batches
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create
from tests.cluster.broker.test_bad_input import produce as raw_produce
from tests.cluster.broker.test_mirror_append import mirror_append

TID = "tx-1"


async def produce(conn: RawConn, topic: str, partition: int, records: bytes):
    """Produce as a transactional producer does: naming its transactional id (without one,
    transactional records fail the request with TRANSACTIONAL_ID_AUTHORIZATION_FAILED)."""
    return await raw_produce(conn, topic, partition, records, transactional_id=TID)


async def init_pid(conn: RawConn, tid: str = TID, timeout_ms: int = 60_000, pid: int = -1, epoch: int = -1):
    r = await conn.call(22, 4, {"transactional_id": tid, "transaction_timeout": timeout_ms,
                                "producer_id": pid, "producer_epoch": epoch})
    return r.error_code, r.producer_id, r.producer_epoch


async def add_partitions(conn: RawConn, pid: int, epoch: int, topic: str, parts: list[int], tid: str = TID):
    r = await conn.call(24, 3, {"v3_and_below_transactional_id": tid, "v3_and_below_producer_id": pid,
                                "v3_and_below_producer_epoch": epoch,
                                "v3_and_below_topics": [{"name": topic, "partitions": parts}]})
    return {(t.name, p.partition_index): p.partition_error_code
            for t in r.results_by_topic_v3_and_below for p in t.results_by_partition}


async def end_txn(conn: RawConn, pid: int, epoch: int, commit: bool, tid: str = TID):
    r = await conn.call(26, 3, {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch,
                                "committed": commit})
    return r.error_code


async def fetch(conn: RawConn, topic: str, isolation: int, offset: int = 0, partition: int = 0):
    r = await conn.call(1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
                                "isolation_level": isolation, "session_id": 0, "session_epoch": -1,
                                "topics": [{"topic": topic, "partitions": [
                                    {"partition": partition, "fetch_offset": offset,
                                     "partition_max_bytes": 1 << 20}]}],
                                "forgotten_topics_data": [], "rack_id": ""})
    return r.responses[0].partitions[0]


def values(records: bytes) -> list[bytes]:
    return [r.value for h, rs in decode_batches(records) if not h.is_control for r in rs]


def txn_batch(pid: int, epoch: int, seq: int, vals: list[bytes]) -> bytes:
    return build_batch([(None, v, [], 1000) for v in vals], producer_id=pid, producer_epoch=epoch,
                       base_sequence=seq, transactional=True)


def aborted(entry) -> list[tuple[int, int]]:
    return [(a.producer_id, a.first_offset) for a in entry.aborted_transactions or []]


async def test_abort_then_commit_read_committed_and_uncommitted(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 2)
    err, pid, epoch = await init_pid(conn)
    assert err == E.none and epoch == 0
    # transactional data for a partition outside any transaction is refused
    r = await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"a"]))
    assert r.error_code == E.invalid_txn_state
    assert await add_partitions(conn, pid, epoch, "t", [0]) == {("t", 0): E.none}
    assert (await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"a1", b"a2"]))).error_code == E.none
    assert (await produce(conn, "t", 1, txn_batch(pid, epoch, 0, [b"x"]))).error_code == E.invalid_txn_state
    # open transaction: read_committed stops at its first offset, read_uncommitted sees it
    rc = await fetch(conn, "t", 1)
    assert rc.last_stable_offset == 0 and rc.high_watermark == 2 and values(rc.records) == []
    assert values((await fetch(conn, "t", 0)).records) == [b"a1", b"a2"]
    assert await end_txn(conn, pid, epoch, False) == E.none
    rc = await fetch(conn, "t", 1)
    assert rc.last_stable_offset == rc.high_watermark == 3   # 2 records + ABORT marker
    assert aborted(rc) == [(pid, 0)]
    # the second transaction commits
    assert await add_partitions(conn, pid, epoch, "t", [0]) == {("t", 0): E.none}
    assert (await produce(conn, "t", 0, txn_batch(pid, epoch, 2, [b"b1"]))).error_code == E.none
    assert await end_txn(conn, pid, epoch, True) == E.none
    assert await end_txn(conn, pid, epoch, True) == E.none   # a retry
    rc = await fetch(conn, "t", 1)
    assert rc.last_stable_offset == 5
    assert values(rc.records) == [b"a1", b"a2", b"b1"]  # the consumer drops a1, a2 with aborted()
    assert aborted(rc) == [(pid, 0)]
    assert aborted(await fetch(conn, "t", 1, offset=3)) == []
    markers = [h for h, _ in decode_batches(rc.records) if h.is_control]
    assert [m.base_offset for m in markers] == [2, 4]
    conn.close()


async def test_fencing_and_unknown_partitions(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 1)
    _, pid, e0 = await init_pid(conn)
    _, pid2, e1 = await init_pid(conn)
    assert (pid2, e1) == (pid, e0 + 1)
    assert await add_partitions(conn, pid, e0, "t", [0]) == {("t", 0): E.producer_fenced}
    assert await end_txn(conn, pid, e0, True) == E.producer_fenced
    res = await add_partitions(conn, pid, e1, "nope", [0])
    assert res == {("nope", 0): E.unknown_topic_or_partition}
    # a zombie with the old epoch cannot write into the new transaction
    assert await add_partitions(conn, pid, e1, "t", [0]) == {("t", 0): E.none}
    r = await produce(conn, "t", 0, txn_batch(pid, e0, 0, [b"zombie"]))
    assert r.error_code in (E.invalid_producer_epoch, E.producer_fenced)
    # clients may not write control batches
    marker = control.build_control_batch(pid, e1, True, 0, 1)
    assert (await produce(conn, "t", 0, marker)).error_code == E.invalid_record
    conn.close()


async def test_reinit_aborts_the_ongoing_transaction(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 1)
    _, pid, epoch = await init_pid(conn)
    await add_partitions(conn, pid, epoch, "t", [0])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"lost"]))
    assert (await init_pid(conn))[0] == E.concurrent_transactions
    err, pid2, epoch2 = await init_pid(conn)
    assert err == E.none and pid2 == pid and epoch2 == epoch + 2
    rc = await fetch(conn, "t", 1)
    assert rc.last_stable_offset == 2 and aborted(rc) == [(pid, 0)]
    conn.close()


async def restarted(broker: Broker) -> Broker:
    await broker.stop()
    b = Broker(BrokerConfig(name="test", data_dir=Path(broker.config.data_dir), port=0))
    await b.start()
    return b


async def test_state_rebuilt_after_restart(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 1)
    _, pid, epoch = await init_pid(conn)
    await add_partitions(conn, pid, epoch, "t", [0])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"gone"]))
    await end_txn(conn, pid, epoch, False)
    await add_partitions(conn, pid, epoch, "t", [0])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 1, [b"open"]))
    conn.close()
    b = await restarted(broker)
    try:
        conn = await RawConn.open(b.config.port)
        rc = await fetch(conn, "t", 1)
        assert rc.last_stable_offset == 2 and aborted(rc) == [(pid, 0)]   # still open after restart
        # the coordinator remembers the transaction: the producer can finish it
        assert await end_txn(conn, pid, epoch, True) == E.none
        rc = await fetch(conn, "t", 1)
        assert rc.last_stable_offset == rc.high_watermark == 4
        assert values(rc.records) == [b"gone", b"open"] and aborted(rc) == [(pid, 0)]
        # and a new producer instance is fenced against the old epoch
        err, _, epoch2 = await init_pid(conn)
        assert err == E.none and epoch2 == epoch + 1
        conn.close()
    finally:
        await b.stop()


async def test_open_transaction_times_out_after_restart(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 1)
    _, pid, epoch = await init_pid(conn, timeout_ms=1)
    await add_partitions(conn, pid, epoch, "t", [0])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"stale"]))
    conn.close()
    b = await restarted(broker)
    try:
        b.txns.tick()
        conn = await RawConn.open(b.config.port)
        rc = await fetch(conn, "t", 1)
        assert rc.last_stable_offset == rc.high_watermark == 2 and aborted(rc) == [(pid, 0)]
        assert await end_txn(conn, pid, epoch, True) == E.producer_fenced
        conn.close()
    finally:
        await b.stop()


async def test_mirrored_transactions_are_tracked_not_checked(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "m", 1, {"dcmirror.mirror.source": "east"})
    data = build_batch([(None, b"m1", [], 1)], producer_id=77, producer_epoch=0, base_sequence=0,
                       transactional=True)
    abort = control.build_control_batch(77, 0, False, 0, 2, base_offset=1)
    data2 = build_batch([(None, b"m2", [], 3)], base_offset=2, producer_id=77, producer_epoch=0,
                        base_sequence=1, transactional=True)
    assert (await mirror_append(conn, "m", 0, data)).error_code == E.none
    assert (await fetch(conn, "m", 1)).last_stable_offset == 0
    assert (await mirror_append(conn, "m", 0, abort + data2)).error_code == E.none
    rc = await fetch(conn, "m", 1)
    assert rc.last_stable_offset == 2 and aborted(rc) == [(77, 0)]
    conn.close()


async def committed(broker: Broker, group: str, topic: str, partition: int) -> int:
    r = await broker.groups.offset_fetch(group, {topic: [partition]})
    return r["topics"][0]["partitions"][0]["committed_offset"]


async def test_offsets_visible_only_after_commit(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "in", 1)
    _, pid, epoch = await init_pid(conn)
    for commit, offset in [(False, 5), (True, 9)]:
        r = await conn.call(25, 3, {"transactional_id": TID, "producer_id": pid, "producer_epoch": epoch,
                                    "group_id": "g"})
        assert r.error_code == E.none
        r = await conn.call(28, 3, {"transactional_id": TID, "group_id": "g", "producer_id": pid,
                                    "producer_epoch": epoch, "generation_id": -1, "member_id": "",
                                    "group_instance_id": None,
                                    "topics": [{"name": "in", "partitions": [
                                        {"partition_index": 0, "committed_offset": offset,
                                         "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
        assert r.topics[0].partitions[0].error_code == E.none
        assert await committed(broker, "g", "in", 0) == -1   # pending (and 5 was aborted)
        assert await end_txn(conn, pid, epoch, commit) == E.none
    assert await committed(broker, "g", "in", 0) == 9
    conn.close()
    b = await restarted(broker)   # the committed offset is durable in the group journal
    try:
        assert await committed(b, "g", "in", 0) == 9
    finally:
        await b.stop()


async def test_orphaned_mirrored_transaction_is_aborted_after_promotion(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "m", 1, {"dcmirror.mirror.source": "east"})
    done = build_batch([(None, b"kept", [], 1)], producer_id=5, producer_epoch=0, base_sequence=0,
                       transactional=True)
    commit = control.build_control_batch(5, 0, True, 0, 2, base_offset=1)
    open_ = build_batch([(None, b"orphan", [], 3)], base_offset=2, producer_id=6, producer_epoch=3,
                        base_sequence=0, transactional=True)
    assert (await mirror_append(conn, "m", 0, done + commit + open_)).error_code == E.none
    assert broker.txns.abort_orphans() == 0          # still a mirror: the source will end it
    assert (await fetch(conn, "m", 1)).last_stable_offset == 2
    meta = broker.topic("m")
    broker.set_topic_configs("m", {k: v for k, v in meta.configs.items() if k != "dcmirror.mirror.source"})
    broker.txns.tick()                                # promoted: nobody else will end it
    rc = await fetch(conn, "m", 1)
    assert rc.last_stable_offset == rc.high_watermark == 4 and aborted(rc) == [(6, 2)]
    marker = [h for h, _ in decode_batches(rc.records) if h.is_control][-1]
    assert (marker.producer_id, marker.producer_epoch) == (6, 3)
    assert broker.txns.abort_orphans() == 0
    conn.close()


async def test_local_transactions_are_not_orphans(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 1)
    _, pid, epoch = await init_pid(conn)
    await add_partitions(conn, pid, epoch, "t", [0])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"mine"]))
    assert broker.txns.abort_orphans() == 0
    assert await end_txn(conn, pid, epoch, True) == E.none
    conn.close()


async def test_crash_between_prepare_and_markers_is_completed_on_restart(broker, monkeypatch) -> None:
    """The coordinator dies after making PrepareCommit durable but before any marker."""
    from cluster.txn.coordinator import TransactionCoordinator

    conn = await RawConn.open(broker.config.port)
    await create(conn, "t", 2)
    _, pid, epoch = await init_pid(conn)
    await add_partitions(conn, pid, epoch, "t", [0, 1])
    await produce(conn, "t", 0, txn_batch(pid, epoch, 0, [b"p0"]))
    await produce(conn, "t", 1, txn_batch(pid, epoch, 0, [b"p1"]))

    def die(self, m) -> None:
        raise RuntimeError("test: crash before markers")

    monkeypatch.setattr(TransactionCoordinator, "_write_markers", die)
    with pytest.raises(asyncio.IncompleteReadError):   # no answer: the connection is closed
        await end_txn(conn, pid, epoch, True)
    conn.close()
    assert broker.txns.describe(TID).state.value == "PrepareCommit"
    monkeypatch.undo()
    b = await restarted(broker)
    try:
        conn = await RawConn.open(b.config.port)
        for partition, value in [(0, b"p0"), (1, b"p1")]:
            rc = await fetch(conn, "t", 1, partition=partition)
            assert rc.last_stable_offset == rc.high_watermark == 2
            assert values(rc.records) == [value] and aborted(rc) == []
        assert b.txns.describe(TID).state.value == "CompleteCommit"
        assert await end_txn(conn, pid, epoch, True) == E.none   # the client's retry succeeds
        conn.close()
    finally:
        await b.stop()
