"""Failover with Apache Kafka on one side (interop; one Kafka broker for the module).

- Unplanned failover in translation mode, dcmirror east -> Apache Kafka (offsets differ):
  east is killed with acknowledged records never mirrored; `failover --force` reports them
  as the recovery point, commits the group's last checkpoint (translated through the
  offset syncs) on Kafka, and reports how many records the group will read twice: at most
  the part of one batch per partition it had already consumed. The group misses nothing.
- Planned failover away from a foreign source (Apache Kafka -> dcmirror, offsets
  preserved): Kafka cannot be fenced, so the failover waits until its end offsets stand
  still, drains, checkpoints the groups and promotes the dcmirror copies.
- Planned failover in translation mode (dcmirror -> Kafka) with a group committed in the
  middle of a batch: the report announces the group's re-reads exactly.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests import clients
from tests.interop.conftest import kafka_broker, topic_name  # noqa: F401  (interop fixtures)
from tests.mirror.conftest import link, write_config
from tests.mirror.failover_helpers import cli, cli_json, committed, consume_group, ends, last_contact, records
from tests.processes import MirrorProcess, wait_until

pytestmark = pytest.mark.interop
P = 3


def test_unplanned_failover_to_apache_kafka_bounds_and_reports_duplicates(
        kafka_broker, cluster, topic_name, tmp_path) -> None:
    from confluent_kafka import Producer

    clients.create_topic(cluster.bootstrap, topic_name, P)
    # many small batches per partition: 40 records per flush
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 50, "partitioner": "murmur2_random"})
    recs = records("a", 400)
    for i in range(0, len(recs), 40):
        for k, v, h in recs[i : i + 40]:
            prod.produce(topic_name, key=k, value=v, headers=h)
        prod.flush(10)
    group = f"g-{topic_name}"
    link_name = "east-to-kafka"
    cfg = write_config(tmp_path / "m.yaml", {"east": cluster.bootstrap, "kafka": kafka_broker.bootstrap},
                       [link(link_name, "east", "kafka", [re.escape(topic_name)])])
    mirror = MirrorProcess(cfg).start()
    try:
        seen_east = consume_group(cluster.bootstrap, topic_name, group, limit=130)
        wait_until(lambda: sum(ends(kafka_broker.bootstrap, topic_name, P).values()) == 400, what="mirrored")
        assert mirror.status()["links"][0]["mode"] == "translate"
        on_east = {p: o for p, o in committed(cluster.bootstrap, topic_name, group, P).items() if o >= 0}
        wait_until(lambda: all(committed(kafka_broker.bootstrap, topic_name, group, P)[p] >= 0 for p in on_east),
                   what="checkpoint committed on Kafka")
        translated = cli_json("offsets", "translate", cfg, "--link", link_name, "--group", group)
        assert {r["partition"]: r["source_offset"] for r in translated["rows"]} == on_east
        assert translated["mode"] == "translate" and translated["from"] == "source commits"
        cli("link", "pause", cfg, "--link", link_name)
        wait_until(lambda: mirror.status()["links"][0]["state"] == "paused", what="paused")
        clients.produce_confluent(cluster.bootstrap, topic_name, records("b", 40), "none")
        east_ends = ends(cluster.bootstrap, topic_name, P)
        wait_until(lambda: (c := last_contact(kafka_broker.bootstrap, link_name))
                   and c.source_ends[topic_name] == east_ends, what="last contact")
    finally:
        mirror.stop()
    del prod
    cluster.kill9()

    rep = cli_json("failover", cfg, "--link", link_name, "--force", "--yes")
    assert rep["mode"] == "translate" and rep["total_loss"] == 40
    (g,) = [x for x in rep["groups"] if x["group"] == group]
    reported = g["max_duplicates"]

    seen_kafka = consume_group(kafka_broker.bootstrap, topic_name, group)
    values_east = Counter(v for _, _, v in seen_east)
    values_kafka = Counter(v for _, _, v in seen_kafka)
    twice = sum((values_east & values_kafka).values())
    assert twice == reported  # reported exactly
    assert reported <= 40 * P  # at most one batch per partition
    mirrored = {r[1] for r in records("a", 400)}
    assert mirrored <= set(values_east) | set(values_kafka)  # no gap


def test_planned_failover_from_apache_kafka_waits_for_quiet_and_loses_nothing(
        kafka_broker, cluster, topic_name, tmp_path) -> None:
    clients.create_topic(kafka_broker.bootstrap, topic_name, P)
    clients.produce_confluent(kafka_broker.bootstrap, topic_name, records("k", 120), "zstd")
    group = f"g-{topic_name}"
    seen = consume_group(kafka_broker.bootstrap, topic_name, group, limit=50)
    on_kafka = {p: o for p, o in committed(kafka_broker.bootstrap, topic_name, group, P).items() if o >= 0}
    link_name = "kafka-to-east"
    cfg = write_config(tmp_path / "m.yaml", {"kafka": kafka_broker.bootstrap, "east": cluster.bootstrap},
                       [link(link_name, "kafka", "east", [re.escape(topic_name)])])
    mirror = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: ends(cluster.bootstrap, topic_name, P) == ends(kafka_broker.bootstrap, topic_name, P),
                   what="mirrored from Kafka")
        rep = cli_json("failover", cfg, "--link", link_name, "--yes")
    finally:
        mirror.stop()
    assert rep["kind"] == "planned" and rep["mode"] == "preserve-offsets" and rep["total_loss"] == 0
    assert rep["fenced"] == [] and any("cannot be fenced" in n for n in rep["notes"])
    assert rep["promoted"] == [topic_name]
    assert {p: o for p, o in committed(cluster.bootstrap, topic_name, group, P).items() if o >= 0} == on_kafka
    clients.produce_confluent(cluster.bootstrap, topic_name, records("e", 10), "none")  # promoted: writable
    rest = consume_group(cluster.bootstrap, topic_name, group)
    assert len(seen) + len(rest) == 130 and len({(p, o) for p, o, _ in seen + rest}) == 130


def test_planned_failover_to_apache_kafka_reports_the_rereads_of_a_group_committed_mid_batch(
        kafka_broker, cluster, topic_name, tmp_path) -> None:
    """A group committed in the middle of a batch resumes on Kafka at that batch's start:
    the planned report announces exactly those re-reads (it said 0 before, for any group)."""
    clients.create_topic(cluster.bootstrap, topic_name, 1)
    for i in range(5):  # five batches of ten records: offsets 0-9, 10-19, ...
        clients.produce_confluent(cluster.bootstrap, topic_name, records(f"m{i}", 10), "lz4")
    group = f"g-{topic_name}"
    seen_east = consume_group(cluster.bootstrap, topic_name, group, limit=15)  # commits 15: mid-batch
    assert committed(cluster.bootstrap, topic_name, group, 1) == {0: 15}
    link_name = "east-to-kafka-planned"
    cfg = write_config(tmp_path / "m.yaml", {"east": cluster.bootstrap, "kafka": kafka_broker.bootstrap},
                       [link(link_name, "east", "kafka", [re.escape(topic_name)])])
    mirror = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: ends(kafka_broker.bootstrap, topic_name, 1) == {0: 50}, what="mirrored")
        rep = cli_json("failover", cfg, "--link", link_name, "--yes")
    finally:
        mirror.stop()
    assert rep["kind"] == "planned" and rep["mode"] == "translate" and rep["total_loss"] == 0
    (g,) = [x for x in rep["groups"] if x["group"] == group]
    seen_kafka = consume_group(kafka_broker.bootstrap, topic_name, group)
    twice = sum((Counter(v for *_, v in seen_east) & Counter(v for *_, v in seen_kafka)).values())
    assert twice == g["max_duplicates"] == 5  # offsets 10-14 again: the batch 10-19 started there
    assert len(seen_east) + len(seen_kafka) - twice == 50  # and no gap
