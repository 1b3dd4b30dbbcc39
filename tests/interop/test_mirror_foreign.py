"""The mirror with foreign clusters: Apache Kafka -> dcmirror (offsets preserved),
dcmirror -> Apache Kafka (translation mode with offset syncs), and Tansu -> dcmirror."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests import clients
from tests.mirror.conftest import link, write_config
from tests.processes import MirrorProcess, wait_until

pytestmark = pytest.mark.interop
PARTS = 3


def ends(bootstrap: str, topic: str, n: int = PARTS) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(n)}
    finally:
        c.close()


def produce_mix(bootstrap: str, topic: str) -> int:
    n = 0
    for codec in clients.CODECS:
        recs = clients.make_records(f"{codec}", 30)
        clients.produce_confluent(bootstrap, topic, recs, codec)
        clients.produce_kafka_python(bootstrap, topic, clients.make_records(f"kp-{codec}", 10), codec)
        n += 40
    return n


@pytest.fixture
def mirror_procs():
    started: list[MirrorProcess] = []

    def start(cfg: Path) -> MirrorProcess:
        m = MirrorProcess(cfg).start()
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def test_apache_kafka_to_dcmirror_preserves_offsets(kafka_broker, cluster, topic_name, tmp_path, mirror_procs) -> None:
    clients.create_topic(kafka_broker.bootstrap, topic_name, PARTS)
    n = produce_mix(kafka_broker.bootstrap, topic_name)
    cfg = write_config(tmp_path / "m.yaml", {"kafka": kafka_broker.bootstrap, "east": cluster.bootstrap},
                       [link("kafka-to-east", "kafka", "east", [re.escape(topic_name)])])
    m = mirror_procs(cfg)
    wait_until(lambda: ends(kafka_broker.bootstrap, topic_name) == ends(cluster.bootstrap, topic_name),
               what="copied from Apache Kafka")
    assert m.status()["links"][0]["mode"] == "preserve-offsets"
    end = clients.end_offsets(kafka_broker.bootstrap, topic_name, PARTS)
    src = clients.consume_confluent(kafka_broker.bootstrap, topic_name, PARTS, end)
    dst = clients.consume_confluent(cluster.bootstrap, topic_name, PARTS, end)
    assert len(src) == n and dst == src


def test_dcmirror_to_apache_kafka_translates_offsets(kafka_broker, cluster, topic_name, tmp_path, mirror_procs) -> None:
    clients.create_topic(cluster.bootstrap, topic_name, PARTS)
    n = produce_mix(cluster.bootstrap, topic_name)
    cfg = write_config(tmp_path / "m.yaml", {"east": cluster.bootstrap, "kafka": kafka_broker.bootstrap},
                       [link("east-to-kafka", "east", "kafka", [re.escape(topic_name)])])
    m = mirror_procs(cfg)
    wait_until(lambda: sum(ends(kafka_broker.bootstrap, topic_name).values()) == n, what="copied to Apache Kafka")
    assert m.status()["links"][0]["mode"] == "translate"
    end = clients.end_offsets(cluster.bootstrap, topic_name, PARTS)
    src = clients.consume_confluent(cluster.bootstrap, topic_name, PARTS, end)
    dst = clients.consume_confluent(kafka_broker.bootstrap, topic_name, PARTS,
                                    clients.end_offsets(kafka_broker.bootstrap, topic_name, PARTS))

    def content(rs):  # per partition, in order: offsets may differ, nothing else may
        return sorted((r.partition, i, r.key, r.value, r.headers, r.timestamp)
                      for i, r in enumerate(sorted(rs, key=lambda r: (r.partition, r.offset))))

    assert len(dst) == n
    assert Counter((r.partition, r.key, r.value, r.headers, r.timestamp) for r in dst) == \
        Counter((r.partition, r.key, r.value, r.headers, r.timestamp) for r in src)
    for p in range(PARTS):
        assert [(r.key, r.value) for r in src if r.partition == p] == \
            [(r.key, r.value) for r in dst if r.partition == p]
    assert content(dst) is not None
    # offset syncs were written to the target
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=5).topics
    assert "__dcmirror.offset-syncs.east-to-kafka" in topics


def test_tansu_to_dcmirror(tansu_broker, cluster, topic_name, tmp_path, mirror_procs) -> None:
    clients.create_topic(tansu_broker.bootstrap, topic_name, PARTS)
    recs = clients.make_records("t", 60)
    clients.produce_confluent(tansu_broker.bootstrap, topic_name, recs, "lz4")
    cfg = write_config(tmp_path / "m.yaml", {"tansu": tansu_broker.bootstrap, "east": cluster.bootstrap},
                       [link("tansu-to-east", "tansu", "east", [re.escape(topic_name)])])
    mirror_procs(cfg)
    wait_until(lambda: sum(ends(cluster.bootstrap, topic_name).values()) == 60, what="copied from Tansu")
    dst = clients.consume_confluent(cluster.bootstrap, topic_name, PARTS,
                                    clients.end_offsets(cluster.bootstrap, topic_name, PARTS))
    assert Counter((r.key, r.value, r.headers) for r in dst) == Counter((k, v, tuple(h)) for k, v, h in recs)
