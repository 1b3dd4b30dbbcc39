"""Decompression and record-count bombs through every write path, against a real broker
process: each is refused, the broker's peak RSS stays under 300 MiB, and a second client's
ApiVersions round trips stay fast throughout (the issue's bound: 100 ms)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import cramjam
import pytest
from kio.schema.errors import ErrorCode

from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import CODEC_GZIP, CODEC_ZSTD
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import create, produce
from tests.cluster.wire.malformed import TS, reseal, with_payload

MIRROR_APPEND = 10000
MiB = 1 << 20


def _zstd_zeros(chunks_of_64mib: int) -> bytes:
    c = cramjam.zstd.Compressor(level=1)
    zeros = b"\0" * (64 * MiB)
    for _ in range(chunks_of_64mib):
        c.compress(zeros)
    return bytes(c.finish())


def _bomb(payload: bytes, codec: int, count: int = 1, attributes_extra: int = 0,
          producer_id: int = -1) -> bytes:
    b = bytearray(with_payload(b"", count)[:61]) + payload
    struct.pack_into(">h", b, 21, codec | attributes_extra)
    struct.pack_into(">q", b, 43, producer_id)
    return reseal(b)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz = co.compress(b"\0" * (256 * MiB)) + co.flush()
    zstd_6gib = _zstd_zeros(96)
    assert len(zstd_6gib) < 200_000
    # a record-count bomb: 10 M claimed records (each at least 7 bytes) in a small batch
    tiny = cramjam.gzip.compress(b"\x0c\x00\x00\x00\x02\x00\x00" * 100_000)
    return {
        "zstd 196 KB -> 6 GiB": _bomb(zstd_6gib, CODEC_ZSTD),
        "gzip 256 MiB": _bomb(gz, CODEC_GZIP),
        "record count 10M": _bomb(bytes(tiny), CODEC_GZIP, count=10_000_000),
        "control marker zstd 6 GiB": _bomb(zstd_6gib, CODEC_ZSTD, attributes_extra=0x30, producer_id=4),
    }


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "broker closed the ping connection"
        buf += chunk
    return buf


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _rounds(at_least: int, seconds: float):
    """Round numbers until both `at_least` rounds and `seconds` have passed (enough pings)."""
    start = time.monotonic()
    n = 0
    while n < at_least or time.monotonic() - start < seconds:
        yield n
        n += 1


class Pinger:
    """ApiVersions round trips timed from a thread with a blocking socket, so the test's own
    event loop (busy encoding bombs) can neither hide nor cause a delay."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Pinger":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.latencies.sort()

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            request = struct.pack(">hhih", 18, 0, 7, 4) + b"ping"
            frame = struct.pack(">i", len(request)) + request
            while not self._stop.is_set():
                t = time.perf_counter()
                s.sendall(frame)
                size = struct.unpack(">i", _recv(s, 4))[0]
                reply = _recv(s, size)
                self.latencies.append(time.perf_counter() - t)
                assert struct.unpack(">ih", reply[:6]) == (7, 0)
                self._stop.wait(0.005)

    @property
    def worst(self) -> float:
        return self.latencies[-1]


async def test_bombs_refused_with_bounded_memory_and_latency(cluster, bombs) -> None:
    conn = await RawConn.open(cluster.port)
    topics = {"plain": {}, "compacted": {"cleanup.policy": "compact"},
              "recompressed": {"compression.type": "lz4"}, "mirror": {"dcmirror.mirror.source": "src"}}
    for name, configs in topics.items():
        assert (await create(conn, name, configs={"max.message.bytes": str(2 * MiB), **configs})).error_code == 0

    async def mirror(topic: str, records: bytes):
        resp = await conn.call(MIRROR_APPEND, 0, {"transactional_id": None, "acks": -1, "timeout": 5000,
                                                  "topic_data": [{"name": topic, "partition_data": [
                                                      {"index": 0, "records": records}]}]})
        return resp.responses[0].partition_responses[0]

    # Control phase: as many requests of the same sizes, but valid batches, so the worst
    # round trip this machine gives right now (other processes, GC) is known.
    valid = {name: build_batch([(b"k", os.urandom(len(b) - 100), [], TS)]) for name, b in bombs.items()}
    with Pinger(cluster.port) as control:
        for _ in _rounds(3, 1.0):
            for name, batch in valid.items():
                for topic in ("plain", "plain", "plain", "plain"):
                    assert (await produce(conn, topic, 0, batch)).error_code == 0
    answers = {}
    with Pinger(cluster.port) as during:
        for _ in _rounds(3, 1.0):
            for name, batch in bombs.items():
                for topic in ("plain", "compacted", "recompressed"):
                    if name.startswith("control"):
                        continue
                    answers[(name, topic)] = (await produce(conn, topic, 0, batch)).error_code
                answers[(name, "mirror")] = (await mirror("mirror", batch)).error_code
    assert all(code == ErrorCode.invalid_record for code in answers.values()), answers
    assert _peak_rss_mib(cluster.proc.pid) < 300
    assert len(during.latencies) > 10 and len(control.latencies) > 10
    # The bound is 100 ms; on a loaded machine the control phase's own worst case
    # shows how much of that is not ours, and bombs may not add more than that again.
    assert during.worst < max(0.1, 2 * control.worst), (
        f"worst ApiVersions round trip {during.worst * 1000:.0f} ms during bombs, "
        f"{control.worst * 1000:.0f} ms with valid batches")
    conn.close()
