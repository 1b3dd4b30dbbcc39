"""Least privilege against Apache Kafka 4.3.1 with the StandardAuthorizer: a link whose
principal holds exactly the README's ACLs (the `kafka-acls` blocks, run verbatim) mirrors
data, offset syncs and checkpoints; `dcmirror check` finds everything granted; taking one
ACL away makes `check` name it (exit 1, with the line that grants it back), makes
`mirror --check` refuse to start, and makes the running link fail with the authorization
error."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from peers.kafka_acl import ACL_COMMAND, MIRROR_PASSWORD, MIRROR_USER, AclKafka
from peers.kafka_broker import kafka_tool
from tests import clients
from tests.interop.conftest import require_kafka
from tests.interop.test_mirror_foreign import ends
from tests.mirror.failover_helpers import cli
from tests.processes import MirrorProcess, wait_until

pytestmark = pytest.mark.interop
PARTS = 2
README = Path(__file__).resolve().parents[2] / "README.md"
PRINCIPAL = f"User:{MIRROR_USER}"


@pytest.fixture(scope="module")
def acl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclKafka]:
    require_kafka()
    with AclKafka(tmp_path_factory.mktemp("pki")) as broker:
        yield broker


def readme_acls(block: str, **values: str) -> list[list[str]]:
    """The `kafka-acls` lines of the README block marked ``<!-- acls:BLOCK -->``, with
    ``$NAME`` replaced, as argv lists (an administrator's --command-config dropped: the
    test runs them over the super user's PLAINTEXT listener)."""
    text = README.read_text()
    body = text.split(f"<!-- acls:{block} -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    out = []
    for line in body.replace("\\\n", " ").splitlines():
        if not line.startswith("kafka-acls"):
            continue
        for k, v in values.items():
            line = line.replace(f"${k}", v)
        argv = shlex.split(line)[1:]
        i = argv.index("--command-config")
        del argv[i:i + 2]
        out.append(argv)
    assert out, f"no kafka-acls line in README block {block}"
    return out


def grant_readme(kafka: AclKafka, block: str, **values: str) -> None:
    for argv in readme_acls(block, B=kafka.bootstrap, P=PRINCIPAL, **values):
        res = kafka_tool(ACL_COMMAND, *argv)
        assert res.returncode == 0, res.stderr


def revoke(kafka: AclKafka, resource: str, name: str, operation: str, pattern: str = "literal") -> None:
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)

    f = AclBindingFilter({"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}[resource], name,
                         ResourcePatternType.PREFIXED if pattern == "prefixed" else ResourcePatternType.LITERAL,
                         PRINCIPAL, "*", getattr(AclOperation, operation.upper()), AclPermissionType.ALLOW)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    deleted = [b for fut in admin.delete_acls([f]).values() for b in fut.result()]
    assert deleted, f"no ACL {operation} on {resource} {name} to revoke"


def config(path: Path, kafka: AclKafka, other: str, link_name: str, topics: str, groups: str,
           password: str = MIRROR_PASSWORD, kafka_is_target: bool = False) -> Path:
    (path.parent / f"{link_name}.pw").write_text(password)
    ends_ = ("east", "kafka") if kafka_is_target else ("kafka", "east")
    doc = {
        "clusters": {
            "kafka": {"bootstrap": kafka.address("SASL_SSL"), "client": {
                "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": MIRROR_USER, "sasl_password": f"${{file:{link_name}.pw}}",
                "ssl_cafile": str(kafka.pki.ca)}},
            "east": {"bootstrap": other},
        },
        "links": [{"name": link_name, "source": ends_[0], "target": ends_[1], "topics": [re.escape(topics) + ".*"],
                   "groups": [re.escape(groups) + ".*"], "sync_interval_s": 1, "checkpoint_interval_s": 1}],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def check(cfg: Path) -> tuple[int, dict]:
    res = cli("check", cfg, "--json", check=False)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def statuses(report: dict) -> dict[tuple[str, str, str, str], str]:
    return {(c["end"], c["resource_type"], c["name"], c["operation"]): c["status"]
            for link in report["links"] for c in link["checks"]}


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(PARTS)],
                                                              timeout=10)}
    finally:
        c.close()


def names() -> tuple[str, str, str]:
    u = uuid.uuid4().hex[:8]
    return f"acl{u}.", f"grp{u}.", f"l{u}"


