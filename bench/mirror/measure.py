"""The two measurements of a running mirror.

`copy_backlog`: polls the target topic's end offsets every 50 ms from this process; the
clock and the /proc CPU counters are read when 10% of the backlog is on the target and
again at 90%, so JVM/Python start-up, MM2's Connect rebalances and the tail are not
counted (the wall time from launch to the last record is reported separately).

`replication_latency`: a paced producer (CreateTime set at `produce()`) and a consumer on
the target run as two separate processes (no GIL shared with each other or with the
poller); latency = consumer's wall clock when a fetched chunk arrives - record timestamp.
Both ends use this machine's clock, so there is no skew.
"""
from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from bench.mirror.contenders import Handle
from peers.common import cpu_seconds


class MirrorFailed(RuntimeError):
    pass


def _end_offsets(c: Consumer, topic: str, partitions: int) -> int:
    total = 0
    for p in range(partitions):
        try:
            total += c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1]
        except KafkaException:
            return total  # topic or partition not there yet
    return total


@dataclass(frozen=True)
class CopyResult:
    records: int            # copied inside the measured window
    seconds: float          # window: 10% -> 90% of the backlog on the target
    from_launch_s: float    # mirror launch -> last record on target
    mirror_cpu_s: float     # mirror process tree, over the window
    broker_cpu_s: float     # source + target broker processes, over the window


def copy_backlog(handle: Handle, launched: float, target: str, topic: str, partitions: int,
                 expected: int, broker_pids: list[int], timeout: float,
                 window: tuple[float, float] = (0.1, 0.9)) -> CopyResult:
    """Wait until `expected` records are on the target; rate and CPU are taken between the
    samples where 10% and 90% had arrived, which leaves out start-up transients of every
    contender alike (MM2's Connect rebalances, first fetch sessions, topic creation)."""
    c = Consumer({"bootstrap.servers": target, "group.id": "bench-poller", "log_level": 0})
    try:
        lo: tuple[int, float, float, float] | None = None
        hi: tuple[int, float, float, float] | None = None
        deadline = launched + timeout
        while True:
            if not handle.alive():
                raise MirrorFailed(f"mirror exited during the copy:\n{handle.log_tail()}")
            total = _end_offsets(c, topic, partitions)
            t = time.monotonic()
            sample = (total, t, cpu_seconds(handle.pid), sum(cpu_seconds(p) for p in broker_pids))
            if lo is None and total >= window[0] * expected:
                lo = sample
            if hi is None and total >= window[1] * expected:
                hi = sample
            if total >= expected:
                assert lo is not None and hi is not None
                if hi[0] <= lo[0]:  # all of it in one poll interval: fall back to the end
                    hi = sample
                return CopyResult(hi[0] - lo[0], max(hi[1] - lo[1], 1e-3), t - launched,
                                  hi[2] - lo[2], hi[3] - lo[3])
            if t > deadline:
                raise MirrorFailed(f"copied {total}/{expected} records in {timeout:.0f}s")
            time.sleep(0.05)
    finally:
        c.close()


# ---- latency -----------------------------------------------------------------------------

def _paced_producer(bootstrap: str, topic: str, pool: list[bytes], rate: float,
                    duration: float, batch_kb: int, go: "mp.synchronize.Event",
                    out: "mp.Queue") -> None:
    from bench.mirror.data import producer_config
    p = Producer(producer_config(bootstrap, batch_kb, linger_ms=5))
    p.list_topics(topic, timeout=30)
    go.wait(60)
    n, sent = len(pool), 0
    t0 = time.monotonic()
    while True:
        el = time.monotonic() - t0
        if el >= duration:
            break
        due = int(el * rate)
        while sent < due:
            try:
                p.produce(topic, pool[sent % n])
                sent += 1
            except BufferError:
                p.poll(0.001)
        p.poll(0)
        time.sleep(0.001)
    p.flush(60)
    out.put(("produced", sent, time.monotonic() - t0))


def _latency_consumer(bootstrap: str, topic: str, partitions: int, skip_before_ms: float,
                      ready: "mp.synchronize.Event", expected: "mp.Value",
                      timeout: float, out: "mp.Queue") -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-latency",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    c.consume(num_messages=1, timeout=1.0)  # connect and fetch once before the producer starts
    ready.set()
    lat: list[float] = []
    got = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 0 < expected.value <= got:
            break
        # consume(n, timeout) waits for n records or the timeout, which would add up to the
        # timeout to every latency: take what is queued now, else block on one record.
        msgs = c.consume(num_messages=10_000, timeout=0)
        if not msgs:
            m = c.poll(0.05)
            msgs = [m] if m is not None else []
        now_ms = time.time() * 1000
        for m in msgs:
            if m.error() is None:
                got += 1
                ts = m.timestamp()[1]
                if ts >= skip_before_ms:
                    lat.append(now_ms - ts)
    c.close()
    out.put(("consumed", got, lat))


@dataclass(frozen=True)
class LatencyResult:
    rate_mb_s: float        # achieved value bytes/s of the paced producer
    produced: int
    received: int           # on the target when the consumer stopped
    p50_ms: float
    p99_ms: float
    max_ms: float


def replication_latency(source: str, source_topic: str, target: str, target_topic: str,
                        partitions: int, pool: list[bytes], rate_mb_s: float, duration: float,
                        warmup: float, batch_kb: int, drain_timeout: float) -> LatencyResult:
    ctx = mp.get_context("spawn")  # never fork a process that runs librdkafka threads
    go, ready = ctx.Event(), ctx.Event()
    expected = ctx.Value("q", 0)
    out: mp.Queue = ctx.Queue()
    rate = rate_mb_s * 1e6 / len(pool[0])
    start_ms = time.time() * 1000 + 3000  # producer starts within ~3 s of this
    cons = ctx.Process(target=_latency_consumer, args=(
        target, target_topic, partitions, start_ms + warmup * 1000, ready, expected,
        duration + drain_timeout + 60, out), daemon=True)
    prod = ctx.Process(target=_paced_producer, args=(
        source, source_topic, pool, rate, duration, batch_kb, go, out), daemon=True)
    cons.start()
    prod.start()
    try:
        if not ready.wait(60):
            raise MirrorFailed("latency consumer not ready")
        # The warm-up window the consumer skips is counted from this start time.
        wait = start_ms / 1000 - time.time()
        if wait > 0:
            time.sleep(wait)
        go.set()
        results: dict[str, tuple] = {}
        while len(results) < 2:
            kind, *rest = out.get(timeout=duration + drain_timeout + 120)
            results[kind] = tuple(rest)
            if kind == "produced":
                expected.value = rest[0]
        produced, took = results["produced"]
        received, lat = results["consumed"]
    finally:
        for p in (prod, cons):
            p.join(10)
            if p.is_alive():
                p.kill()
    if not lat:
        raise MirrorFailed(f"no latency samples ({received}/{produced} records arrived)")
    lat.sort()
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return LatencyResult(produced * len(pool[0]) / took / 1e6, produced, received,
                         q[49], q[98], lat[-1])
