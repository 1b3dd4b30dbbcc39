"""Both ends of a secured link for the SASL_SSL mirror scenarios: a dcmirror cluster whose
only listener is SASL_SSL (SCRAM-SHA-512 users made with `dcmirror cluster users add`, TLS
material made at test time), Apache Kafka's SASL_SSL listener, real confluent-kafka
clients that reach either end only with credentials, and the mirror YAML whose `client:`
blocks carry the link's credentials for both ends.

The dcmirror cluster has two users: `admin`, a super user that the test's own clients use
(setup, probes, the application's consumer group), and `mirror`, the link's principal,
granted exactly what `dcmirror check` reports missing (so the link runs with least
privilege, as README "What a link needs" says), plus whatever a scenario grants on top.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from peers.certs import Pki, make_pki
from tests.processes import ListenerClusterProcess

REPO = Path(__file__).resolve().parents[1]
ADMIN, ADMIN_PASSWORD = "admin", "Adm1n-dc-5e7a0c"
LINK_USER, LINK_PASSWORD = "mirror", "M1rror-dc-71b2ee"
MECHANISM = "SCRAM-SHA-512"
#: where the link's dcmirror password comes from (`${env:...}` in the YAML)
LINK_PASSWORD_ENV = "DCMIRROR_TEST_LINK_PASSWORD"

Conf = Mapping[str, str]


def sasl_ssl(bootstrap: str, user: str, password: str, ca: Path) -> dict[str, str]:
    """confluent-kafka settings reaching a SASL_SSL listener as ``user``."""
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL", "sasl.mechanism": MECHANISM,
            "sasl.username": user, "sasl.password": password, "ssl.ca.location": str(ca)}


@dataclass
class SecureDcmirror:
    """`dcmirror cluster start --listener SECURE=SASL_SSL://127.0.0.1:PORT` with its users."""

    tmp: Path
    name: str = "east"
    pki: Pki = field(init=False)
    proc: ListenerClusterProcess = field(init=False)

    def start(self) -> "SecureDcmirror":
        self.pki = make_pki(self.tmp / f"{self.name}-pki")
        data = self.tmp / self.name
        for user, password in ((ADMIN, ADMIN_PASSWORD), (LINK_USER, LINK_PASSWORD)):
            res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add",
                                  "--data-dir", str(data), "--user", user, "--mechanism", MECHANISM,
                                  "--password-env", "DCMIRROR_NEW_USER_PW"],
                                 env={**os.environ, "DCMIRROR_NEW_USER_PW": password}, cwd=REPO,
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stdout + res.stderr
        self.proc = ListenerClusterProcess(self.name, data, {"SECURE": "SASL_SSL"}, extra_args=[
            "--ssl-certfile", str(self.pki.server_cert), "--ssl-keyfile", str(self.pki.server_key),
            "--sasl-mechanisms", MECHANISM, "--super-users", f"User:{ADMIN}"]).start()
        return self

    @property
    def bootstrap(self) -> str:
        return self.proc.bootstrap("SECURE")

    def admin(self) -> dict[str, str]:
        return sasl_ssl(self.bootstrap, ADMIN, ADMIN_PASSWORD, self.pki.ca)

    def client_block(self) -> dict[str, Any]:
        """The YAML `client:` block of the link's principal."""
        return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM, "sasl_username": LINK_USER,
                "sasl_password": f"${{env:{LINK_PASSWORD_ENV}}}", "ssl_cafile": str(self.pki.ca)}

    def stop(self) -> None:
        self.proc.stop()

    def log_text(self) -> str:
        return self.proc.log_text()


def kafka_client_block(kafka, password_file: Path) -> dict[str, Any]:
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM, "sasl_username": kafka_user(),
            "sasl_password": f"${{file:{password_file.name}}}", "ssl_cafile": str(kafka.pki.ca)}


def kafka_user() -> str:
    from peers.kafka_secure import USER

    return USER


def kafka_conf(kafka) -> dict[str, str]:
    from peers.kafka_secure import PASSWORD, USER

    return sasl_ssl(kafka.address("SASL_SSL"), USER, PASSWORD, kafka.pki.ca)


