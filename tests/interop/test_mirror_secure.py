"""A link from Apache Kafka behind SASL_SSL + SCRAM to a dcmirror cluster, configured
only through the YAML ``client:`` block, with the password in a ``${file:...}`` secret
that must not appear anywhere the scenario writes (logs, /status, status --json, the
target's data files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from peers.kafka_secure import PASSWORD, USER
from tests import clients
from tests.interop.test_mirror_foreign import ends
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli
from tests.processes import MirrorProcess, wait_until

pytestmark = pytest.mark.interop
PARTS = 2


def secured_config(path: Path, kafka, target: str, topic: str, password_file: Path,
                   kafka_is_target: bool = False) -> Path:
    the_link = (link("east-to-kafka", "east", "kafka", [re.escape(topic)]) if kafka_is_target
                else link("kafka-to-east", "kafka", "east", [re.escape(topic)]))
    doc = {
        "clusters": {
            "kafka": {
                "bootstrap": kafka.address("SASL_SSL"),
                "client": {
                    "client_id": "dr-link",
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": USER,
                    "sasl_password": f"${{file:{password_file.name}}}",
                    "ssl_cafile": str(kafka.pki.ca),
                },
            },
            "east": {"bootstrap": target},
        },
        "links": [the_link],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_sasl_ssl_source_mirrors_and_no_output_holds_the_password(secure_kafka, cluster, topic_name,
                                                                    tmp_path: Path) -> None:
    plain = secure_kafka.address("PLAINTEXT")  # the test's own producer and probes
    clients.create_topic(plain, topic_name, PARTS)
    clients.produce_confluent(plain, topic_name, clients.make_records("sec", 50), "lz4")
    (tmp_path / "kafka.pw").write_text(PASSWORD + "\n")
    cfg = secured_config(tmp_path / "m.yaml", secure_kafka, cluster.bootstrap, topic_name, tmp_path / "kafka.pw")
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: ends(plain, topic_name, PARTS) == ends(cluster.bootstrap, topic_name, PARTS)
                   and sum(ends(cluster.bootstrap, topic_name, PARTS).values()) == 50,
                   what="copied from the SASL_SSL source")
        status = m.status()
        assert status["links"][0]["mode"] == "preserve-offsets"
        end = clients.end_offsets(plain, topic_name, PARTS)
        assert clients.consume_confluent(cluster.bootstrap, topic_name, PARTS, end) == \
            clients.consume_confluent(plain, topic_name, PARTS, end)
        outputs = [str(status), m.metrics(), cli("status", cfg, "--json").stdout, cli("status", cfg).stdout]
    finally:
        m.stop()
    outputs.append(m.log_text())
    for out in outputs:
        assert PASSWORD not in out
    for f in Path(cluster.data_dir).rglob("*"):  # link state and checkpoints live on the target
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f


def test_wrong_password_is_one_sentence_in_the_log(secure_kafka, cluster, topic_name, tmp_path: Path) -> None:
    (tmp_path / "kafka.pw").write_text("Wr0ng-Pass-777\n")
    cfg = secured_config(tmp_path / "m.yaml", secure_kafka, cluster.bootstrap, topic_name, tmp_path / "kafka.pw")
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: "SASL_AUTHENTICATION_FAILED, 58" in m.log_text(), what="the authentication error")
    finally:
        m.stop()
    text = m.log_text()
    assert "Wr0ng-Pass-777" not in text and PASSWORD not in text
    assert "refused authentication as 'alice' with SCRAM-SHA-512" in text


def test_sasl_ssl_kafka_as_a_foreign_target(secure_kafka, cluster, topic_name, tmp_path: Path) -> None:
    """Translation mode into Kafka behind SASL_SSL: data and the offset syncs are written
    with the link's credentials."""
    plain = secure_kafka.address("PLAINTEXT")
    clients.create_topic(cluster.bootstrap, topic_name, PARTS)
    clients.produce_confluent(cluster.bootstrap, topic_name, clients.make_records("out", 40), "zstd")
    (tmp_path / "kafka.pw").write_text(PASSWORD)
    cfg = secured_config(tmp_path / "m.yaml", secure_kafka, cluster.bootstrap, topic_name, tmp_path / "kafka.pw",
                         kafka_is_target=True)
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: sum(ends(plain, topic_name, PARTS).values()) == 40, what="copied to the SASL_SSL target")
        assert m.status()["links"][0]["mode"] == "translate"
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": plain}).list_topics(timeout=5).topics
        assert "__dcmirror.offset-syncs.east-to-kafka" in topics
    finally:
        m.stop()
    assert PASSWORD not in m.log_text()
