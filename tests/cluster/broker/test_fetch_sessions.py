"""KIP-227 fetch sessions on a running broker, with raw requests and with real clients.

The raw cases check the bytes clients rely on: a full fetch returns a session id, an
incremental one answers only partitions with news and reads from the cached positions,
long polls wake for a session's partitions, topic ids (v13+) work, and the errors and the
"no session" answer are Kafka's. The client cases check that librdkafka and kafka-python,
which ask for sessions by default, consume everything through them.
"""

from __future__ import annotations

import asyncio
import time

from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create, produce

TS = int(time.time() * 1000)


def batch(value: bytes) -> bytes:
    return build_batch([(b"k", value, [], TS)])


async def fetch(conn: RawConn, sid: int, epoch: int, wants: list[tuple[str, int, int]],
                forget: list[tuple[str, int]] = (), version: int = 12, max_wait: int = 0,
                ids: dict | None = None):
    topics: dict[str, list[dict]] = {}
    for topic, part, offset in wants:
        topics.setdefault(topic, []).append({"partition": part, "fetch_offset": offset,
                                             "partition_max_bytes": 1 << 20})
    gone: dict[str, list[int]] = {}
    for topic, part in forget:
        gone.setdefault(topic, []).append(part)

    def head(t: str) -> dict:
        return {"topic_id": ids[t]} if version >= 13 else {"topic": t}

    return await conn.call(1, version, {
        "max_wait": max_wait, "min_bytes": 1, "max_bytes": 1 << 24, "isolation_level": 0,
        "session_id": sid, "session_epoch": epoch, "replica_id": -1,
        "topics": [{**head(t), "partitions": ps} for t, ps in topics.items()],
        "forgotten_topics_data": [{**head(t), "partitions": ps} for t, ps in gone.items()],
        "rack_id": ""})


def answered(resp) -> list[tuple[int, int]]:
    """(partition, records bytes) of each partition in the response, in order."""
    return [(p.partition_index, len(p.records or b"")) for t in resp.responses for p in t.partitions]


async def seeded(broker, topic: str = "s", partitions: int = 4) -> RawConn:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, topic, partitions)).error_code == ErrorCode.none
    for p in range(partitions):
        assert (await produce(conn, topic, p, batch(b"first"))).error_code == ErrorCode.none
    return conn


async def test_full_then_incremental_answers_only_news(broker) -> None:
    conn = await seeded(broker)
    full = await fetch(conn, 0, 0, [("s", p, 0) for p in range(4)])
    sid = full.session_id
    assert sid != 0 and full.error_code == 0
    assert [n > 0 for _, n in answered(full)] == [True] * 4
    # The client moves partitions 0 and 1 on; 2 and 3 stay at 0 in the session.
    inc = await fetch(conn, sid, 1, [("s", 0, 1), ("s", 1, 1)])
    assert inc.session_id == sid
    # Partitions 2 and 3 are read again from offset 0 (data: answered); 0 and 1 have nothing new.
    assert [p for p, n in answered(inc) if n] == [2, 3]
    inc = await fetch(conn, sid, 2, [("s", 2, 1), ("s", 3, 1)])
    assert answered(inc) == []
    # New data on partition 3 only.
    assert (await produce(conn, "s", 3, batch(b"second"))).error_code == ErrorCode.none
    inc = await fetch(conn, sid, 3, [])
    assert [p for p, n in answered(inc) if n] == [3]
    conn.close()


async def test_incremental_long_poll_wakes_for_a_session_partition(broker) -> None:
    conn = await seeded(broker, "w", 2)
    sid = (await fetch(conn, 0, 0, [("w", 0, 1), ("w", 1, 1)])).session_id
    poll = asyncio.ensure_future(fetch(conn, sid, 1, [], max_wait=10_000))
    other = await RawConn.open(broker.config.port)
    await until(lambda: bool(broker.partitions[("w", 1)]._waiters))  # the poll is waiting
    assert (await produce(other, "w", 1, batch(b"late"))).error_code == ErrorCode.none
    resp = await asyncio.wait_for(poll, 10)
    assert [p for p, n in answered(resp) if n] == [1]
    conn.close()
    other.close()


async def test_added_and_forgotten_partitions(broker) -> None:
    conn = await seeded(broker, "a", 3)
    sid = (await fetch(conn, 0, 0, [("a", 0, 1)])).session_id
    inc = await fetch(conn, sid, 1, [("a", 1, 0), ("a", 2, 0)], forget=[("a", 0)])
    assert sorted(p for p, n in answered(inc) if n) == [1, 2]
    assert (await produce(conn, "a", 0, batch(b"x"))).error_code == ErrorCode.none
    inc = await fetch(conn, sid, 2, [("a", 1, 1), ("a", 2, 1)])
    assert answered(inc) == []  # partition 0 was forgotten: its new batch is not fetched
    conn.close()


