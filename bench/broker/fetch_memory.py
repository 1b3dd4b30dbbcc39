"""Memory of slow Fetch readers: `python -m bench.broker.fetch_memory [--targets ...]`.

Issue 9's probe: a Fetch with max_bytes 1 MiB (partition_max_bytes unlimited) returned a
whole 286 MiB partition, and three readers that did not take their replies held the
broker at 1.8 GiB. Here each target gets one partition of --partition-mib MiB (1 MB
batches), then --readers connections (receive buffer 4 KiB) each send that Fetch and do
not read; the target's RSS is taken before and a few seconds after, then one reader
takes its reply to show its size. Kafka's RSS is its JVM heap, so compare its reply size,
not its RSS.

`--slow-readers` then measures what serving slow readers costs: --readers connections
each read the whole partition with 1 MiB Fetches (one 1 MB batch per reply), taking each
reply 64 KiB at a time with a 1 ms pause between (at most ~64 MB/s per reader, receive
buffer 64 KiB); reported are the broker's CPU seconds per GB delivered and its peak RSS.
"""
from __future__ import annotations

import socket
import sys
import threading
import time

import click

from bench.broker.targets import TARGETS
from peers.common import cpu_seconds
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from cluster.wire.build import build
from cluster.wire.framing import frame

MiB = 1 << 20
TOPIC = "fetch-memory"


def _request(api_key: int, version: int, body: dict, cid: int) -> bytes:
    req = build(codec.request_schema(api_key, version), body)
    return frame(codec.encode_request(req, cid, "bench", api_key=api_key, api_version=version))


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def _call(sock: socket.socket, api_key: int, version: int, body: dict, cid: int):
    sock.sendall(_request(api_key, version, body, cid))
    data = _exactly(sock, int.from_bytes(_exactly(sock, 4), "big"))
    return codec.decode_response(data, codec.response_schema(api_key, version))[1]


def _connect(bootstrap: str, rcvbuf: int | None = None) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(300)
    sock.connect((host, int(port)))
    return sock


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _fill(bootstrap: str, mib: int) -> None:
    with _connect(bootstrap) as sock:
        _call(sock, 19, 7, {"topics": [{"name": TOPIC, "num_partitions": 1, "replication_factor": 1,
                                        "assignments": [], "configs": []}],
                            "timeout": 30_000, "validate_only": False}, 1)
        batch = build_batch([(b"k", b"v" * 1_000_000, [], int(time.time() * 1000))])
        deadline = time.monotonic() + 30
        cid, written = 1, 0
        while written < mib * MiB:
            cid += 1
            resp = _call(sock, 0, 9, {"transactional_id": None, "acks": -1, "timeout": 30_000,
                                      "topic_data": [{"name": TOPIC, "partition_data": [
                                          {"index": 0, "records": batch}]}]}, cid)
            code = resp.responses[0].partition_responses[0].error_code
            if code:  # Kafka: the partition may still be settling right after the create
                if time.monotonic() > deadline:
                    raise RuntimeError(f"produce failed with error {code}")
                time.sleep(0.1)
                continue
            written += len(batch)


def _fetch_body(max_bytes: int, offset: int = 0) -> dict:
    return {"max_wait": 0, "min_bytes": 0, "max_bytes": max_bytes, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "replica_id": -1,
            "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "fetch_offset": offset,
                                                        "partition_max_bytes": 2**31 - 1}]}],
            "forgotten_topics_data": [], "rack_id": ""}


def _slow_read_all(bootstrap: str, batches: int, got: list[int]) -> None:
    """Fetch offsets 0..batches-1 (one 1 MB batch each), each reply read slowly."""
    with _connect(bootstrap, rcvbuf=64 * 1024) as sock:
        for offset in range(batches):
            sock.sendall(_request(1, 12, _fetch_body(MiB, offset), offset + 1))
            left = int.from_bytes(_exactly(sock, 4), "big")
            while left:
                n = len(sock.recv(min(left, 64 * 1024)))
                if not n:
                    raise ConnectionError("broker closed the connection")
                left -= n
                got[0] += n
                time.sleep(0.001)


def measure_slow_readers(bootstrap: str, pid: int, readers: int, batches: int) -> tuple[float, float, float]:
    """(broker CPU-s per GB delivered, peak RSS MiB, seconds) for `readers` slow readers."""
    counts = [[0] for _ in range(readers)]
    threads = [threading.Thread(target=_slow_read_all, args=(bootstrap, batches, c)) for c in counts]
    peak, done = 0.0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, took = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    done.set()
    sampler.join()
    total = sum(c[0] for c in counts)
    return cpu / (total / 1e9), peak, took


def measure(bootstrap: str, pid: int, readers: int, max_bytes: int) -> tuple[float, float, int]:
    """(RSS before, RSS with the slow readers, one reply's size in bytes)."""
    time.sleep(1)
    before = rss_mib(pid)
    socks = [_connect(bootstrap, rcvbuf=4096) for _ in range(readers)]
    for sock in socks:
        sock.sendall(_request(1, 12, _fetch_body(max_bytes), 7))
    time.sleep(3)
    during = rss_mib(pid)
    size = int.from_bytes(_exactly(socks[0], 4), "big")
    _exactly(socks[0], size)
    for sock in socks:
        sock.close()
    return before, during, size


@click.command()
@click.option("--targets", default="dcmirror,kafka", show_default=True,
              help="Comma-separated: " + ",".join(TARGETS))
@click.option("--partition-mib", type=click.IntRange(1), default=286, show_default=True)
@click.option("--readers", type=click.IntRange(1), default=3, show_default=True)
@click.option("--max-bytes", type=click.IntRange(0), default=MiB, show_default=True)
@click.option("--slow-readers", is_flag=True,
              help="Also: CPU-s/GB and peak RSS while the readers take the whole partition slowly.")
def main(targets: str, partition_mib: int, readers: int, max_bytes: int, slow_readers: bool) -> None:
    """RSS of a broker while slow readers hold 1 MiB Fetches of a big partition."""
    for name in [t.strip() for t in targets.split(",") if t.strip()]:
        if name not in TARGETS:
            raise click.BadParameter(f"unknown target {name!r}", param_hint="--targets")
        running = TARGETS[name].start()
        try:
            _fill(running.bootstrap, partition_mib)
            before, during, size = measure(running.bootstrap, running.pid, readers, max_bytes)
            slow = (measure_slow_readers(running.bootstrap, running.pid, readers,
                                         partition_mib * MiB // 1_000_100) if slow_readers else None)
        finally:
            running.stop()
        print(f"{TARGETS[name].label}: {partition_mib} MiB partition, {readers} slow readers of "
              f"max_bytes {max_bytes}: RSS {before:.0f} MiB before, {during:.0f} MiB with them; "
              f"one reply {size / MiB:.2f} MiB", flush=True)
        if slow is not None:
            print(f"{TARGETS[name].label}: {readers} slow readers taking the partition: broker "
                  f"{slow[0]:.2f} CPU-s/GB, peak RSS {slow[1]:.0f} MiB, {slow[2]:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
