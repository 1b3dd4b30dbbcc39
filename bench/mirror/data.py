"""The backlog every contender copies: JSON-like 1 KB records, lz4-compressed by the
producer into ~64 KiB batches, spread over 12 partitions, written once per source cluster.

Why JSON-like rather than random bytes: lz4 on random bytes is a no-op, and a mirror that
re-compresses (MM2, the per-record loop) would then pay for compression without it showing.
A pool of distinct values compresses ~2-3x with lz4, like typical event payloads.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import cramjam
from confluent_kafka import KafkaException, Producer

_WORDS = ("order payment refund customer invoice shipment warehouse address street city "
          "country region product category price discount coupon cart checkout session "
          "device browser mobile desktop tablet campaign referrer status pending shipped "
          "delivered cancelled returned priority standard express currency euro dollar "
          "account balance credit debit transfer merchant terminal receipt").split()


def make_pool(value_size: int, count: int = 4096, seed: int = 7) -> list[bytes]:
    """`count` distinct JSON-ish values of exactly `value_size` bytes."""
    rng = random.Random(seed)
    pool = []
    for i in range(count):
        head = (f'{{"id":{rng.randrange(10**12)},"user":"u{rng.randrange(10**6):06d}",'
                f'"ts":{1_700_000_000_000 + rng.randrange(10**9)},'
                f'"event":"{rng.choice(_WORDS)}","amount":{rng.randrange(10**6) / 100:.2f},'
                f'"note":"')
        words: list[str] = []
        n = len(head) + 2
        while n < value_size:
            w = rng.choice(_WORDS) if rng.random() < 0.8 else f"{rng.randrange(10**8):x}"
            words.append(w)
            n += len(w) + 1
        v = (head + " ".join(words))[: value_size - 2] + '"}'
        pool.append(v.encode()[:value_size].ljust(value_size, b" "))
    return pool


def lz4_ratio(pool: list[bytes], batch_bytes: int) -> float:
    """Uncompressed / lz4-compressed size of one batch worth of pool values."""
    chunk = b"".join(pool[: max(1, batch_bytes // len(pool[0]))])
    return len(chunk) / len(bytes(cramjam.lz4.compress(chunk)))


@dataclass(frozen=True)
class Backlog:
    topic: str
    records: int
    value_bytes: int
    produce_seconds: float


def producer_config(bootstrap: str, batch_kb: int, linger_ms: float = 5) -> dict:
    return {"bootstrap.servers": bootstrap, "compression.type": "lz4",
            "batch.size": batch_kb * 1024, "linger.ms": linger_ms, "acks": "all",
            "enable.idempotence": False, "queue.buffering.max.kbytes": 1 << 20,
            "queue.buffering.max.messages": 1_000_000}


def produce_backlog(bootstrap: str, topic: str, total_bytes: int, pool: list[bytes],
                    batch_kb: int) -> Backlog:
    """Produce `total_bytes` of values (no keys, sticky partitioner) and wait for every ack."""
    p = Producer(producer_config(bootstrap, batch_kb))
    failed: list[object] = []

    def on_delivery(err: object, _m: object) -> None:
        if err is not None:
            failed.append(err)

    size = len(pool[0])
    count = total_bytes // size
    n = len(pool)
    p.list_topics(topic, timeout=30)
    t0 = time.perf_counter()
    for i in range(count):
        while True:
            try:
                p.produce(topic, pool[i % n], on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.005)
        if i & 0x3FFF == 0:
            p.poll(0)
    left = p.flush(300)
    dt = time.perf_counter() - t0
    if left or failed:
        raise KafkaException(f"backlog: {left} undelivered, {len(failed)} failed ({failed[:1]})")
    return Backlog(topic, count, count * size, dt)
