"""Fetch by sendfile on plaintext connections, against an in-process broker over sockets.

Replies are compared byte for byte with the pread path (a connection accepted while
`broker.connections.sendfile` is False) for compressed, transactional (read_committed with
aborted transactions and an open one) and compacted data, many limits and versions. Then
what a reply in flight meets: its segments deleted or compacted away (the reply is still
the bytes it promised), its file cut in place (the connection closes, others go on), a
peer that resets or stops reading (the reply's descriptors are given back, others served),
and the descriptor budget (no leak over many fetches; over the budget, bytes by pread).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode as E

from cluster.broker.config import BrokerConfig
from cluster.broker.sendfile import STATS
from cluster.broker.server import Broker
from cluster.log.file_range import RANGES
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from cluster.wire.build import build
from cluster.wire.framing import frame
from tests.cluster.broker.rawconn import RawConn, until
from tests.cluster.broker.test_bad_input import create, produce
from tests.cluster.broker.test_transactions import add_partitions, end_txn, init_pid, txn_batch
from tests.cluster.broker.test_transactions import produce as txn_produce

TS = int(time.time() * 1000)  # now: retention (7 days) must not delete the data mid-test


def fetch_frame(cid: int, version: int, wants: list[tuple[str, int, int, int]], *,
                max_bytes: int = 64 << 20, isolation: int = 0) -> bytes:
    topics: dict[str, list[dict]] = {}
    for topic, part, offset, pmax in wants:
        topics.setdefault(topic, []).append({"partition": part, "fetch_offset": offset,
                                             "partition_max_bytes": pmax})
    body = build(codec.request_schema(1, version), {
        "max_wait": 0, "min_bytes": 0, "max_bytes": max_bytes, "isolation_level": isolation,
        "session_id": 0, "session_epoch": -1, "replica_id": -1,
        "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
        "forgotten_topics_data": [], "rack_id": ""})
    return frame(codec.encode_request(body, cid, "sendfile-test", api_key=1, api_version=version))


async def raw_reply(conn: RawConn, request: bytes) -> bytes:
    """The whole framed reply, size prefix included."""
    await conn.send_raw(request)
    head = await asyncio.wait_for(conn.reader.readexactly(4), 10)
    return head + await asyncio.wait_for(conn.reader.readexactly(int.from_bytes(head, "big")), 10)


async def connect(broker: Broker, *, sendfile: bool) -> RawConn:
    """A connection on the sendfile path or on the pread path (the flag is read on accept)."""
    broker.connections.sendfile = sendfile
    conn = await RawConn.open(broker.config.port)
    await conn.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    broker.connections.sendfile = True
    return conn


async def started(tmp_path: Path, **settings) -> Broker:
    """A broker that sends every partition's bytes by sendfile (unless told a threshold)."""
    settings.setdefault("fetch_sendfile_min_bytes", 0)
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0, **settings))
    await broker.start()
    return broker


