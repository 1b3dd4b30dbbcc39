"""A link between Apache Kafka behind SASL_SSL + SCRAM-SHA-512 and a dcmirror cluster whose
only listener is SASL_SSL, both ends configured through the YAML `client:` blocks, in both
directions: data, offsets and a consumer group's checkpoints flow, then `dcmirror failover`
(the CLI, the same YAML and credentials) promotes the target and the group resumes there
from its checkpoint. Every client of the scenario authenticates; the dcmirror end's link
principal holds exactly the ACLs `dcmirror check` said it lacked (plus, where the dcmirror
cluster is the source, what fencing needs). No password appears in anything the scenario
writes or prints.

- Kafka -> dcmirror (offsets preserved): Kafka cannot be fenced, so the planned failover
  waits for quiet, drains and promotes; the group resumes with no duplicate and no gap.
- dcmirror -> Kafka (translation mode): the planned failover fences the dcmirror topics
  (AlterConfigs on them and ClusterAction, granted to the link's principal for that),
  drains and commits the group's last checkpoint on Kafka; the group re-reads exactly the
  records the report announced (at most one batch per partition) and misses none.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from peers.kafka_secure import PASSWORD as KAFKA_PASSWORD
from tests.secure_link import (ADMIN_PASSWORD, LINK_PASSWORD, LINK_PASSWORD_ENV, LINK_USER,
                                         SecureDcmirror, check_report, committed, consume_group, create_topic,
                                         ends, grant, grant_what_check_misses, kafka_client_block, kafka_conf,
                                         mirror_config, produce, secrets_in)
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli
from tests.processes import MirrorProcess, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]
P = 3
PRINCIPAL = f"User:{LINK_USER}"
SECRETS = (KAFKA_PASSWORD, LINK_PASSWORD, ADMIN_PASSWORD)


@pytest.fixture
def dc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(LINK_PASSWORD_ENV, LINK_PASSWORD)  # the YAML says ${env:...}; children inherit it
    d = SecureDcmirror(tmp_path).start()
    yield d
    d.stop()


def run(outputs: dict[str, str], name: str, *args: object, check: bool = True):
    """A `dcmirror` command whose stdout and stderr join the scenario's outputs."""
    res = cli(*args, check=check)
    outputs[f"{name} stdout"], outputs[f"{name} stderr"] = res.stdout, res.stderr
    return res


def values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


def test_kafka_sasl_ssl_source_to_dcmirror_sasl_ssl_target_then_failover(
        secure_kafka, dc: SecureDcmirror, topic_name: str, tmp_path: Path) -> None:
    kafka, east = kafka_conf(secure_kafka), dc.admin()
    create_topic(kafka, topic_name, P)
    produce(kafka, topic_name, values("a", 150), "zstd")
    group = f"g-{topic_name}"
    seen = consume_group(kafka, topic_name, group, limit=60)  # the application, over SASL_SSL
    on_kafka = committed(kafka, topic_name, group, P)
    assert sum(on_kafka.values()) == 60
    (tmp_path / "kafka.pw").write_text(KAFKA_PASSWORD + "\n")
    name = "kafka-to-east"
    cfg = mirror_config(tmp_path / "m.yaml", {
        "kafka": (secure_kafka.address("SASL_SSL"), kafka_client_block(secure_kafka, tmp_path / "kafka.pw")),
        "east": (dc.bootstrap, dc.client_block())},
        [link(name, "kafka", "east", [re.escape(topic_name)], groups=[re.escape(group)])])
    granted = grant_what_check_misses(cfg, name, east, PRINCIPAL)
    assert ("Cluster", "kafka-cluster", "ClusterAction") in granted  # least privilege: nothing before
    outputs: dict[str, str] = {"check": json.dumps(check_report(cfg, name)[1])}
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: ends(east, topic_name, P) == ends(kafka, topic_name, P), what="copied over SASL_SSL")
        status = m.status()
        assert status["links"][0]["mode"] == "preserve-offsets"
        wait_until(lambda: committed(east, topic_name, group, P) == on_kafka, what="group checkpoint on east")
        tr = json.loads(run(outputs, "translate", "offsets", "translate", cfg, "--link", name, "--group", group,
                            "--json").stdout)
        assert {r["partition"]: r["target_offset"] for r in tr["rows"]} == on_kafka  # offsets preserved
        outputs.update({"/status": json.dumps(status), "/metrics": m.metrics()})
        run(outputs, "status --json", "status", cfg, "--json")
        run(outputs, "status", "status", cfg)
        rep = json.loads(run(outputs, "failover", "failover", cfg, "--link", name, "--yes", "--json").stdout)
    finally:
        m.stop()
    outputs["mirror log"] = m.log_text()
    assert rep["kind"] == "planned" and rep["mode"] == "preserve-offsets" and rep["total_loss"] == 0
    assert rep["promoted"] == [topic_name] and any("cannot be fenced" in n for n in rep["notes"])
    assert committed(east, topic_name, group, P) == on_kafka
    produce(east, topic_name, values("e", 12), "none")  # promoted: ordinary producers write again
    rest = consume_group(east, topic_name, group)  # the application moves over, over SASL_SSL
    assert len(seen) + len(rest) == 162
    assert len({(p, o) for p, o, _ in seen + rest}) == 162  # no duplicate, no gap
    assert {v for *_, v in seen + rest} == set(values("a", 150) + values("e", 12))
    outputs["east log"] = dc.log_text()
    assert secrets_in(outputs, tmp_path, SECRETS, skip=[tmp_path / "kafka.pw"]) == []


