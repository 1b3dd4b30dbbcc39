"""Helpers of the failover/failback scenarios: the CLI as a subprocess, real consumer groups."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[2]


def cli(*args: object, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    """`dcmirror ARGS` without a terminal (stdin closed): it must never wait for input."""
    proc = subprocess.run([sys.executable, "-m", "dcmirror_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"dcmirror {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def cli_json(*args: object) -> dict:
    return json.loads(cli(*args, "--json").stdout)


def records(prefix: str, n: int) -> list[tuple[bytes, bytes, list]]:
    return [(f"k{i % 17}".encode(), f"{prefix}-{i}".encode(), [("n", str(i).encode())]) for i in range(n)]


def produce(bootstrap: str, topic: str, recs, codec: str = "lz4") -> None:
    from tests import clients

    clients.produce_confluent(bootstrap, topic, recs, codec)


def consume_group(bootstrap: str | Mapping[str, Any], topic: str, group: str, *, limit: int | None = None,
                  idle_s: float = 4.0) -> list[tuple[int, int, bytes]]:
    """Join ``group``, consume up to ``limit`` records (or until idle), commit exactly what
    was consumed, leave. Returns (partition, offset, value) in consumption order.
    ``bootstrap`` is an address, or a whole librdkafka config (e.g. with SASL_SSL settings)."""
    from confluent_kafka import Consumer, TopicPartition

    conf = {"bootstrap.servers": bootstrap} if isinstance(bootstrap, str) else dict(bootstrap)
    c = Consumer({**conf, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                  "enable.partition.eof": False})
    c.subscribe([topic])
    out: list[tuple[int, int, bytes]] = []
    last_seen = time.monotonic()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (limit is None or len(out) < limit):
        msgs = c.consume(100 if limit is None else min(100, limit - len(out)), timeout=0.5)
        got = [m for m in msgs if not m.error()]
        for m in got:
            out.append((m.partition(), m.offset(), m.value()))
        if got:
            last_seen = time.monotonic()
        elif time.monotonic() - last_seen > idle_s and (out or time.monotonic() - last_seen > idle_s * 3):
            break
    nxt: dict[int, int] = {}
    for p, o, _ in out:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    if nxt:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()], asynchronous=False)
    c.close()
    return out


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in res}
    finally:
        c.close()


def ends(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def last_contact(bootstrap: str, link: str):
    from cluster.client.client import KafkaClient
    from mirror.records.link_state import read_last_contact

    async def run():
        async with KafkaClient(bootstrap) as c:
            return await read_last_contact(c, link)

    return asyncio.run(run())


def link_state(bootstrap: str, link: str):
    from cluster.client.client import KafkaClient
    from mirror.records.link_state import read_state

    async def run():
        async with KafkaClient(bootstrap) as c:
            return await read_state(c, link)

    return asyncio.run(run())