async def test_session_errors_and_closing(broker) -> None:
    conn = await seeded(broker, "e", 1)
    resp = await fetch(conn, 777, 1, [])
    assert (resp.error_code, resp.session_id, answered(resp)) == (ErrorCode.fetch_session_id_not_found, 0, [])
    sid = (await fetch(conn, 0, 0, [("e", 0, 1)])).session_id
    resp = await fetch(conn, sid, 9, [])
    assert resp.error_code == ErrorCode.invalid_fetch_session_epoch
    # Full fetch fallback after an error: closes the old session, starts a new one.
    again = await fetch(conn, sid, 0, [("e", 0, 0)])
    assert again.error_code == 0 and again.session_id not in (0, sid)
    assert broker.fetch_sessions.get(sid) is None
    # FINAL epoch closes the session and answers without one.
    final = await fetch(conn, again.session_id, -1, [("e", 0, 0)])
    assert final.session_id == 0 and len(broker.fetch_sessions) == 0
    conn.close()


async def test_topic_id_sessions_v13_plus(broker) -> None:
    conn = await seeded(broker, "ids", 2)
    tid = next(i for i, m in broker.catalogue.by_id.items() if m.name == "ids")
    ids = {"ids": tid}
    full = await fetch(conn, 0, 0, [("ids", 0, 1), ("ids", 1, 0)], version=16, ids=ids)
    sid = full.session_id
    assert sid and full.responses[0].topic_id == tid
    inc = await fetch(conn, sid, 1, [("ids", 1, 1)], forget=[], version=16, ids=ids)
    assert answered(inc) == []
    assert (await produce(conn, "ids", 0, batch(b"more"))).error_code == ErrorCode.none
    inc = await fetch(conn, sid, 2, [], version=16, ids=ids)
    assert [(t.topic_id, p.partition_index) for t in inc.responses for p in t.partitions] == [(tid, 0)]
    # A name request on an id session is refused.
    resp = await fetch(conn, sid, 3, [], version=12)
    assert resp.error_code == ErrorCode.fetch_session_topic_id_error
    conn.close()


async def test_no_slots_means_full_fetches_answered_without_session(tmp_path) -> None:
    b = Broker(BrokerConfig(name="nosess", data_dir=tmp_path / "b", port=0,
                            max_incremental_fetch_session_cache_slots=0))
    await b.start()
    try:
        conn = await seeded(b, "n", 2)
        resp = await fetch(conn, 0, 0, [("n", 0, 0), ("n", 1, 0)])
        assert resp.session_id == 0 and [n > 0 for _, n in answered(resp)] == [True, True]
        conn.close()
    finally:
        await b.stop()


async def test_cache_full_answers_session_id_zero(tmp_path) -> None:
    b = Broker(BrokerConfig(name="two", data_dir=tmp_path / "b", port=0,
                            max_incremental_fetch_session_cache_slots=2))
    await b.start()
    try:
        conn = await seeded(b, "f", 1)
        got = [(await fetch(conn, 0, 0, [("f", 0, 0)])).session_id for _ in range(3)]
        assert got[0] and got[1] and got[2] == 0  # young sessions of equal size: no eviction
        conn.close()
    finally:
        await b.stop()


async def test_real_clients_consume_everything_through_sessions(broker) -> None:
    """kafka-python asks for sessions: every record arrives, by incremental fetches.
    librdkafka (2.16) does not implement KIP-227 (sessionless fetches): everything arrives too."""
    from tests import clients

    conn = await RawConn.open(broker.config.port)
    parts = 4  # records of 400 KB: a 1 MiB partition_max_bytes takes two fetches per partition
    assert (await create(conn, "rc", parts)).error_code == ErrorCode.none
    end = {}
    for p in range(parts):
        for i in range(3):
            assert (await produce(conn, "rc", p, batch(f"{p}-{i}".encode() * 140_000))).error_code == ErrorCode.none
        end[p] = 3
    conn.close()
    bootstrap = f"127.0.0.1:{broker.config.port}"
    for consume, sessions in ((clients.consume_confluent, False), (clients.consume_kafka_python, True)):
        before = broker.fetch_sessions.incremental_fetches
        got = await asyncio.to_thread(consume, bootstrap, "rc", parts, end)
        assert sorted((c.partition, c.value) for c in got) == \
            sorted((p, f"{p}-{i}".encode() * 140_000) for p in range(parts) for i in range(3)), consume.__name__
        assert (broker.fetch_sessions.incremental_fetches > before) == sessions, consume.__name__
