"""Security end to end with SASL and ACLs, against `dcmirror cluster start` with a
SASL_PLAINTEXT listener and a loopback PLAINTEXT one: neither an anonymous client (the
PLAINTEXT listener's User:ANONYMOUS) nor an authenticated user with no ACLs (mallory) can
produce, fetch, create or delete topics (real clients: confluent-kafka; kafka-python for a
group-less Fetch by a user who may Describe but not Read; the raw Fetch of one who may not
even Describe, which a client never sends), or call
DcMirrorAppend (10000) / MirrorTruncate (10001) (raw frames); issue 10's attack — mark an
ordinary topic with `dcmirror.mirror.source` through IncrementalAlterConfigs, MirrorTruncate
it, delete the marker — fails at every step with Kafka's codes, also for a user holding
every operation on the topic, and the 100 records stay.

Relies on a super user (`--super-users User:admin`) for the administrator that sets up
the topic and grants mallory's topic ACLs; the attackers get only what each case says.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourcePatternType, ResourceType)
from kio.schema.errors import ErrorCode as E

from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.sasl_helpers import API_VERSIONS, scram_login
from tests.processes import ListenerClusterProcess

ADMIN_PW = "Adm1n-sec-pw-19ab"
MALLORY_PW = "Mall0ry-sec-pw-c4"
VICTIM = "victim"
TOPIC_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED


def _add_user(data: Path, user: str, password: str) -> None:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add", "--data-dir", str(data),
                          "--user", user, "--mechanism", "SCRAM-SHA-512", "--password-env", "PW"],
                         env={**os.environ, "PW": password}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("acl-sec")
    _add_user(base / "d", "admin", ADMIN_PW)
    _add_user(base / "d", "mallory", MALLORY_PW)
    c = ListenerClusterProcess("sec", base / "d", {"SASL": "SASL_PLAINTEXT", "PLAIN": "PLAINTEXT"},
                               extra_args=["--sasl-mechanisms", "SCRAM-SHA-512", "--super-users", "User:admin"]).start()
    admin = AdminClient(settings(c, "admin"))
    admin.create_topics([NewTopic(VICTIM, 1, 1)])[VICTIM].result(30)
    p = Producer({**settings(c, "admin"), "acks": "all"})
    for i in range(100):
        p.produce(VICTIM, value=b"record-%d" % i)
    assert p.flush(30) == 0
    yield c
    c.stop()
    text = c.log_text()
    assert "Traceback" not in text and ADMIN_PW not in text and MALLORY_PW not in text


def settings(c: ListenerClusterProcess, who: str) -> dict[str, Any]:
    """confluent-kafka settings for `who`: admin or mallory over SASL, anonymous over PLAINTEXT."""
    if who == "anonymous":
        return {"bootstrap.servers": c.bootstrap("PLAIN")}
    pw = {"admin": ADMIN_PW, "mallory": MALLORY_PW}[who]
    return {"bootstrap.servers": c.bootstrap("SASL"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": who, "sasl.password": pw}


def watermarks(c: ListenerClusterProcess) -> tuple[int, int]:
    consumer = Consumer({**settings(c, "admin"), "group.id": "unused"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(VICTIM, 0), timeout=15)
    finally:
        consumer.close()


def produce_error(c: ListenerClusterProcess, who: str, topic: str) -> int | None:
    errors: list[KafkaError] = []
    p = Producer({**settings(c, who), "acks": "all", "message.timeout.ms": 20000})
    p.produce(topic, value=b"intruder", on_delivery=lambda e, m: e and errors.append(e))
    p.flush(30)
    return errors[0].code() if errors else None


def group_consume_error(c: ListenerClusterProcess, who: str) -> int | None:
    """The first error a confluent-kafka consumer in a group subscribing to the topic gets."""
    consumer = Consumer({**settings(c, who), "group.id": "intruders", "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([VICTIM])
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None:
                return msg.error().code() if msg.error() else None
        return -1
    finally:
        consumer.close()


def kafka_python_fetch_error(c: ListenerClusterProcess, who: str) -> str | None:
    """The error class a group-less kafka-python consumer reading partition 0 from offset 0
    raises (None: records came)."""
    from kafka import KafkaConsumer, TopicPartition as KTP

    s = settings(c, who)
    consumer = KafkaConsumer(bootstrap_servers=s["bootstrap.servers"], enable_auto_commit=False,
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                             sasl_plain_username=s["sasl.username"], sasl_plain_password=s["sasl.password"])
    try:
        consumer.assign([KTP(VICTIM, 0)])
        consumer.seek(KTP(VICTIM, 0), 0)
        for _ in range(40):
            try:
                if consumer.poll(timeout_ms=500):
                    return None
            except Exception as exc:  # noqa: BLE001 - the client's own error class is the answer
                return type(exc).__name__
        return "nothing arrived"
    finally:
        consumer.close()


def admin_error(future: Any) -> int:
    with pytest.raises(KafkaException) as info:
        future.result(30)
    return info.value.args[0].code()


@pytest.mark.parametrize("who", ["anonymous", "mallory"])
def test_no_produce_fetch_create_or_delete_without_acls(cluster, who: str) -> None:
    assert produce_error(cluster, who, VICTIM) == TOPIC_DENIED
    # a real consumer cannot even join: its group is refused first (as by Kafka) ...
    assert group_consume_error(cluster, who) == KafkaError.GROUP_AUTHORIZATION_FAILED
    # ... and the Fetch itself is refused (a client never sends it: Metadata named no leader)
    assert _raw_fetch_error(cluster, who) == E.topic_authorization_failed
    admin = AdminClient(settings(cluster, who))
    assert admin_error(admin.create_topics([NewTopic("intruder", 1, 1)])["intruder"]) == TOPIC_DENIED
    assert admin_error(admin.delete_topics([VICTIM])[VICTIM]) == TOPIC_DENIED
    assert watermarks(cluster) == (0, 100)
    assert "intruder" not in AdminClient(settings(cluster, "admin")).list_topics(timeout=15).topics


async def _raw(cluster: ListenerClusterProcess, who: str) -> RawConn:
    if who == "anonymous":
        return await RawConn.open(cluster.ports["PLAIN"])
    conn = await RawConn.open(cluster.ports["SASL"])
    await conn.call(18, 3, API_VERSIONS)
    assert (await scram_login(conn, "SCRAM-SHA-512", who, MALLORY_PW)).error_code == 0
    return conn


def _append_body(records: bytes) -> dict:
    return {"transactional_id": None, "acks": -1, "timeout": 5000,
            "topic_data": [{"name": VICTIM, "partition_data": [{"index": 0, "records": records}]}]}


# MirrorTruncate's offset is the new log end: 0 would drop all 100 acknowledged records
TRUNCATE = {"topics": [{"name": VICTIM, "partitions": [{"partition_index": 0, "offset": 0}]}], "timeout": 5000}


@pytest.mark.parametrize("who", ["anonymous", "mallory"])
def test_private_apis_need_cluster_action(cluster, who: str) -> None:
    async def run() -> tuple[int, int]:
        conn = await _raw(cluster, who)
        try:
            batch = build_batch([(None, b"forged", [], 1_700_000_000_000)])
            a = await conn.call(codec.DCMIRROR_APPEND, 0, _append_body(batch))
            t = await conn.call(codec.DCMIRROR_TRUNCATE, 0, TRUNCATE)
            return a.responses[0].partition_responses[0].error_code, t.topics[0].partitions[0].error_code
        finally:
            conn.close()

    assert asyncio.run(run()) == (E.cluster_authorization_failed, E.cluster_authorization_failed)
    assert watermarks(cluster) == (0, 100)


def _configs(admin: AdminClient, op: AlterConfigOpType) -> int | None:
    res = ConfigResource(ResourceType.TOPIC, VICTIM, incremental_configs=[
        ConfigEntry("dcmirror.mirror.source", "east" if op == AlterConfigOpType.SET else None,
                    incremental_operation=op)])
    fut = admin.incremental_alter_configs([res])[res]
    try:
        fut.result(30)
        return None
    except KafkaException as exc:
        return exc.args[0].code()


def _truncate(cluster: ListenerClusterProcess, who: str) -> int:
    async def run() -> int:
        conn = await _raw(cluster, who)
        try:
            return (await conn.call(codec.DCMIRROR_TRUNCATE, 0, TRUNCATE)).topics[0].partitions[0].error_code
        finally:
            conn.close()

    return asyncio.run(run())


def test_the_truncate_attack_fails_at_every_step(cluster) -> None:
    """Issue 10's attack, by an anonymous client and by mallory once she holds every
    operation on the topic (but nothing on the cluster)."""
    anon = AdminClient(settings(cluster, "anonymous"))
    assert _configs(anon, AlterConfigOpType.SET) == TOPIC_DENIED
    assert _truncate(cluster, "anonymous") == E.cluster_authorization_failed
    assert _configs(anon, AlterConfigOpType.DELETE) == TOPIC_DENIED

    boss = AdminClient(settings(cluster, "admin"))
    grant = AclBinding(ResourceType.TOPIC, VICTIM, ResourcePatternType.LITERAL, "User:mallory", "*",
                       AclOperation.ALL, AclPermissionType.ALLOW)
    for fut in boss.create_acls([grant]).values():
        fut.result(30)
    mallory = AdminClient(settings(cluster, "mallory"))
    assert _configs(mallory, AlterConfigOpType.SET) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert _truncate(cluster, "mallory") == E.cluster_authorization_failed
    # even on a topic an administrator did mark, mallory can neither cut it nor unmark it
    assert _configs(boss, AlterConfigOpType.SET) is None
    assert _truncate(cluster, "mallory") == E.cluster_authorization_failed
    assert _configs(mallory, AlterConfigOpType.DELETE) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert _configs(boss, AlterConfigOpType.DELETE) is None
    assert watermarks(cluster) == (0, 100)
    undo = AclBindingFilter(ResourceType.TOPIC, VICTIM, ResourcePatternType.LITERAL, "User:mallory", "*",
                            AclOperation.ALL, AclPermissionType.ALLOW)
    for fut in boss.delete_acls([undo]).values():  # other tests of the module see no grant
        fut.result(30)


def _raw_fetch_error(cluster: ListenerClusterProcess, who: str) -> int:
    async def run() -> int:
        conn = await _raw(cluster, who)
        try:
            r = await conn.call(1, 12, {
                "max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "", "topics": [{"topic": VICTIM,
                "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
            return r.responses[0].partitions[0].error_code
        finally:
            conn.close()

    return asyncio.run(run())


def test_describe_without_read_cannot_fetch(cluster) -> None:
    """Mallory may see the topic (Describe) but not read it: kafka-python's Fetch is refused."""
    boss = AdminClient(settings(cluster, "admin"))
    see = AclBinding(ResourceType.TOPIC, VICTIM, ResourcePatternType.LITERAL, "User:mallory", "*",
                     AclOperation.DESCRIBE, AclPermissionType.ALLOW)
    for fut in boss.create_acls([see]).values():
        fut.result(30)
    try:
        assert kafka_python_fetch_error(cluster, "mallory") == "TopicAuthorizationFailedError"
        assert produce_error(cluster, "mallory", VICTIM) == TOPIC_DENIED
    finally:
        undo = AclBindingFilter(ResourceType.TOPIC, VICTIM, ResourcePatternType.LITERAL, "User:mallory", "*",
                                AclOperation.DESCRIBE, AclPermissionType.ALLOW)
        for fut in boss.delete_acls([undo]).values():
            fut.result(30)
    assert watermarks(cluster) == (0, 100)
