"""cleanup.policy=compact end to end: a real cluster process, confluent-kafka on both ends.

Many updates of a few keys go to a topic with small segments; the broker's housekeeping
compacts it in the background; a consumer reading from the beginning then sees the latest
value of every key (a deleted key not at all, once its tombstone's delete.retention.ms has
passed), at ascending offsets with gaps. A record without a key is refused, as by Kafka.
"""

from __future__ import annotations

import time

import pytest

from tests.processes import wait_until

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "compacted"
KEYS = [f"k{i}" for i in range(10)]
UPDATES = 3000


def consume_all(bootstrap: str) -> list[tuple[int, bytes | None, bytes | None]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-e2e",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
        c.assign([TopicPartition(TOPIC, 0, confluent_kafka.OFFSET_BEGINNING)])
        out = []
        while True:
            msg = c.poll(5)
            if msg is None:
                raise TimeoutError("no message nor end of partition within 5 s")
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and (not out or out[-1][0] >= high - 1):
                    return out
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(msg.error())
            out.append((msg.offset(), msg.key(), msg.value()))
    finally:
        c.close()


COMMON = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"}


def test_consumer_sees_latest_value_per_key_after_background_compaction(cluster_factory) -> None:
    cluster = cluster_factory("east", "--retention-check-interval-ms", "100")
    try:
        scenario(cluster.bootstrap, {**COMMON, "segment.bytes": "4096"})
    except TimeoutError as exc:
        part_dir = next(cluster.data_dir.rglob(f"{TOPIC}-0"), None)
        files = sorted(p.name for p in part_dir.iterdir()) if part_dir else []
        raise AssertionError(f"{exc}\nfiles: {files}\nbroker log:\n{cluster.log_text()[-4000:]}") from None


@pytest.mark.interop
def test_same_scenario_against_apache_kafka() -> None:
    """The reference: Kafka 4.3 (segment.bytes may not go below 1 MiB there: roll by time)."""
    from peers.common import PeerUnavailable
    from peers.fetch import ensure_kafka, java_path
    from peers.kafka_broker import KafkaBroker

    try:
        java_path()
        ensure_kafka()
    except PeerUnavailable as exc:
        pytest.skip(f"Apache Kafka unavailable: {exc}")
    with KafkaBroker(extra_config={"log.cleaner.backoff.ms": "200"}) as kafka:
        scenario(kafka.bootstrap, {**COMMON, "segment.ms": "100"}, pace=True)


def scenario(bootstrap: str, configs: dict[str, str], *, pace: bool = False) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(TOPIC, 1, 1, config=configs)]).values():
        fut.result(timeout=20)

    errors: list = []
    # Small batches whatever the load, so the active segment (never cleaned) holds few records.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10,
                  "compression.type": "lz4", "partitioner": "murmur2_random"})
    latest: dict[bytes, bytes | None] = {}
    for i in range(UPDATES):
        key = KEYS[i % len(KEYS)]
        if key == "k9" and i > UPDATES // 2:
            continue  # k9 stops here: deleted below, never written again
        value = f"{key}-{i}".encode()
        p.produce(TOPIC, key=key, value=value, on_delivery=lambda e, m: e and errors.append(e))
        latest[key.encode()] = value
        if i == UPDATES // 2:
            p.produce(TOPIC, key="k9", value=None, on_delivery=lambda e, m: e and errors.append(e))
            latest[b"k9"] = None
            for j in range(5):  # written once: they stay in a cleaned segment, gaps around them
                p.produce(TOPIC, key=f"cold{j}", value=b"once", on_delivery=lambda e, m: e and errors.append(e))
                latest[f"cold{j}".encode()] = b"once"
        p.poll(0)
        if pace and i % 100 == 0:  # time-rolled segments need time to pass
            p.flush(10)
            time.sleep(0.12)
    p.flush(30)
    assert errors == []

    refused: list = []
    p.produce(TOPIC, value=b"no key", on_delivery=lambda e, m: refused.append(e))
    p.flush(30)
    assert refused and refused[0] is not None and refused[0].code() == KafkaError.INVALID_RECORD

    def compacted():
        recs = consume_all(bootstrap)
        done = len(recs) < UPDATES // 5 and b"k9" not in {k for _, k, _ in recs}
        return recs if done else None

    recs = wait_until(compacted, timeout=90, interval=0.5, what="background compaction")
    offsets = [o for o, _, _ in recs]
    assert offsets == sorted(set(offsets))
    assert offsets[-1] - offsets[0] + 1 > len(offsets)  # gaps where superseded records were
    seen: dict[bytes, bytes | None] = {}
    for _, k, v in recs:
        seen[k] = v
    assert seen == {k: v for k, v in latest.items() if v is not None}
    assert all(k is not None for _, k, _ in recs)
