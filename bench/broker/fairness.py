"""Fairness under a pipelining client: `python -m bench.broker.fairness [--targets ...]`.

Issue 9's probe: one connection writes 2,000 Metadata requests at once while another
client times ApiVersions round trips; before the broker yielded between requests, that
client waited 109 s. Each target is started fresh; a probe first measures an idle broker,
then again while a pipeliner (its own process, reading its replies) is being served. The
acceptance is a loaded p99 under 50 ms.
"""
from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import sys
import time

import click

from bench.broker.targets import TARGETS
from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame

API_VERSIONS = {"client_software_name": "bench", "client_software_version": "1"}


def _request(api_key: int, version: int, body: dict, cid: int, client: str) -> bytes:
    req = build(codec.request_schema(api_key, version), body)
    return frame(codec.encode_request(req, cid, client, api_key=api_key, api_version=version))


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return bytes(buf)

    return exactly(int.from_bytes(exactly(4), "big"))


def _connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=300)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _create_topics(bootstrap: str, topics: int, partitions: int) -> None:
    with _connect(bootstrap) as sock:
        sock.sendall(_request(19, 7, {"topics": [
            {"name": f"fair-{i}", "num_partitions": partitions, "replication_factor": 1,
             "assignments": [], "configs": []} for i in range(topics)],
            "timeout": 30_000, "validate_only": False}, 1, "bench"))
        _read_frame(sock)
        # Wait until Metadata lists them all with leaders (Kafka settles asynchronously).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sock.sendall(_request(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                          "include_topic_authorized_operations": False}, 2, "bench"))
            _, md = codec.decode_response(_read_frame(sock), codec.response_schema(3, 12))
            ready = [t for t in md.topics if str(t.name).startswith("fair-")
                     and len(t.partitions) == partitions and all(p.leader_id >= 0 for p in t.partitions)]
            if len(ready) == topics:
                return
            time.sleep(0.1)
        raise TimeoutError("topics did not appear in Metadata")


def _pipeliner(bootstrap: str, count: int, sent: mp.Event, out: mp.Queue) -> None:
    sock = _connect(bootstrap)
    body = {"topics": None, "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}
    data = b"".join(_request(3, 12, body, cid, "pipeliner") for cid in range(count))
    t0 = time.perf_counter()
    sock.sendall(data)
    sent.set()
    for cid in range(count):
        got = int.from_bytes(_read_frame(sock)[:4], "big", signed=True)
        assert got == cid, (got, cid)
    out.put(time.perf_counter() - t0)
    sock.close()


def _probe_once(sock: socket.socket, cid: int) -> float:
    t0 = time.perf_counter()
    sock.sendall(_request(18, 3, API_VERSIONS, cid, "probe"))
    _read_frame(sock)
    return time.perf_counter() - t0


def _summary(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return (f"n={len(s)} p50 {statistics.median(s) * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms  "
            f"max {s[-1] * 1000:.2f} ms")


def measure(bootstrap: str, pipelined: int) -> tuple[list[float], list[float], float]:
    probe = _connect(bootstrap)
    idle = [_probe_once(probe, cid) for cid in range(300)]
    ctx = mp.get_context("spawn")
    sent, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_pipeliner, args=(bootstrap, pipelined, sent, out))
    proc.start()
    sent.wait(60)
    loaded: list[float] = []
    cid = 1000
    while proc.is_alive() and out.empty():
        cid += 1
        loaded.append(_probe_once(probe, cid))
    took = out.get(timeout=600)
    proc.join()
    probe.close()
    return idle, loaded, took


@click.command()
@click.option("--targets", default="dcmirror,kafka", show_default=True,
              help="Comma-separated: " + ",".join(TARGETS))
@click.option("--pipelined", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--topics", type=click.IntRange(0), default=10, show_default=True)
@click.option("--partitions", type=click.IntRange(1), default=2, show_default=True)
def main(targets: str, pipelined: int, topics: int, partitions: int) -> None:
    """Another client's ApiVersions latency while one connection pipelines Metadata."""
    for name in [t.strip() for t in targets.split(",") if t.strip()]:
        if name not in TARGETS:
            raise click.BadParameter(f"unknown target {name!r}", param_hint="--targets")
        running = TARGETS[name].start()
        try:
            if topics:
                _create_topics(running.bootstrap, topics, partitions)
            idle, loaded, took = measure(running.bootstrap, pipelined)
        finally:
            running.stop()
        print(f"{TARGETS[name].label}: {pipelined} pipelined Metadata ({topics} topics x "
              f"{partitions} partitions) served in {took:.2f} s", flush=True)
        print(f"  probe ApiVersions, idle broker:   {_summary(idle)}")
        print(f"  probe ApiVersions, during it:     {_summary(loaded)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
