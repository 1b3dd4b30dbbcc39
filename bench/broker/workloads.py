"""The measurements themselves, with confluent-kafka (librdkafka) as the load generator.

Each function takes the client settings of a target (`Conf`) and returns plain numbers. Throughput counts record value
bytes only (1 MB = 10^6 bytes). Payloads are random bytes and compression is off, so no
broker gets an advantage from compressible data.
"""
from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

Conf = dict[str, str]  # librdkafka settings to reach a target: bootstrap.servers + security


@contextlib.contextmanager
def no_gc():
    """Python's cyclic GC off while measuring: with a million Message objects in flight it
    costs the client-bound small-record runs up to ~40% and adds noise."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


FETCH_QUEUE_BACKOFF_MS = 10  # librdkafka >= 2.4; see consume_throughput


@dataclass(frozen=True)
class Throughput:
    records: int
    bytes: int
    seconds: float

    @property
    def mb_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def msgs_s(self) -> float:
        return self.records / self.seconds


@dataclass(frozen=True)
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float


def create_topics(conf: Conf, names: list[str], partitions: int,
                  timeout: float = 120.0) -> None:
    """Create topics and wait until metadata shows a leader for every partition."""
    admin = AdminClient(dict(conf))
    for fut in admin.create_topics([NewTopic(n, partitions, 1) for n in names],
                                   request_timeout=timeout).values():
        fut.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    wanted = set(names)
    while True:
        md = admin.list_topics(timeout=10)
        ready = {n for n in wanted if n in md.topics and md.topics[n].error is None
                 and len(md.topics[n].partitions) == partitions
                 and all(p.leader >= 0 for p in md.topics[n].partitions.values())}
        if ready == wanted:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(wanted - ready)} topics without leaders after {timeout}s")
        time.sleep(0.2)


def new_topic(conf: Conf, partitions: int, prefix: str = "bench") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    create_topics(conf, [name], partitions)
    return name


def produce_throughput(conf: Conf, topic: str, size: int, count: int,
                       acks: str) -> Throughput:
    """Batched produce: linger.ms=5, batch.size 1 MiB, as fast as the client can go."""
    p = Producer({
        **conf, "acks": acks, "linger.ms": 5,
        "batch.size": 1 << 20, "compression.type": "none",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 20,
        "enable.idempotence": False,
    })
    failed: list[object] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    payload = os.urandom(size)
    produce = p.produce
    p.list_topics(topic, timeout=30)  # metadata and connection before the clock starts
    with no_gc():
        t0 = time.perf_counter()
        for i in range(count):
            while True:
                try:
                    produce(topic, payload, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.001)
            if i & 0x3FFF == 0:
                p.poll(0)
        left = p.flush(120)
        dt = time.perf_counter() - t0
    if left or failed:
        raise KafkaException(f"produce: {left} undelivered, {len(failed)} failed "
                             f"(first: {failed[:1]})")
    return Throughput(count, count * size, dt)


def consume_throughput(conf: Conf, topic: str, partitions: int, expected: int,
                       size: int, timeout: float = 300.0,
                       fetch_queue_backoff_ms: int = FETCH_QUEUE_BACKOFF_MS) -> Throughput:
    """Read `expected` records of `size` bytes from the beginning of every partition
    (assign, no group). Bytes are counted as records x size to keep per-record Python
    work (the client-side limit for small records) to one error check.

    `fetch.queue.backoff.ms` is lowered from librdkafka's 1,000 ms for every target alike:
    with the default, the fetcher sleeps a whole second each time a partition's local
    queue passes `queued.min.messages` (100,000, i.e. only ~10 MB of 100-byte records),
    so 100 B consume measured the phase of that client timer (~0.2-0.37 M msg/s for all
    three brokers, varying run to run) instead of the broker; a broker that ignores
    `max.partition.fetch.bytes` (Tansu) overshoots the queue limit further per cycle and
    looked faster for it. With 10 ms every broker is measured at the client's own limit
    (`python -m bench.broker --fetch-queue-backoff-ms 1000` measures the default)."""
    c = Consumer({
        **conf, "group.id": f"bench-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100, "queued.max.messages.kbytes": 256 * 1024,
        "fetch.queue.backoff.ms": fetch_queue_backoff_ms,
    })
    try:
        c.list_topics(topic, timeout=30)
        got = 0
        with no_gc():
            t0 = time.perf_counter()
            c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
            deadline = t0 + timeout
            while got < expected:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"consume: {got}/{expected} records after {timeout}s")
                for m in c.consume(num_messages=10_000, timeout=1.0):
                    err = m.error()
                    if err is None:
                        got += 1
                    elif err.fatal():
                        raise KafkaException(err)
            dt = time.perf_counter() - t0
        return Throughput(got, got * size, dt)
    finally:
        c.close()


def produce_latency(conf: Conf, topic: str, samples: int, size: int = 100,
                    warmup: int = 50) -> Latency:
    """One produce in flight at a time, acks=1: time from produce() to delivery report."""
    p = Producer({**conf, "acks": "1", "linger.ms": 0,
                  "enable.idempotence": False})
    payload = os.urandom(size)
    p.list_topics(topic, timeout=30)
    times: list[float] = []
    for i in range(warmup + samples):
        t0 = time.perf_counter()
        p.produce(topic, payload, partition=0)
        if p.flush(30) != 0:
            raise KafkaException("latency produce not delivered within 30s")
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    q = statistics.quantiles(times, n=100, method="inclusive")
    return Latency(samples, q[49] * 1e3, q[98] * 1e3)
