"""Partitions open lazily within a descriptor budget; creates are all-or-nothing.

A broker that opened every partition at create/start time ran out of descriptors at ~20k
partitions and then broke Metadata and lost the topic on restart. These tests run brokers
with far fewer descriptors than partitions.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batches
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_topic_limits import create_partitions, create_topics, metadata_names, topic
from tests.processes import ClusterProcess

INTERNAL = {"meta", "__groups", "__transactions"}


def partition_dirs(data_dir: Path) -> set[str]:
    return {p.name for p in data_dir.iterdir() if p.is_dir() and p.name not in INTERNAL}


def value(topic_name: str, p: int) -> bytes:
    return f"{topic_name}/{p}".encode()


async def produce_each(conn: RawConn, name: str, partitions: range) -> None:
    data = [{"index": p, "records": build_batch([(b"k", value(name, p), [], 1_700_000_000_000)])}
            for p in partitions]
    resp = await conn.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 30000,
                                  "topic_data": [{"name": name, "partition_data": data}]})
    codes = {r.index: r.error_code for r in resp.responses[0].partition_responses}
    assert codes == {p: 0 for p in partitions}


async def fetch_each(conn: RawConn, name: str, partitions: range) -> dict[int, list[bytes]]:
    resp = await conn.call(1, 12, {
        "max_wait": 0, "min_bytes": 0, "max_bytes": 64 << 20, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": name, "partitions": [
            {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 20} for p in partitions]}]})
    out: dict[int, list[bytes]] = {}
    for part in resp.responses[0].partitions:
        assert part.error_code == 0, (part.partition_index, part.error_code)
        out[part.partition_index] = [r.value for _, recs in decode_batches(part.records or b"")
                                     for r in recs]
    return out


async def test_logs_open_on_use_and_close_beyond_capacity(broker) -> None:
    broker.pool.capacity = 4
    conn = await RawConn.open(broker.config.port)
    try:
        assert (await create_topics(conn, topic("many", 20)))["many"].error_code == 0
        assert len(broker.pool) == 0 and partition_dirs(broker.data_dir) == set()
        assert await metadata_names(conn) == {"many": 20}
        await produce_each(conn, "many", range(20))
        assert len(broker.pool) <= 4 and broker.pool.closed >= 16
        got = await fetch_each(conn, "many", range(20))
        assert got == {p: [value("many", p)] for p in range(20)}
        await produce_each(conn, "many", range(20))  # reopened logs append after their data
        got = await fetch_each(conn, "many", range(20))
        assert got == {p: [value("many", p)] * 2 for p in range(20)}
        assert len(broker.pool) <= 4
        assert partition_dirs(broker.data_dir) == {f"many-{p}" for p in range(20)}
        resp = await conn.call(20, 6, {"topics": [{"name": "many", "topic_id": None}], "timeout": 5000})
        assert resp.responses[0].error_code == 0
        assert partition_dirs(broker.data_dir) == set() and len(broker.pool) == 0
    finally:
        conn.close()


async def test_failed_create_leaves_nothing(broker, monkeypatch) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        def no_descriptors(*args, **kwargs):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

        monkeypatch.setattr(broker.catalogue, "create", no_descriptors)
        res = await create_topics(conn, topic("doomed", 50))
        assert res["doomed"].error_code == ErrorCode.unknown_server_error
        assert "Too many open files" in res["doomed"].error_message
        monkeypatch.undo()
        assert (await create_topics(conn, topic("fine", 2)))["fine"].error_code == 0
        monkeypatch.setattr(broker.catalogue, "add_partitions", no_descriptors)
        assert (await create_partitions(conn, "fine", 40)).error_code == ErrorCode.unknown_server_error
        assert await metadata_names(conn) == {"fine": 2}
        assert partition_dirs(broker.data_dir) == set()
        assert len(broker.partitions) == 2
    finally:
        conn.close()


async def test_strays_and_leftovers_removed(tmp_path: Path) -> None:
    cfg = BrokerConfig(name="t", data_dir=tmp_path / "b", port=0)
    b = Broker(cfg)
    await b.start()
    conn = await RawConn.open(cfg.port)
    try:
        assert (await create_topics(conn, topic("kept", 2)))["kept"].error_code == 0
        await produce_each(conn, "kept", range(2))
    finally:
        conn.close()
        await b.stop()
    # What a kill -9 in the middle of a deletion, or an older broker's failed create, leaves.
    for stray in ("ghost-0", "ghost-1", "kept-2", "kept-17"):
        (cfg.data_dir / stray).mkdir()
        (cfg.data_dir / stray / "00000000000000000000.log").write_bytes(b"")
    (cfg.data_dir / "not-a-partition").mkdir()
    b = Broker(cfg)
    await b.start()
    conn = await RawConn.open(cfg.port)
    try:
        assert partition_dirs(cfg.data_dir) == {"kept-0", "kept-1", "not-a-partition"}
        assert await fetch_each(conn, "kept", range(2)) == {p: [value("kept", p)] for p in range(2)}
        # A directory left by an earlier topic of the same name is not inherited.
        (cfg.data_dir / "fresh-0").mkdir()
        (cfg.data_dir / "fresh-0" / "00000000000000000000.log").write_bytes(b"junk")
        assert (await create_topics(conn, topic("fresh", 1)))["fresh"].error_code == 0
        assert await fetch_each(conn, "fresh", range(1)) == {0: []}
    finally:
        conn.close()
        await b.stop()


async def test_more_partitions_than_descriptors(tmp_path: Path) -> None:
    """A broker limited to 128 descriptors serves, restarts with, and keeps 650 partitions."""
    c = ClusterProcess("tight", tmp_path / "tight", nofile=128).start()
    try:
        conn = await RawConn.open(c.port)
        try:
            res = await create_topics(conn, topic("wide", 500), topic("more", 100))
            assert [res["wide"].error_code, res["more"].error_code] == [0, 0]
            assert await metadata_names(conn) == {"wide": 500, "more": 100}
            await produce_each(conn, "wide", range(500))
            await produce_each(conn, "more", range(100))
            got = await fetch_each(conn, "wide", range(500))
            assert got == {p: [value("wide", p)] for p in range(500)}
            assert (await create_partitions(conn, "more", 150)).error_code == 0
        finally:
            conn.close()
        assert c.stop() == 0
        c.start()
        conn = await RawConn.open(c.port)
        try:
            assert await metadata_names(conn) == {"wide": 500, "more": 150}
            got = await fetch_each(conn, "more", range(150))
            assert got == {p: [value("more", p)] if p < 100 else [] for p in range(150)}
            got = await fetch_each(conn, "wide", range(500))
            assert got == {p: [value("wide", p)] for p in range(500)}
        finally:
            conn.close()
        assert "Too many open files" not in c.log_text()
        assert "Traceback" not in c.log_text()
    finally:
        c.stop()


async def test_kill9_during_big_create_leaves_no_half_topic(tmp_path: Path) -> None:
    """kill -9 while a 10,000-partition CreateTopics is in flight: after restart every topic
    is either whole or absent, and no directory belongs to no topic."""
    import asyncio

    from cluster.wire import codec
    from cluster.wire.build import build
    from cluster.wire.framing import frame

    c = ClusterProcess("crash", tmp_path / "crash").start()
    try:
        for round_, delay in enumerate((0.0, 0.05, 0.3)):
            conn = await RawConn.open(c.port)
            try:
                if round_ == 0:
                    assert (await create_topics(conn, topic("base", 4)))["base"].error_code == 0
                    await produce_each(conn, "base", range(4))
                names = [f"r{round_}.t{i}" for i in range(20)]
                body = {"topics": [topic(n, 500) for n in names], "timeout": 30000, "validate_only": False}
                req = build(codec.request_schema(19, 7), body)
                conn.writer.write(frame(codec.encode_request(req, 99, "raw-test", api_key=19, api_version=7)))
                await conn.writer.drain()
                await asyncio.sleep(delay)  # the scenario: die at some point of the create
            finally:
                conn.close()
            c.kill9()
            c.start()
            conn = await RawConn.open(c.port)
            try:
                topics = await metadata_names(conn)
                assert topics["base"] == 4
                assert all(n == 500 for name, n in topics.items() if name != "base"), topics
                known = {f"{name}-{p}" for name, n in topics.items() for p in range(n)}
                assert partition_dirs(c.data_dir) <= known
                assert await fetch_each(conn, "base", range(4)) == {p: [value("base", p)] for p in range(4)}
            finally:
                conn.close()
    finally:
        c.stop()


async def test_metadata_during_a_big_create_shows_whole_topics_only(broker) -> None:
    """While one client creates 20 topics of 500 partitions, another polls Metadata: each
    answer lists a new topic with all 500 partitions, each with a leader, or not at all."""
    import asyncio

    names = {f"big{i}" for i in range(20)}
    creator, poller = await RawConn.open(broker.config.port), await RawConn.open(broker.config.port)
    seen: list[dict[str, list]] = []
    try:
        async def poll(done: asyncio.Event) -> None:
            while True:
                resp = await poller.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                 "include_topic_authorized_operations": False})
                seen.append({t.name: list(t.partitions) for t in resp.topics if t.name in names})
                if done.is_set():
                    return

        done = asyncio.Event()
        polling = asyncio.create_task(poll(done))
        await until(lambda: len(seen) >= 1)  # polling before the create is sent
        res = await create_topics(creator, *(topic(n, 500) for n in sorted(names)))
        done.set()
        await polling
        assert all(r.error_code == 0 for r in res.values())
        assert seen[0] == {}
        assert {n: c for n, c in (await metadata_names(poller)).items() if n in names} == {n: 500 for n in names}
        for answer in seen:
            for name, parts in answer.items():
                assert sorted(p.partition_index for p in parts) == list(range(500)), name
                assert all(p.error_code == 0 and p.leader_id == broker.node_id for p in parts), name
        await produce_each(creator, "big19", range(499, 500))  # the last partition of the last topic
    finally:
        creator.close()
        poller.close()
