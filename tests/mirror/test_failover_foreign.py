"""Planned failover away from a foreign source (Apache Kafka -> dcmirror, offsets preserved):
Kafka cannot be fenced, so the failover waits until its end offsets stand still, drains,
checkpoints the groups and promotes the dcmirror copies."""

from __future__ import annotations

import re

import pytest

from tests import clients
from tests.interop.conftest import kafka_broker, topic_name  # noqa: F401  (interop fixtures)
from tests.mirror.conftest import link, write_config
from tests.mirror.failover_helpers import cli_json, committed, consume_group, ends, records
from tests.processes import MirrorProcess, wait_until

pytestmark = pytest.mark.interop
P = 2


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