def test_dcmirror_sasl_ssl_source_to_kafka_sasl_ssl_target_then_failover(
        secure_kafka, dc: SecureDcmirror, topic_name: str, tmp_path: Path) -> None:
    kafka, east = kafka_conf(secure_kafka), dc.admin()
    create_topic(east, topic_name, P)
    for i in range(10):  # ten flushes: several batches per partition
        produce(east, topic_name, values(f"b{i}", 40), "lz4")
    group = f"g-{topic_name}"
    seen_east = consume_group(east, topic_name, group, limit=130)
    on_east = committed(east, topic_name, group, P)
    (tmp_path / "kafka.pw").write_text(KAFKA_PASSWORD)
    name = f"east-to-kafka-{topic_name[-8:]}"  # link state lives on the shared Kafka: unique per test
    cfg = mirror_config(tmp_path / "m.yaml", {
        "east": (dc.bootstrap, dc.client_block()),
        "kafka": (secure_kafka.address("SASL_SSL"), kafka_client_block(secure_kafka, tmp_path / "kafka.pw"))},
        [link(name, "east", "kafka", [re.escape(topic_name)], groups=[re.escape(group)])])
    granted = grant_what_check_misses(cfg, name, east, PRINCIPAL)
    assert ("Topic", topic_name, "Read") in granted and ("Group", group, "Describe") in granted
    outputs: dict[str, str] = {}
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: sum(ends(kafka, topic_name, P).values()) == 400, what="copied to Kafka over SASL_SSL")
        status = m.status()
        assert status["links"][0]["mode"] == "translate"
        wait_until(lambda: committed(kafka, topic_name, group, P).keys() == on_east.keys(),
                   what="group checkpoint committed on Kafka")
        tr = json.loads(run(outputs, "translate", "offsets", "translate", cfg, "--link", name, "--group", group,
                            "--json").stdout)
        assert {r["partition"]: r["source_offset"] for r in tr["rows"]} == on_east
        outputs.update({"/status": json.dumps(status), "/metrics": m.metrics()})
        run(outputs, "status --json", "status", cfg, "--json")
        produce(east, topic_name, values("late", 30), "none")  # the failover drains these
        # failover is an operator command: fencing the source topics takes AlterConfigs on
        # them and ClusterAction (dcmirror.fenced) on top of what the link needs (README)
        refused = run(outputs, "refused failover", "failover", cfg, "--link", name, "--yes", "--json", check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "TOPIC_AUTHORIZATION_FAILED (29)" in refused.stderr and "run the same command again" in refused.stderr
        grant(east, PRINCIPAL, [("Topic", topic_name, "AlterConfigs"), ("Cluster", "kafka-cluster", "ClusterAction")])
        rep = json.loads(run(outputs, "failover", "failover", cfg, "--link", name, "--yes", "--json").stdout)
    finally:
        m.stop()
    outputs["mirror log"] = m.log_text()
    assert rep["kind"] == "planned" and rep["mode"] == "translate" and rep["total_loss"] == 0
    assert rep["fenced"] == [topic_name]
    assert sum(ends(kafka, topic_name, P).values()) == 430  # drained before promoting
    with pytest.raises(AssertionError, match="INVALID_REQUEST"):  # east is fenced
        produce(east, topic_name, values("after", 1), "none")
    (g,) = [x for x in rep["groups"] if x["group"] == group]
    seen_kafka = consume_group(kafka, topic_name, group)  # the application moves to Kafka
    twice = sum((Counter(v for *_, v in seen_east) & Counter(v for *_, v in seen_kafka)).values())
    assert twice == g["max_duplicates"] <= 40 * P  # announced exactly, at most a batch per partition
    everything = {v for i in range(10) for v in values(f"b{i}", 40)} | set(values("late", 30))
    assert {v for *_, v in seen_east + seen_kafka} == everything  # no gap
    outputs["east log"] = dc.log_text()
    assert secrets_in(outputs, tmp_path, SECRETS, skip=[tmp_path / "kafka.pw"]) == []