async def fill_mixed(conn: RawConn, broker: Broker) -> None:
    """mix-0: every codec, small and big batches; mix-1: transactions (one aborted, one
    committed, one open); comp-0: a compacted partition that was cleaned."""
    assert (await create(conn, "mix", 2, {"segment.bytes": "20000"})).error_code == E.none
    for i in range(40):
        size = (30, 900, 9_000, 70_000)[i % 4]
        recs = [(b"k%d" % j, os.urandom(size // 2) + b"v" * (size // 2), [], TS + j)
                for j in range(1 + i % 3)]
        assert (await produce(conn, "mix", 0, build_batch(recs, codec=i % 5))).error_code == E.none
    _, pid, epoch = await init_pid(conn)
    seq = 0
    for commit in (False, True, None):
        assert await add_partitions(conn, pid, epoch, "mix", [1]) == {("mix", 1): E.none}
        for _ in range(3):
            batch = txn_batch(pid, epoch, seq, [os.urandom(500) for _ in range(4)])
            assert (await txn_produce(conn, "mix", 1, batch)).error_code == E.none
            seq += 4
        if commit is not None:
            assert await end_txn(conn, pid, epoch, commit) == E.none
    assert (await create(conn, "comp", 1, {
        "cleanup.policy": "compact", "segment.bytes": "4000",
        "min.cleanable.dirty.ratio": "0.01"})).error_code == E.none
    for i in range(60):
        batch = build_batch([(b"key%d" % (i % 7), b"value-%d-" % i + b"x" * 300, [], TS + i)])
        assert (await produce(conn, "comp", 0, batch)).error_code == E.none
    stats = broker.partitions[("comp", 0)].log.compact(int(time.time() * 1000))
    assert stats is not None


@pytest.mark.parametrize("version,min_bytes", [(4, 0), (7, 0), (11, 0), (12, 0), (12, 20_000)])
async def test_replies_are_byte_identical_to_the_pread_path(tmp_path: Path, version: int,
                                                            min_bytes: int) -> None:
    """min_bytes 20,000: small partitions' bytes by pread, big ones by sendfile, in one reply."""
    broker = await started(tmp_path, fetch_sendfile_min_bytes=min_bytes)
    try:
        setup = await RawConn.open(broker.config.port)
        await fill_mixed(setup, broker)
        hot, cold = await connect(broker, sendfile=True), await connect(broker, sendfile=False)
        mix0 = broker.partitions[("mix", 0)].log.log_end_offset
        comp_start = broker.partitions[("comp", 0)].log.log_start_offset
        cases = []
        for isolation in (0, 1):
            for max_bytes in (1, 5_000, 100_000, 64 << 20):
                for pmax in (0, 1_000, 30_000, 1 << 20):
                    for offset in (0, 5, mix0 // 2, mix0 - 1):
                        cases.append(([("mix", 0, offset, pmax), ("mix", 1, 0, pmax),
                                       ("comp", 0, comp_start, pmax), ("mix", 1, 6, pmax)],
                                      max_bytes, isolation))
        sent_before = STATS.bytes
        for i, (wants, max_bytes, isolation) in enumerate(cases):
            req = fetch_frame(1000 + i, version, wants, max_bytes=max_bytes, isolation=isolation)
            assert await raw_reply(hot, req) == await raw_reply(cold, req), (wants, max_bytes, isolation)
        assert STATS.bytes > sent_before  # the hot connection did use sendfile
        for c in (setup, hot, cold):
            c.close()
        await until(lambda: RANGES.count == 0)
    finally:
        await broker.stop()


async def big_partition(conn: RawConn, topic: str, *, segment_bytes: int, batches: int = 12,
                        size: int = 700_000, keys: int = 1 << 30) -> None:
    configs = {"segment.bytes": str(segment_bytes)}
    assert (await create(conn, topic, 1, configs)).error_code == E.none
    for i in range(batches):
        batch = build_batch([(b"k%d" % (i % keys), os.urandom(size), [], TS + i)])
        assert (await produce(conn, topic, 0, batch)).error_code == E.none


async def slow_reader(port: int) -> tuple[socket.socket, asyncio.StreamReader, asyncio.StreamWriter]:
    """A client whose receive buffer is small and which reads only when told to."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    r, w = await asyncio.open_connection(sock=sock, limit=64 * 1024)
    return sock, r, w


async def read_reply(r: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(r.readexactly(4), 10)
    return head + await asyncio.wait_for(r.readexactly(int.from_bytes(head, "big")), 30)


@pytest.mark.parametrize("change", ["delete_records", "retention", "compaction", "pool_close"])
async def test_reply_in_flight_survives_its_segments_going_away(tmp_path: Path, change: str) -> None:
    broker = await started(tmp_path)
    try:
        conn = await RawConn.open(broker.config.port)
        await big_partition(conn, "big", segment_bytes=1_500_000, keys=2)
        part = broker.partitions[("big", 0)]
        assert part.log.segment_count >= 5
        req = fetch_frame(7, 12, [("big", 0, 0, 64 << 20)])
        want = await raw_reply(await connect(broker, sendfile=False), req)
        files = sorted(p for p in part.directory.iterdir() if p.suffix == ".log")
        inodes = {f: f.stat().st_ino for f in files}

        sock, r, w = await slow_reader(broker.config.port)
        w.write(req)
        await until(lambda: RANGES.count >= 3)  # the reply is leaving, its ranges held
        if change == "delete_records":
            resp = await conn.call(21, 2, {"topics": [{"name": "big", "partitions": [
                {"partition_index": 0, "offset": 10}]}], "timeout": 5000})
            assert resp.topics[0].partitions[0].error_code == E.none
        elif change == "retention":
            part.log.config.retention_bytes = 1
            assert part.log.apply_retention(int(time.time() * 1000)) >= 4
        elif change == "pool_close":
            # The LogPool closes the log under its descriptor budget (and the shared read
            # handles with it); the next request reopens it.
            broker.pool.release(part, sync=False)
            assert part.open_log is None
        else:
            # The cleaner's swap renames a cleaned file over the segment: two keys, so
            # most records go and the file under the name has other bytes.
            part.log.config.compact = True
            part.log.config.min_cleanable_dirty_ratio = 0.0
            assert part.log.compact(int(time.time() * 1000)) is not None
        gone = [f for f in files[:-1] if not f.exists()]
        swapped = [f for f in files[:-1] if f.exists() and f.stat().st_ino != inodes[f]]
        if change != "pool_close":
            assert (swapped if change == "compaction" else gone)
            assert await raw_reply(await connect(broker, sendfile=False), req) != want
        got = await read_reply(r)
        assert got == want  # the bytes the reply promised: the files it was read from
        w.close()
        await until(lambda: RANGES.count == 0)
        # and the broker serves others
        other = await connect(broker, sendfile=True)
        assert (await other.call(18, 3, {"client_software_name": "t",
                                         "client_software_version": "1"})).error_code == E.none
    finally:
        await broker.stop()


async def test_reply_cut_in_place_closes_its_connection_only(tmp_path: Path) -> None:
    broker = await started(tmp_path)
    try:
        conn = await RawConn.open(broker.config.port)
        await big_partition(conn, "big", segment_bytes=1 << 30)  # one segment
        part = broker.partitions[("big", 0)]
        sock, r, w = await slow_reader(broker.config.port)
        w.write(fetch_frame(7, 12, [("big", 0, 0, 64 << 20)]))
        await until(lambda: RANGES.count >= 1)
        cut_before = STATS.cut
        part.log.truncate_to(3)  # DcMirrorTruncate's in-place cut of the file being sent
        for i in range(12):  # ...and other batches written at the same positions
            batch = build_batch([(b"new", os.urandom(700_000), [], TS + i)])
            assert (await produce(conn, "big", 0, batch)).error_code == E.none
        size = int.from_bytes(await asyncio.wait_for(r.readexactly(4), 10), "big")
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await asyncio.wait_for(r.readexactly(size), 30)  # never the other bytes
        assert STATS.cut == cut_before + 1
        await until(lambda: RANGES.count == 0)
        other = await connect(broker, sendfile=True)
        req = fetch_frame(8, 12, [("big", 0, 0, 64 << 20)])
        cold = await connect(broker, sendfile=False)
        assert await raw_reply(other, req) == await raw_reply(cold, req)
    finally:
        await broker.stop()


@pytest.mark.parametrize("how", ["reset", "stops_reading"])
async def test_peer_gone_mid_reply_gives_back_its_descriptors(tmp_path: Path, how: str) -> None:
    broker = await started(tmp_path, connections_max_idle_ms=300)
    try:
        conn = await RawConn.open(broker.config.port)
        await big_partition(conn, "big", segment_bytes=2_000_000)
        sock, r, w = await slow_reader(broker.config.port)
        w.write(fetch_frame(7, 12, [("big", 0, 0, 64 << 20)]))
        await r.readexactly(4)
        await until(lambda: RANGES.count >= 1)
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        # else: the client never reads again; the idle reaper closes it (300 ms)
        await until(lambda: RANGES.count == 0, timeout=30)
        if how == "stops_reading":
            assert broker.connections.closed["idle"] >= 1
            w.close()
        other = await connect(broker, sendfile=True)
        cold = await connect(broker, sendfile=False)
        req = fetch_frame(8, 12, [("big", 0, 0, 64 << 20)])
        assert await raw_reply(other, req) == await raw_reply(cold, req)
    finally:
        await broker.stop()


async def test_no_descriptor_leak_and_the_budget_falls_back_to_bytes(tmp_path: Path) -> None:
    broker = await started(tmp_path)
    try:
        conn = await RawConn.open(broker.config.port)
        assert (await create(conn, "many", 8, {"segment.bytes": "6000"})).error_code == E.none
        for p in range(8):
            for i in range(10):
                batch = build_batch([(b"k", os.urandom(1500), [], TS + i)])
                assert (await produce(conn, "many", p, batch)).error_code == E.none
        hot, cold = await connect(broker, sendfile=True), await connect(broker, sendfile=False)
        req = fetch_frame(3, 12, [("many", p, 0, 1 << 20) for p in range(8)])
        want = await raw_reply(cold, req)
        assert await raw_reply(hot, req) == want  # warms the shared read handles
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(100):
            assert await raw_reply(hot, req) == want
        assert len(os.listdir("/proc/self/fd")) == fds and RANGES.count == 0
        capacity, refused = RANGES.capacity, RANGES.refused
        RANGES.capacity = 3  # fewer descriptors than the reply has ranges
        try:
            assert await raw_reply(hot, req) == want
            assert RANGES.refused > refused
        finally:
            RANGES.capacity = capacity
        assert len(os.listdir("/proc/self/fd")) == fds and RANGES.count == 0
    finally:
        await broker.stop()


async def test_real_clients_consume_by_sendfile(tmp_path: Path) -> None:
    """confluent-kafka, kafka-python, aiokafka and kcat read every codec back identically
    from a broker that sends Fetch log bytes by sendfile (the counter shows it did)."""
    import shutil

    from tests import scenarios

    if not shutil.which("kcat"):
        pytest.skip("kcat not installed (apt-get install kcat)")
    broker = await started(tmp_path)
    try:
        sent = STATS.bytes
        bootstrap = f"127.0.0.1:{broker.config.port}"
        await asyncio.to_thread(scenarios.keyed_records_every_codec, bootstrap, "orders")
        assert STATS.bytes > sent
        await until(lambda: RANGES.count == 0)
    finally:
        await broker.stop()


async def test_tls_connections_keep_pread_and_get_the_same_reply(tmp_path: Path) -> None:
    """sendfile cannot encrypt: a TLS connection's Fetch reads bytes (no range, nothing by
    sendfile) and its reply is the plaintext connection's, byte for byte."""
    import ssl

    from cluster.auth.listeners import parse_listener
    from peers.certs import make_pki

    pki = make_pki(tmp_path / "pki")
    broker = await started(tmp_path, listeners=[
        parse_listener("PLAIN=PLAINTEXT://127.0.0.1:0"), parse_listener("SECURE=SSL://127.0.0.1:0")],
        ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key)
    try:
        conn = await RawConn.open(broker.config.listener("PLAIN").port)
        await big_partition(conn, "big", segment_bytes=2_000_000, batches=4)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        r, w = await asyncio.open_connection("127.0.0.1", broker.config.listener("SECURE").port,
                                             ssl=ctx, server_hostname="127.0.0.1")
        tls = RawConn(r, w)
        req = fetch_frame(5, 12, [("big", 0, 0, 64 << 20)])
        sent, opened = STATS.bytes, RANGES.refused
        got = await raw_reply(tls, req)
        assert STATS.bytes == sent and not any(c.session.sendfile for c in broker.connections.connections
                                               if c.session and c.session.listener == "SECURE")
        assert got == await raw_reply(conn, req) and STATS.bytes > sent
        assert RANGES.refused == opened
    finally:
        await broker.stop()


async def test_a_transport_without_a_socket_gets_the_ranges_as_bytes(tmp_path: Path) -> None:
    """send_reply's fallback: ranges read a chunk at a time and written as bytes, in order,
    and closed afterwards."""
    from cluster.broker import sendfile
    from cluster.log.file_range import RangeBudget

    data = os.urandom(3 * sendfile.CHUNK + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    budget = RangeBudget(4)
    try:
        ranges = [budget.open(fd, str(path), 0, 10), budget.open(fd, str(path), 7, len(data) - 7)]
    finally:
        os.close(fd)

    class Transport:
        def get_extra_info(self, name: str, default=None):
            return default

        def is_closing(self) -> bool:
            return False

    class Writer:
        transport = Transport()
        out = bytearray()

        def writelines(self, parts) -> None:
            for p in parts:
                self.out += p

        async def drain(self) -> None:
            pass

    writer = Writer()
    await sendfile.send_reply(writer, [b"head", ranges[0], b"mid", ranges[1], b"tail"])  # type: ignore[arg-type]
    assert bytes(writer.out) == b"head" + data[:10] + b"mid" + data[7:] + b"tail"
    assert budget.count == 0 and all(r.fd == -1 for r in ranges)
