"""`dcmirror check` between two dcmirror clusters that enforce ACLs (a SASL_PLAINTEXT
listener each): the link's principal starts with nothing, gets exactly the `kafka-acls`
lines `check` prints (mirror/preflight/permissions.py), applied through our CreateAcls; then check
passes and a link copies data and checkpoints a group with those ACLs only. Taking one ACL
away (ClusterAction on the target) makes check name exactly it, with the line that grants
it back.

Relies on a super user for the test's own setup: `User:ANONYMOUS` on each cluster's
loopback PLAINTEXT listener (`--super-users User:ANONYMOUS`), as peers/kafka_acl.py does for
Kafka; the link's principal `User:mirror` gets only what check prints.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)

from tests import clients
from tests.interop.test_mirror_acls import check, commit, committed, statuses
from tests.processes import ListenerClusterProcess, MirrorProcess, wait_until

PASSWORD = "M1rror-check-pw-3e"
TOPIC, GROUP, PARTS = "orders.eu", "billing", 2
OPS = {"Read": AclOperation.READ, "Write": AclOperation.WRITE, "Create": AclOperation.CREATE,
       "Delete": AclOperation.DELETE, "Alter": AclOperation.ALTER, "Describe": AclOperation.DESCRIBE,
       "ClusterAction": AclOperation.CLUSTER_ACTION, "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
       "AlterConfigs": AclOperation.ALTER_CONFIGS}


def _cluster(base: Path, name: str) -> ListenerClusterProcess:
    data = base / name
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add", "--data-dir", str(data),
                          "--user", "mirror", "--mechanism", "SCRAM-SHA-512", "--password-env", "PW"],
                         env={**os.environ, "PW": PASSWORD}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return ListenerClusterProcess(name, data, {"PLAIN": "PLAINTEXT", "SASL": "SASL_PLAINTEXT"}, extra_args=[
        "--sasl-mechanisms", "SCRAM-SHA-512", "--super-users", "User:ANONYMOUS"]).start()


@pytest.fixture
def pair(tmp_path: Path):
    east, west = _cluster(tmp_path, "east"), _cluster(tmp_path, "west")
    yield east, west
    east.stop()
    west.stop()
    for c in (east, west):
        assert "Traceback" not in c.log_text() and PASSWORD not in c.log_text()


def _config(path: Path, east: ListenerClusterProcess, west: ListenerClusterProcess) -> Path:
    (path.parent / "mirror.pw").write_text(PASSWORD)
    client = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
              "sasl_username": "mirror", "sasl_password": "${file:mirror.pw}"}
    doc = {"clusters": {"east": {"bootstrap": east.bootstrap("SASL"), "client": client},
                        "west": {"bootstrap": west.bootstrap("SASL"), "client": client}},
           "links": [{"name": "e2w", "source": "east", "target": "west", "topics": ["orders\\.eu"],
                      "groups": [GROUP], "sync_interval_s": 1, "checkpoint_interval_s": 1}]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def bindings(line: str) -> list[AclBinding]:
    """The ACLs one printed `kafka-acls --add` line grants."""
    argv = shlex.split(line)
    assert argv[0] == "kafka-acls" and "--add" in argv, line
    principal = argv[argv.index("--allow-principal") + 1]
    ops = [argv[i + 1] for i, a in enumerate(argv) if a == "--operation"]
    pattern = ResourcePatternType.LITERAL
    if "--resource-pattern-type" in argv:
        assert argv[argv.index("--resource-pattern-type") + 1] == "prefixed", line
        pattern = ResourcePatternType.PREFIXED
    if "--cluster" in argv:
        rtype, name = ResourceType.BROKER, "kafka-cluster"
    elif "--topic" in argv:
        rtype, name = ResourceType.TOPIC, argv[argv.index("--topic") + 1]
    else:
        rtype, name = ResourceType.GROUP, argv[argv.index("--group") + 1]
    return [AclBinding(rtype, name, pattern, principal, "*", OPS[op], AclPermissionType.ALLOW) for op in ops]


def apply(c: ListenerClusterProcess, lines: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap("PLAIN")})  # the super user
    for fut in admin.create_acls([b for line in lines for b in bindings(line)]).values():
        fut.result(30)


def test_check_prints_exactly_what_a_link_needs_on_our_clusters(pair, tmp_path: Path) -> None:
    east, west = pair
    plain_e, plain_w = east.bootstrap("PLAIN"), west.bootstrap("PLAIN")
    clients.create_topic(plain_e, TOPIC, PARTS)
    clients.produce_confluent(plain_e, TOPIC, clients.make_records("acl", 30), "lz4")
    commit(plain_e, GROUP, TOPIC, {0: 5, 1: 7})
    cfg = _config(tmp_path / "m.yaml", east, west)

    code, report = check(cfg)  # nothing granted
    (entry,) = report["links"]
    assert code == 1 and entry["mode"] == "preserve-offsets" and entry["missing"] > 0
    assert entry["grant"]["source"] and entry["grant"]["target"]
    apply(east, entry["grant"]["source"])
    apply(west, entry["grant"]["target"])

    code, report = check(cfg)  # CreateAcls answered: the grants are in force
    got = statuses(report)
    assert code == 0, (report["links"][0]["problems"], {k: v for k, v in got.items() if v != "granted"},
                       report["links"][0]["grant"])
    assert set(got.values()) == {"granted"}, got
    assert got[("target", "Cluster", "kafka-cluster", "ClusterAction")] == "granted"

    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: clients.end_offsets(plain_w, TOPIC, PARTS) == clients.end_offsets(plain_e, TOPIC, PARTS)
                   and sum(clients.end_offsets(plain_e, TOPIC, PARTS).values()) == 30, what="data copied")
        wait_until(lambda: committed(plain_w, GROUP, TOPIC) == {0: 5, 1: 7}, what="group checkpointed")
    finally:
        m.stop()
    assert "AUTHORIZATION_FAILED" not in m.log_text(), m.log_text()[-3000:]

    admin = AdminClient({"bootstrap.servers": plain_w})
    gone = AclBindingFilter(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:mirror", "*",
                            AclOperation.CLUSTER_ACTION, AclPermissionType.ALLOW)
    assert [b for fut in admin.delete_acls([gone]).values() for b in fut.result(30)]
    code, report = check(cfg)
    assert code == 1
    assert {k for k, s in statuses(report).items() if s == "missing"} == {
        ("target", "Cluster", "kafka-cluster", "ClusterAction")}
    assert report["links"][0]["grant"]["target"] == [
        f"kafka-acls --bootstrap-server {west.bootstrap('SASL')} --add --allow-principal User:mirror "
        f"--operation ClusterAction --cluster"]
