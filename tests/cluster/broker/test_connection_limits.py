"""Connection deadlines and limits: idle and trickling connections are closed at their
deadlines (an active or long-polling one is not), max.connections(.per.ip) refuse extra
connections on accept, queued.max.request.bytes stops reading until bytes are released."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame
from tests.cluster.broker.rawconn import RawConn, until

API_VERSIONS = {"client_software_name": "t", "client_software_version": "1"}
# Deadlines are checked every tenth of the shortest one; a close may also wait a loop turn.
SLACK_S = 1.0


async def started(tmp_path: Path, **settings: Any) -> Broker:
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0, **settings))
    await broker.start()
    return broker


async def open_from(port: int, source_ip: str) -> RawConn:
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source_ip, 0))
    return RawConn(r, w)


async def refused(conn: RawConn) -> bool:
    """The broker closed the connection without answering a request."""
    try:
        conn.writer.write(frame(codec.encode_request(
            build(codec.request_schema(18, 3), API_VERSIONS), 1, "t", api_key=18, api_version=3)))
        await conn.writer.drain()
    except ConnectionError:
        return True
    return await conn.closed_by_peer()


async def test_idle_connection_closed_at_its_deadline_active_one_not(tmp_path: Path) -> None:
    broker = await started(tmp_path, connections_max_idle_ms=300)
    try:
        idle = await RawConn.open(broker.config.port)
        active = await RawConn.open(broker.config.port)
        last_activity = time.monotonic()  # before: the broker's idle clock starts after it
        await idle.call(18, 3, API_VERSIONS)
        closed = asyncio.create_task(idle.closed_by_peer())
        while not closed.done():  # the active client asks every 50 ms, well inside 300 ms
            await active.call(18, 3, API_VERSIONS)
            await asyncio.wait([closed], timeout=0.05)
        assert closed.result()
        elapsed = time.monotonic() - last_activity
        assert 0.3 <= elapsed < 0.3 + SLACK_S, elapsed
        await active.call(18, 3, API_VERSIONS)  # still served
        await until(lambda: len(broker.connections.connections) == 1)
        active.close()
    finally:
        await broker.stop()


async def test_long_poll_outlasting_idle_deadline_is_not_idle(tmp_path: Path) -> None:
    broker = await started(tmp_path, connections_max_idle_ms=300)
    try:
        conn = await RawConn.open(broker.config.port)
        broker.create_topic("quiet", 1, {})
        t0 = time.monotonic()
        resp = await conn.call(1, 12, {
            "max_wait": 900, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": "quiet", "partitions": [
                {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        assert time.monotonic() - t0 >= 0.8  # the broker held it past the idle deadline
        assert resp.responses[0].partitions[0].error_code == 0
        await conn.call(18, 3, API_VERSIONS)
        conn.close()
    finally:
        await broker.stop()


async def test_slow_reader_of_a_big_reply_is_not_idle(tmp_path: Path) -> None:
    """A client that keeps taking a reply slower than the idle deadline is active."""
    import os
    import socket

    from cluster.wire.batch_builder import build_batch

    broker = await started(tmp_path, connections_max_idle_ms=300)
    try:
        broker.create_topic("big", 1, {})
        producer = await RawConn.open(broker.config.port)
        for i in range(9):  # ~8 MiB, more than the kernel's loopback buffers hold
            batch = build_batch([(None, os.urandom(900_000), [], 1_700_000_000_000)])
            resp = await producer.call(0, 9, {"transactional_id": None, "acks": 1, "timeout": 5000,
                                              "topic_data": [{"name": "big", "partition_data": [
                                                  {"index": 0, "records": batch}]}]})
            assert resp.responses[0].partition_responses[0].error_code == 0
        producer.close()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", broker.config.port))
        r, w = await asyncio.open_connection(sock=sock, limit=64 * 1024)
        fetch = build(codec.request_schema(1, 12), {
            "max_wait": 0, "min_bytes": 0, "max_bytes": 16 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": "big", "partitions": [
                {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 16 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        w.write(frame(codec.encode_request(fetch, 1, "slow", api_key=1, api_version=12)))
        size = int.from_bytes(await r.readexactly(4), "big")
        assert size > 8_000_000
        t0, got = time.monotonic(), 0
        while got < size:  # ~5 MB/s: the whole reply takes several idle deadlines
            got += len(await r.readexactly(min(256 * 1024, size - got)))
            await asyncio.sleep(0.05)
        # Whole: not cut at an idle deadline while the broker was still handing it over.
        # (Once the kernel has the rest, the broker may close the connection as idle.)
        assert got == size and time.monotonic() - t0 > 0.6
        w.close()
    finally:
        await broker.stop()


async def test_reply_tail_in_our_buffer_is_not_dropped_at_the_idle_deadline(tmp_path: Path) -> None:
    """Past its idle deadline, a connection whose reply bytes are still leaving our buffer
    is kept (aborting would drop them); once the buffer stops shrinking it is closed."""
    from cluster.broker.connection import IDLE, Connection, ConnectionServer

    class Transport:
        def __init__(self) -> None:
            self.sizes, self.aborted = [3000, 2000, 2000], False

        def get_write_buffer_size(self) -> int:
            return self.sizes.pop(0) if len(self.sizes) > 1 else self.sizes[0]

        def abort(self) -> None:
            self.aborted = True

    class Writer:
        transport = Transport()

        def close(self) -> None:
            pass

    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0, connections_max_idle_ms=100))
    server = ConnectionServer(broker)
    conn = Connection(peer="p", ip="127.0.0.1", writer=Writer(), phase=IDLE)  # type: ignore[arg-type]
    conn.deadline = asyncio.get_running_loop().time()  # due now
    server.connections.add(conn)
    server.start()
    try:
        await until(lambda: Writer.transport.aborted, timeout=5)
        assert Writer.transport.sizes == [2000]  # kept while 3000 -> 2000, closed when stuck
        assert conn.closed_by == IDLE
    finally:
        await server.stop()


async def test_trickled_frame_closed_at_read_deadline(tmp_path: Path, caplog) -> None:
    broker = await started(tmp_path, request_read_timeout_ms=300)
    try:
        conn = await RawConn.open(broker.config.port)
        started_at = time.monotonic()  # before: the broker's read clock starts after it
        await conn.send_raw((100).to_bytes(4, "big") + b"\x00\x12")  # 2 of 100 bytes
        closed = asyncio.create_task(conn.closed_by_peer())
        with caplog.at_level(logging.WARNING, logger="cluster.broker.connection"):
            while not closed.done():  # one byte every 50 ms: never idle, never complete
                try:
                    await conn.send_raw(b"\x00")
                except ConnectionError:
                    break
                await asyncio.wait([closed], timeout=0.05)
            assert await closed
        elapsed = time.monotonic() - started_at
        assert 0.3 <= elapsed < 0.3 + SLACK_S, elapsed
        assert any("request.read.timeout.ms" in r.getMessage() for r in caplog.records)
        assert broker.connections.closed == {"read": 1}
        # The idle deadline (600 s) did not do it, and other clients are unaffected.
        other = await RawConn.open(broker.config.port)
        await other.call(18, 3, API_VERSIONS)
        other.close()
    finally:
        await broker.stop()


async def test_max_connections_per_ip(tmp_path: Path, caplog) -> None:
    broker = await started(tmp_path, max_connections_per_ip=2)
    port = broker.config.port
    try:
        first, second = await open_from(port, "127.0.0.1"), await open_from(port, "127.0.0.1")
        await first.call(18, 3, API_VERSIONS)
        await second.call(18, 3, API_VERSIONS)
        elsewhere = await open_from(port, "127.0.0.2")  # another address has its own count
        await elsewhere.call(18, 3, API_VERSIONS)
        with caplog.at_level(logging.INFO, logger="cluster.broker.connection"):
            assert await refused(await open_from(port, "127.0.0.1"))
        assert any("max.connections.per.ip" in r.getMessage() for r in caplog.records)
        assert broker.connections.closed == {"max.connections.per.ip": 1}
        first.close()
        await until(lambda: broker.connections.per_ip["127.0.0.1"] == 1)
        again = await open_from(port, "127.0.0.1")
        await again.call(18, 3, API_VERSIONS)
        for c in (second, elsewhere, again):
            c.close()
    finally:
        await broker.stop()


async def test_max_connections(tmp_path: Path, caplog) -> None:
    broker = await started(tmp_path, max_connections=2)
    port = broker.config.port
    try:
        a, b = await open_from(port, "127.0.0.1"), await open_from(port, "127.0.0.2")
        await a.call(18, 3, API_VERSIONS)
        await b.call(18, 3, API_VERSIONS)
        with caplog.at_level(logging.INFO, logger="cluster.broker.connection"):
            assert await refused(await open_from(port, "127.0.0.3"))
        assert any("max.connections)" in r.getMessage() for r in caplog.records)
        assert broker.connections.closed == {"max.connections": 1}
        b.close()
        await until(lambda: len(broker.connections.connections) == 1)
        c = await open_from(port, "127.0.0.3")
        await c.call(18, 3, API_VERSIONS)
        a.close()
        c.close()
    finally:
        await broker.stop()


def api_versions_frame(cid: int, client_id: str = "t") -> bytes:
    req = build(codec.request_schema(18, 3), API_VERSIONS)
    return frame(codec.encode_request(req, cid, client_id, api_key=18, api_version=3))


async def test_queued_request_bytes_backpressure_then_progress(tmp_path: Path) -> None:
    budget = 1000
    broker = await started(tmp_path, queued_max_request_bytes=budget)
    try:
        broker.create_topic("quiet", 1, {})
        # A long-polling Fetch whose frame (a long client id) alone spends the budget.
        holder = await RawConn.open(broker.config.port)
        fetch = build(codec.request_schema(1, 12), {
            "max_wait": 1500, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": "quiet", "partitions": [
                {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        holder.cid = 1
        await holder.send_raw(frame(codec.encode_request(fetch, 1, "x" * 2 * budget, api_key=1,
                                                         api_version=12)))
        await until(lambda: broker.connections.budget.used > budget)
        # Another client pipelines requests: the broker stops reading them for now.
        other = await RawConn.open(broker.config.port)
        await other.send_raw(b"".join(api_versions_frame(cid) for cid in range(1, 6)))
        await until(lambda: broker.connections.budget.waiting == 1)
        assert broker.connections.budget.used > budget
        # The Fetch ends at max_wait, releases its bytes, and everything queued is answered.
        assert (await holder.reply(codec.response_schema(1, 12))).error_code == 0
        for cid in range(1, 6):
            other.cid = cid
            assert (await other.reply(codec.response_schema(18, 3))).error_code == 0
        await until(lambda: broker.connections.budget.used == 0)
        assert broker.connections.budget.waiting == 0
        holder.close()
        other.close()
    finally:
        await broker.stop()


@pytest.mark.parametrize("settings, message", [
    ({"connections_max_idle_ms": 0}, "connections.max.idle.ms must be an integer of at least 1, got 0"),
    ({"request_read_timeout_ms": -5}, "dcmirror.connections.request.read.timeout.ms must be an integer of at least 1"),
    ({"queued_max_request_bytes": 0}, "queued.max.request.bytes must be positive, or -1 for unlimited"),
    ({"queued_max_request_bytes": -2}, "queued.max.request.bytes must be an integer of at least -1"),
    ({"max_connections": -1}, "max.connections must be an integer of at least 0"),
    ({"max_connections_per_ip": "3"}, "max.connections.per.ip must be an integer of at least 0"),
])
def test_bad_settings_refused(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerConfig(name="t", data_dir=tmp_path, port=0, **settings)


async def test_settings_shown_by_describe_configs(tmp_path: Path) -> None:
    broker = await started(tmp_path, connections_max_idle_ms=1234, max_connections_per_ip=7)
    try:
        conn = await RawConn.open(broker.config.port)
        resp = await conn.call(32, 4, {"resources": [
            {"resource_type": 4, "resource_name": "1", "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False})
        values = {c.name: c.value for c in resp.results[0].configs}
        assert values["connections.max.idle.ms"] == "1234"
        assert values["max.connections.per.ip"] == "7"
        assert values["max.connections"] == str(2**31 - 1)
        assert values["queued.max.request.bytes"] == str(100 * 1024 * 1024)
        assert values["dcmirror.connections.request.read.timeout.ms"] == "30000"
        conn.close()
    finally:
        await broker.stop()


async def test_our_client_carries_on_after_idle_close(tmp_path: Path) -> None:
    """Kafka closes idle connections too: clients reconnect, nothing acknowledged is lost."""
    from cluster.client import KafkaClient
    from cluster.wire.batch_builder import build_batch

    broker = await started(tmp_path, connections_max_idle_ms=300)
    try:
        broker.create_topic("t", 1, {})
        async with KafkaClient(f"127.0.0.1:{broker.config.port}", retry_deadline_s=5) as client:
            await client.produce("t", 0, build_batch([(b"k", b"one", [], 1_700_000_000_000)]))
            await until(lambda: not broker.connections.connections)  # closed as idle
            assert broker.connections.closed["idle"] >= 1
            await client.produce("t", 0, build_batch([(b"k", b"two", [], 1_700_000_000_000)]))
        assert broker.partitions[("t", 0)].log.log_end_offset == 2
    finally:
        await broker.stop()


async def test_librdkafka_carries_on_after_idle_close(tmp_path: Path) -> None:
    # 1 s, not 300 ms: under librdkafka's own ~1 s metadata timers it re-bootstraps,
    # reconnects and is closed again before it asks for metadata, over and over.
    from confluent_kafka import Producer

    broker = await started(tmp_path, connections_max_idle_ms=1000)
    bootstrap = f"127.0.0.1:{broker.config.port}"
    try:
        broker.create_topic("t", 1, {})

        def produce_across_an_idle_close() -> None:
            # Idempotent: a retry after a disconnect (librdkafka re-sends what it had in
            # flight when every connection is down) must not duplicate.
            p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                          "reconnect.backoff.max.ms": 200, "enable.idempotence": True})
            p.produce("t", value=b"one")
            assert p.flush(30) == 0
            closes = broker.connections.closed["idle"]
            deadline = time.monotonic() + 20
            while broker.connections.closed["idle"] == closes:  # a Counter read: no await
                assert time.monotonic() < deadline, "broker kept an idle connection"
                time.sleep(0.01)
            p.produce("t", value=b"two")
            assert p.flush(30) == 0

        await asyncio.to_thread(produce_across_an_idle_close)
        assert broker.partitions[("t", 0)].log.log_end_offset == 2
    finally:
        await broker.stop()
