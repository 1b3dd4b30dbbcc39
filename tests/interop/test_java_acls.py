"""Kafka's own tools (4.3.1) against a dcmirror cluster with a SASL_SSL listener and ACLs:
`kafka-acls --add/--list/--remove` run by a super user (the README's "ACLs" example block,
run as written), and the Java console producer and consumer of an ordinary user, each
with a client.properties: refused with TOPIC_AUTHORIZATION_FAILED before the grant,
working after it, refused again once `--remove` takes Write away (then, as by Kafka, the
idempotent producer's InitProducerId: CLUSTER_AUTHORIZATION_FAILED).

Relies on a super user (`--super-users User:admin`) for the administrator, and on the
ACLs the test grants for alice.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from peers.certs import make_pki
from peers.kafka_acl import ACL_COMMAND
from peers.kafka_broker import CONSOLE_CONSUMER, CONSOLE_PRODUCER, TOPICS, kafka_tool
from tests.interop.conftest import require_kafka
from tests.processes import ListenerClusterProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(900)]

README = Path(__file__).resolve().parents[2] / "README.md"
ADMIN_PW = "Adm1n-acl-pw-5d1e"
ALICE_PW = "Al1ce-acl-pw-77c2"


def add_user(data: Path, user: str, password: str) -> None:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add", "--data-dir", str(data),
                          "--user", user, "--mechanism", "SCRAM-SHA-512", "--password-env", "PW"],
                         env={**os.environ, "PW": password}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def client_properties(path: Path, user: str, password: str, cafile: Path) -> Path:
    path.write_text("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{user}" password="{password}";\n'
                    f"ssl.truststore.type=PEM\nssl.truststore.location={cafile}\n")
    return path


def readme_block(name: str, **values: str) -> list[list[str]]:
    """The `kafka-acls` lines of the README block marked ``<!-- acls:NAME -->`` as argv lists
    (without the leading `kafka-acls`), with ``$KEY`` replaced by `values` and the
    administrator's `admin.properties` by the test's file (`values["admin"]`)."""
    body = README.read_text().split(f"<!-- acls:{name} -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    out = []
    for line in body.replace("\\\n", " ").splitlines():
        if line.startswith("kafka-acls"):
            line = line.replace("admin.properties", values["admin"])
            for k, v in values.items():
                line = line.replace(f"${k}", v)
            out.append(shlex.split(line)[1:])
    assert out, f"no kafka-acls line in README block {name}"
    return out


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory):
    require_kafka()
    base = tmp_path_factory.mktemp("acls")
    pki = make_pki(base / "pki")
    data = base / "d"
    add_user(data, "admin", ADMIN_PW)
    add_user(data, "alice", ALICE_PW)
    c = ListenerClusterProcess("acls", data, {"SECURE": "SASL_SSL"}, extra_args=[
        "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
        "--sasl-mechanisms", "SCRAM-SHA-512", "--super-users", "User:admin"]).start()
    c.admin = client_properties(base / "admin.properties", "admin", ADMIN_PW, pki.ca)  # type: ignore[attr-defined]
    c.alice = client_properties(base / "alice.properties", "alice", ALICE_PW, pki.ca)  # type: ignore[attr-defined]
    yield c
    c.stop()
    text = c.log_text()
    assert "Traceback" not in text and ADMIN_PW not in text and ALICE_PW not in text


def produce(c, props: Path, topic: str, values: list[str]) -> subprocess.CompletedProcess[str]:
    """kafka-console-producer with its default settings (idempotence on, acks=all)."""
    return kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", c.bootstrap("SECURE"), "--topic", topic,
                      "--command-config", str(props), input="".join(v + "\n" for v in values))


def consume(c, props: Path, topic: str, group: str, n: int, timeout_ms: int = 60000) -> subprocess.CompletedProcess[str]:
    return kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", c.bootstrap("SECURE"), "--topic", topic,
                      "--group", group, "--from-beginning", "--max-messages", str(n),
                      "--timeout-ms", str(timeout_ms), "--command-config", str(props))


def test_kafka_acls_and_console_clients(secure_cluster) -> None:
    c = secure_cluster
    boot = c.bootstrap("SECURE")
    made = kafka_tool(TOPICS, "--bootstrap-server", boot, "--command-config", str(c.admin), "--create",
                      "--topic", "orders", "--partitions", "1")
    assert made.returncode == 0, made.stderr[-3000:]

    denied = produce(c, c.alice, "orders", ["early"])
    assert "{orders=TOPIC_AUTHORIZATION_FAILED}" in denied.stderr, denied.stderr[-3000:]
    assert "TopicAuthorizationException: Not authorized to access topics: [orders]" in denied.stderr
    refused = consume(c, c.alice, "orders", "billing", 1, timeout_ms=15000)
    assert refused.returncode != 0 or "Processed a total of 0 messages" in refused.stderr
    assert "AuthorizationException" in refused.stderr, refused.stderr[-3000:]

    add_topic, add_group, listing, remove = readme_block("dcmirror", B=boot, admin=str(c.admin))
    for argv in (add_topic, add_group):
        res = kafka_tool(ACL_COMMAND, *argv)
        assert res.returncode == 0, res.stderr[-3000:]
    listed = kafka_tool(ACL_COMMAND, *listing)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "name=orders, patternType=LITERAL" in listed.stdout, listed.stdout
    for op in ("WRITE", "READ"):
        assert f"principal=User:alice, host=*, operation={op}, permissionType=ALLOW" in listed.stdout, listed.stdout

    values = [f"order-{i}" for i in range(5)]
    ok = produce(c, c.alice, "orders", values)
    assert ok.returncode == 0 and "ERROR" not in ok.stderr, ok.stderr[-3000:]
    got = consume(c, c.alice, "orders", "billing", len(values))
    assert got.returncode == 0, got.stderr[-3000:]
    assert got.stdout.split() == values

    res = kafka_tool(ACL_COMMAND, *remove)
    assert res.returncode == 0, res.stderr[-3000:]
    listed = kafka_tool(ACL_COMMAND, *listing)
    assert "operation=WRITE" not in listed.stdout and "operation=READ" in listed.stdout, listed.stdout
    # without Write on any topic the idempotent producer's InitProducerId is refused, as by
    # Kafka (IdempotentWrite on the cluster, or Write on some topic, KIP-679)
    again = produce(c, c.alice, "orders", ["late"])
    assert "ClusterAuthorizationException: Cluster authorization failed." in again.stderr, again.stderr[-3000:]