def mirror_config(path: Path, clusters: dict[str, tuple[str, dict[str, Any]]], links: list[dict]) -> Path:
    """``clusters``: alias -> (bootstrap, client block)."""
    doc = {"clusters": {a: {"bootstrap": b, "client": c} for a, (b, c) in clusters.items()}, "links": links}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# -- real clients with credentials ---------------------------------------------------------


def create_topic(conf: Conf, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(dict(conf))  # kept alive until the answer: a destroyed handle fails the future
    admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=30)[topic].result(30)


def produce(conf: Conf, topic: str, values: Iterable[bytes], codec: str = "lz4") -> None:
    from confluent_kafka import Producer

    p = Producer({**conf, "compression.type": codec, "linger.ms": 5, "acks": "all",
                  "partitioner": "murmur2_random", "enable.idempotence": False})
    errors: list = []
    for i, v in enumerate(values):
        p.produce(topic, key=f"k{i % 13}".encode(), value=v, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors


def ends(conf: Conf, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**conf, "group.id": "probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def committed(conf: Conf, topic: str, group: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets, only partitions that have one."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**conf, "group.id": group})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in res if tp.offset >= 0}
    finally:
        c.close()


def consume_group(conf: Conf, topic: str, group: str, *, limit: int | None = None,
                  idle_s: float = 4.0) -> list[tuple[int, int, bytes]]:
    """failover_helpers.consume_group with this end's client settings (SASL_SSL and all)."""
    from tests.mirror.failover_helpers import consume_group as consume

    return consume(conf, topic, group, limit=limit, idle_s=idle_s)


# -- least privilege ----------------------------------------------------------------------------


def check_report(cfg: Path, link: str) -> tuple[int, dict]:
    """`dcmirror check CONFIG --link L --json`: (exit status, report)."""
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "check", str(cfg), "--link", link, "--json"],
                         capture_output=True, text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


def grant(admin: Conf, principal: str, acls: Iterable[tuple[str, str, str]]) -> None:
    """ALLOW ``principal`` each (resource type Topic|Group|Cluster, literal name, operation)."""
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)

    types = {"Topic": ResourceType.TOPIC, "Group": ResourceType.GROUP, "Cluster": ResourceType.BROKER}
    ops = {"ClusterAction": AclOperation.CLUSTER_ACTION, "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
           "AlterConfigs": AclOperation.ALTER_CONFIGS, "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE}
    bindings = [AclBinding(types[rt], name, ResourcePatternType.LITERAL, principal, "*",
                           ops.get(op) or getattr(AclOperation, op.upper()), AclPermissionType.ALLOW)
                for rt, name, op in acls]
    if not bindings:
        return
    client = AdminClient(dict(admin))
    for fut in client.create_acls(bindings, request_timeout=30).values():
        fut.result(30)


def grant_what_check_misses(cfg: Path, link: str, admin: Conf, principal: str) -> list[tuple[str, str, str]]:
    """Run `dcmirror check`, grant exactly what it reports missing for ``principal`` (the
    dcmirror end's), and require a second check to pass. Returns what was granted."""
    _, report = check_report(cfg, link)
    (entry,) = report["links"]
    assert not entry["problems"], entry["problems"]
    missing = [(c["resource_type"], c["name"], c["operation"]) for c in entry["checks"]
               if c["status"] == "missing"]
    assert all(entry["ends"][c["end"]]["principal"] == principal for c in entry["checks"]
               if c["status"] == "missing"), entry["checks"]
    grant(admin, principal, missing)
    rc, again = check_report(cfg, link)
    assert rc == 0 and again["ok"], json.dumps(again, indent=1)
    return missing


def secrets_in(texts: Mapping[str, str], files_under: Path, secrets: Iterable[str],
               skip: Iterable[Path] = ()) -> list[str]:
    """Where any secret occurs: ``texts`` (name -> captured output) and every file under
    ``files_under`` except ``skip``. Empty when it occurs nowhere."""
    skipped = {p.resolve() for p in skip}
    found = []
    for s in secrets:
        found += [f"{s!r} in {name}" for name, text in texts.items() if s in text]
        for f in files_under.rglob("*"):
            if f.is_file() and f.resolve() not in skipped and s.encode() in f.read_bytes():
                found.append(f"{s!r} in {f}")
    return found
