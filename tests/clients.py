"""Drive real, unmodified Kafka clients (confluent-kafka, kafka-python, aiokafka, kcat).

The same helpers run against our clusters and against Apache Kafka, so a scenario can be
compared with the reference implementation and not only with clients' tolerance.
Records are (key, value, headers) triples; consumers return `Consumed` tuples that hold
everything a byte-for-byte comparison needs.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import NamedTuple

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


class Consumed(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def make_records(prefix: str, n: int) -> list[Record]:
    return [
        (
            f"{prefix}-key-{i % 37}".encode(),
            f"{prefix}-value-{i}-".encode() * (1 + i % 5),
            [("h1", f"v{i}".encode()), ("trace", str(i * 7).encode())],
        )
        for i in range(n)
    ]


# ---- producers ---------------------------------------------------------------------
def produce_confluent(bootstrap: str, topic: str, records: list[Record], codec: str) -> None:
    from confluent_kafka import Producer

    p = Producer({
        "bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5,
        "partitioner": "murmur2_random", "enable.idempotence": False, "acks": "all",
    })
    errors: list = []
    for k, v, h in records:
        p.produce(topic, value=v, key=k, headers=h, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0
    assert not errors, errors


def produce_kafka_python(bootstrap: str, topic: str, records: list[Record], codec: str) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                      compression_type=None if codec == "none" else codec)
    futs = [p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
    for f in futs:
        f.get(timeout=30)
    p.close()


def produce_aiokafka(bootstrap: str, topic: str, records: list[Record], codec: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                             compression_type=None if codec == "none" else codec)
        await p.start()
        try:
            futs = [await p.send(topic, key=k, value=v, headers=h) for k, v, h in records]
            await asyncio.gather(*futs)
        finally:
            await p.stop()

    asyncio.run(run())


def produce_kcat(bootstrap: str, topic: str, records: list[Record], codec: str) -> None:
    """kcat reads one record per line; headers are per invocation, so all records share
    the first record's headers (the scenario adapts)."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (apt-get install kcat)"
    headers = records[0][2]
    args = [kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-z", codec,
            "-X", "partitioner=murmur2_random"]
    for hk, hv in headers:
        args += ["-H", f"{hk}={hv.decode()}"]
    data = b"".join(k + b"\t" + v + b"\n" for k, v, _ in records)
    subprocess.run(args, input=data, check=True, timeout=60, capture_output=True)


PRODUCERS = {
    "confluent": produce_confluent,
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "kcat": produce_kcat,
}


# ---- consumers ---------------------------------------------------------------------
def consume_confluent(bootstrap: str, topic: str, partitions: int, end: dict[int, int]) -> list[Consumed]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[Consumed] = []
    deadline = time.monotonic() + 60
    want = sum(end.values())
    while len(out) < want and time.monotonic() < deadline:
        for m in c.consume(1000, timeout=1):
            if m.error():
                continue
            out.append(Consumed(m.partition(), m.offset(), m.key(), m.value(),
                                tuple(m.headers() or ()), m.timestamp()[1]))
    c.close()
    return sorted(out)


def consume_kafka_python(bootstrap: str, topic: str, partitions: int, end: dict[int, int]) -> list[Consumed]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    c.seek_to_beginning()
    out: list[Consumed] = []
    want = sum(end.values())
    deadline = time.monotonic() + 60
    while len(out) < want and time.monotonic() < deadline:
        for batch in c.poll(timeout_ms=1000).values():
            for m in batch:
                out.append(Consumed(m.partition, m.offset, m.key, m.value,
                                    tuple(m.headers or ()), m.timestamp))
    c.close()
    return sorted(out)


def consume_aiokafka(bootstrap: str, topic: str, partitions: int, end: dict[int, int]) -> list[Consumed]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Consumed]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await c.start()
        out: list[Consumed] = []
        try:
            c.assign([TopicPartition(topic, p) for p in range(partitions)])
            await c.seek_to_beginning()
            want = sum(end.values())
            deadline = time.monotonic() + 60
            while len(out) < want and time.monotonic() < deadline:
                got = await c.getmany(timeout_ms=1000)
                for batch in got.values():
                    for m in batch:
                        out.append(Consumed(m.partition, m.offset, m.key, m.value,
                                            tuple(m.headers or ()), m.timestamp))
        finally:
            await c.stop()
        return sorted(out)

    return asyncio.run(run())