def test_kafka_source_with_exactly_the_readme_acls(acl_kafka, cluster, tmp_path: Path) -> None:
    prefix, gprefix, link_name = names()
    topic, group = prefix + "orders", gprefix + "billing"
    plain = acl_kafka.bootstrap
    clients.create_topic(plain, topic, PARTS)
    clients.produce_confluent(plain, topic, clients.make_records("acl", 30), "lz4")
    commit(plain, group, topic, {0: 5, 1: 7})
    cfg = config(tmp_path / "m.yaml", acl_kafka, cluster.bootstrap, link_name, prefix, gprefix)

    code, report = check(cfg)  # nothing granted: the source shows the link nothing
    assert code == 1 and "may not Describe them" in report["links"][0]["problems"][0]

    grant_readme(acl_kafka, "source", T=prefix, G=gprefix)
    code, report = wait_until(lambda: (r := check(cfg))[0] == 0 and r, what="check passes")
    src = {k: v for k, v in statuses(report).items() if k[0] == "source"}
    assert src == {("source", "Topic", topic, op): "granted" for op in ("Describe", "Read", "DescribeConfigs")} | {
        ("source", "Group", group, "Describe"): "granted"}
    assert all(c["how"] == "KIP-430" for c in report["links"][0]["checks"] if c["end"] == "source")

    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: ends(cluster.bootstrap, topic, PARTS) == ends(plain, topic, PARTS)
                   and sum(ends(plain, topic, PARTS).values()) == 30, what="data copied")
        # offset-preserving mode: the checkpoint is the same offset
        wait_until(lambda: committed(cluster.bootstrap, group, topic) == {0: 5, 1: 7}, what="group checkpointed")

        revoke(acl_kafka, "topic", prefix, "Read", "prefixed")
        code, report = wait_until(lambda: (r := check(cfg))[0] == 1 and r, what="check notices")
        assert statuses(report)[("source", "Topic", topic, "Read")] == "missing"
        assert {k for k, s in statuses(report).items() if s == "missing"} == {("source", "Topic", topic, "Read")}
        line = (f"kafka-acls --bootstrap-server {acl_kafka.address('SASL_SSL')} --add --allow-principal "
                f"{PRINCIPAL} --operation Read --topic {topic}")
        assert report["links"][0]["grant"]["source"] == [line]
        table = cli("check", cfg, check=False)
        assert table.returncode == 1 and f"  grant: {line}\n" in table.stdout  # unwrapped, to paste

        clients.produce_confluent(plain, topic, clients.make_records("more", 10), "lz4")
        wait_until(lambda: re.search(rf"fetch {re.escape(topic)}-\d: TOPIC_AUTHORIZATION_FAILED \(29\)", m.log_text()),
                   what="the link fails on Fetch")
    finally:
        m.stop()
    refused = cli("mirror", cfg, "--check", check=False, timeout=60)
    assert refused.returncode == 1 and "not starting" in refused.stderr and topic in refused.stderr


def test_kafka_target_with_exactly_the_readme_acls(acl_kafka, cluster, tmp_path: Path) -> None:
    prefix, gprefix, link_name = names()
    topic, group = prefix + "payments", gprefix + "ledger"
    plain = acl_kafka.bootstrap
    clients.create_topic(cluster.bootstrap, topic, PARTS)
    clients.produce_confluent(cluster.bootstrap, topic, clients.make_records("out", 40), "zstd")
    commit(cluster.bootstrap, group, topic, {0: 20, 1: 20})
    cfg = config(tmp_path / "m.yaml", acl_kafka, cluster.bootstrap, link_name, prefix, gprefix, kafka_is_target=True)

    code, report = check(cfg)
    assert code == 1
    st = statuses(report)
    assert st[("target", "Topic", topic, "Write")] == "missing" and st[("target", "Topic", topic, "Create")] == "missing"
    assert st[("target", "Group", f"dcmirror.{link_name}", "Read")] == "missing"

    grant_readme(acl_kafka, "target", T=prefix, G=gprefix, L=link_name)
    code, report = wait_until(lambda: (r := check(cfg))[0] == 0 and r, what="check passes")
    assert report["links"][0]["mode"] == "translate"
    assert {s for k, s in statuses(report).items() if k[0] == "target"} == {"granted"}

    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: sum(ends(plain, topic, PARTS).values()) == 40, what="data copied to Kafka")
        # a checkpoint was committed on Kafka (translated at a batch boundary: <= 20)
        wait_until(lambda: all(0 <= o <= 20 for o in committed(plain, group, topic).values()),
                   what="group checkpointed on Kafka")
        code, report = check(cfg)  # the topics exist now: KIP-430 answers for them
        assert code == 0
        assert {c["how"] for c in report["links"][0]["checks"]
                if c["name"] == topic and c["end"] == "target"} == {"KIP-430"}

        revoke(acl_kafka, "topic", prefix, "Write", "prefixed")
        code, report = wait_until(lambda: (r := check(cfg))[0] == 1 and r, what="check notices")
        missing = {k for k, s in statuses(report).items() if s == "missing"}
        assert missing == {("target", "Topic", topic, "Write")}
        clients.produce_confluent(cluster.bootstrap, topic, clients.make_records("more", 10), "zstd")
        wait_until(lambda: re.search(rf"produce to {re.escape(topic)}-\d: TOPIC_AUTHORIZATION_FAILED", m.log_text()),
                   what="the link fails on Produce")

        revoke(acl_kafka, "group", f"dcmirror.{link_name}", "Read")
        code, report = wait_until(lambda: (r := check(cfg))[0] == 1 and len(r[1]["links"][0]["grant"]["target"]) == 2
                                  and r, what="check notices the group")
        assert statuses(report)[("target", "Group", f"dcmirror.{link_name}", "Read")] == "missing"
    finally:
        m.stop()


def test_wrong_password_is_one_sentence(acl_kafka, cluster, tmp_path: Path) -> None:
    prefix, gprefix, link_name = names()
    cfg = config(tmp_path / "m.yaml", acl_kafka, cluster.bootstrap, link_name, prefix, gprefix,
                 password="Wr0ng-Pass-55")
    code, report = check(cfg)
    assert code == 1
    (problem,) = report["links"][0]["problems"]
    assert problem.startswith("cannot connect to kafka") and "SASL_AUTHENTICATION_FAILED, 58" in problem
    assert "Wr0ng-Pass-55" not in json.dumps(report)