def consume_kcat(bootstrap: str, topic: str, partitions: int, end: dict[int, int]) -> list[Consumed]:
    """kcat -J prints one JSON object per record, with payloads as strings (our test data is ASCII)."""
    import json

    kcat = shutil.which("kcat")
    assert kcat
    res = subprocess.run([kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J"],
                         check=True, timeout=60, capture_output=True)
    out = []
    for line in res.stdout.decode().splitlines():
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        hdrs = d.get("headers") or []
        pairs = tuple((hdrs[i], hdrs[i + 1].encode() if hdrs[i + 1] is not None else None)
                      for i in range(0, len(hdrs), 2))
        out.append(Consumed(d["partition"], d["offset"],
                            d["key"].encode() if d.get("key") is not None else None,
                            d["payload"].encode() if d.get("payload") is not None else None,
                            pairs, d["ts"]))
    return sorted(out)


CONSUMERS = {
    "confluent": consume_confluent,
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
    "kcat": consume_kcat,
}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    out = {}
    for p in range(partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        out[p] = hi - lo
    c.close()
    return out


def create_topic(bootstrap: str, topic: str, partitions: int, configs: dict[str, str] | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bootstrap})
    fut = a.create_topics([NewTopic(topic, partitions, 1, config=configs or {})])[topic]
    fut.result(30)


# ---- the Java client, through Apache Kafka's own CLI tools ------------------------------
# Kept out of PRODUCERS/CONSUMERS so the scenarios' default client lists do not change;
# the Java tests pass them explicitly. They need the jars fetched by `python -m peers.fetch`.
def _java_tool(main_class: str, *args: str, input: str | None = None,
               timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    from peers.kafka_broker import kafka_tool

    return kafka_tool(main_class, *args, input=input, timeout=timeout)


def produce_java_console(bootstrap: str, topic: str, records: list[Record], codec: str) -> None:
    """kafka-console-producer with its DEFAULT producer settings (idempotence on, acks=all),
    one `h1:v1,h2:v2<TAB>key:value` line per record (parse.headers + parse.key). Keys,
    values and headers must be text without tabs, commas, colons or newlines."""
    from peers.kafka_broker import CONSOLE_PRODUCER

    lines = []
    for k, v, h in records:
        assert k is not None and v is not None
        hdrs = ",".join(f"{hk}:{hv.decode()}" for hk, hv in h)
        lines.append(f"{hdrs}\t{k.decode()}:{v.decode()}\n")
    res = _java_tool(CONSOLE_PRODUCER, "--bootstrap-server", bootstrap, "--topic", topic,
                     "--compression-codec", codec,
                     "--reader-property", "parse.key=true", "--reader-property", "key.separator=:",
                     "--reader-property", "parse.headers=true",
                     input="".join(lines))
    assert res.returncode == 0 and "ERROR" not in res.stderr, res.stderr[-3000:]


def parse_console_line(line: str) -> Consumed:
    """One line of kafka-console-consumer printed with print.timestamp, print.partition,
    print.offset, print.headers and print.key (in that fixed order, tab separated)."""
    ts, part, off, hdrs, key, value = line.split("\t", 5)
    assert ts.startswith("CreateTime:"), line
    headers: tuple[tuple[str, bytes | None], ...] = ()
    if hdrs != "NO_HEADERS":
        pairs = []
        for item in hdrs.split(","):
            hk, _, hv = item.partition(":")
            pairs.append((hk, None if hv == "null" else hv.encode()))
        headers = tuple(pairs)
    return Consumed(int(part.removeprefix("Partition:")), int(off.removeprefix("Offset:")),
                    None if key == "null" else key.encode(),
                    None if value == "null" else value.encode(),
                    headers, int(ts.removeprefix("CreateTime:")))


CONSOLE_PRINT = ["--formatter-property", "print.timestamp=true",
                 "--formatter-property", "print.partition=true",
                 "--formatter-property", "print.offset=true",
                 "--formatter-property", "print.headers=true",
                 "--formatter-property", "print.key=true"]


def consume_java_console(bootstrap: str, topic: str, partitions: int, end: dict[int, int]) -> list[Consumed]:
    """kafka-console-consumer once per non-empty partition (`--partition P --offset earliest`,
    no consumer group), reading exactly the `end[P]` records there."""
    from peers.kafka_broker import CONSOLE_CONSUMER

    out: list[Consumed] = []
    for p in range(partitions):
        if not end.get(p):
            continue
        res = _java_tool(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
                         "--partition", str(p), "--offset", "earliest",
                         "--max-messages", str(end[p]), "--timeout-ms", "60000", *CONSOLE_PRINT)
        assert res.returncode == 0, res.stderr[-3000:]
        got = [parse_console_line(line) for line in res.stdout.splitlines() if line]
        assert len(got) == end[p], (p, len(got), end[p], res.stderr[-3000:])
        out.extend(got)
    return sorted(out)
