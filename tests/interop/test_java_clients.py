"""Apache Kafka's own Java client and CLI tools (4.3.1) against our broker started by the CLI.

The Java client is the reference client: it negotiates the newest API versions, runs the
idempotent producer by default (InitProducerId + sequence checks) and is strict about
response shapes. Each test drives a tool the way an operator would — kafka-topics,
kafka-configs, kafka-console-producer/consumer, kafka-get-offsets, kafka-delete-records —
and checks what the broker really did, cross-checked with confluent-kafka.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from cluster.client.partitioner import partition_for_key
from peers.kafka_broker import CONSOLE_CONSUMER, CONSUMER_GROUPS as GROUPS, TOPICS, kafka_tool
from tests import clients
from tests.interop.conftest import require_kafka
from tests.processes import ClusterProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

CONFIGS = "kafka.admin.ConfigCommand"
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"


@pytest.fixture
def java(cluster: ClusterProcess):
    """Run a Kafka CLI tool against our cluster: `java(TOPICS, "--list")`."""
    require_kafka()

    def run(main_class: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return kafka_tool(main_class, "--bootstrap-server", cluster.bootstrap, *args, input=input)

    return run


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr[-4000:]}"
    return res.stdout


def describe_counts(out: str) -> tuple[int, dict[str, str]]:
    """(PartitionCount, Configs) from kafka-topics --describe's first line."""
    m = re.search(r"PartitionCount: (\d+)\s+ReplicationFactor: \d+\s+Configs: ?(\S*)", out)
    assert m, out
    cfg = dict(kv.split("=", 1) for kv in m.group(2).split(",") if kv)
    return int(m.group(1)), cfg


def test_kafka_topics_create_list_describe_alter_delete(cluster: ClusterProcess, java) -> None:
    ok(java(TOPICS, "--create", "--topic", "orders", "--partitions", "6", "--replication-factor", "1",
            "--config", "retention.ms=123456", "--config", "max.message.bytes=300000"))
    assert "orders" in ok(java(TOPICS, "--list")).split()

    out = ok(java(TOPICS, "--describe", "--topic", "orders"))
    count, cfg = describe_counts(out)
    assert count == 6
    assert cfg == {"retention.ms": "123456", "max.message.bytes": "300000"}
    rows = re.findall(r"Partition: (\d+)\s+Leader: (\d+)\s+Replicas: (\d+)\s+Isr: (\d+)", out)
    assert sorted(int(p) for p, *_ in rows) == list(range(6))
    assert all(leader == replicas == isr for _, leader, replicas, isr in rows)

    again = java(TOPICS, "--create", "--topic", "orders", "--partitions", "6")
    assert again.returncode != 0 and "TopicExistsException" in again.stderr, again.stderr

    ok(java(TOPICS, "--alter", "--topic", "orders", "--partitions", "8"))
    assert describe_counts(ok(java(TOPICS, "--describe", "--topic", "orders")))[0] == 8
    shrink = java(TOPICS, "--alter", "--topic", "orders", "--partitions", "4")
    assert shrink.returncode != 0 and "InvalidPartitionsException" in shrink.stderr, shrink.stderr

    ok(java(TOPICS, "--delete", "--topic", "orders"))
    assert "orders" not in ok(java(TOPICS, "--list")).split()
    missing = java(TOPICS, "--describe", "--topic", "orders")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_kafka_configs_describe_and_alter(cluster: ClusterProcess, java) -> None:
    ok(java(TOPICS, "--create", "--topic", "cfg", "--partitions", "1", "--config", "retention.ms=123456"))
    scope = ["--entity-type", "topics", "--entity-name", "cfg"]
    out = ok(java(CONFIGS, *scope, "--describe"))
    assert "retention.ms=123456 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=123456}" in out

    ok(java(CONFIGS, *scope, "--alter", "--add-config", "max.message.bytes=200000,retention.ms=99"))
    out = ok(java(CONFIGS, *scope, "--describe"))
    assert "max.message.bytes=200000" in out and "retention.ms=99 " in out

    ok(java(CONFIGS, *scope, "--alter", "--delete-config", "retention.ms"))
    every = ok(java(CONFIGS, *scope, "--describe", "--all"))
    assert "retention.ms=604800000 sensitive=false synonyms={DEFAULT_CONFIG:retention.ms=604800000}" in every
    assert "cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:cleanup.policy=delete}" in every
    assert "max.message.bytes=200000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=200000}" \
        in every

    bad = java(CONFIGS, *scope, "--alter", "--add-config", "retention.ms=not-a-number")
    assert bad.returncode != 0 and "InvalidConfigurationException" in bad.stderr, bad.stderr
    unknown = java(CONFIGS, "--entity-type", "topics", "--entity-name", "nope", "--alter",
                   "--add-config", "retention.ms=1")
    assert unknown.returncode != 0 and "UnknownTopicOrPartitionException" in unknown.stderr, unknown.stderr


def test_console_producer_every_codec_reads_back_everywhere(cluster: ClusterProcess, java) -> None:
    """Default (idempotent) Java producer, keyed records with headers in every codec; the
    Java console consumer and confluent-kafka read back the same records, murmur2-placed."""
    ok(java(TOPICS, "--create", "--topic", "java-in", "--partitions", "6"))
    sent: Counter = Counter()
    for codec in clients.CODECS:
        recs = clients.make_records(f"java-{codec}", 40)
        clients.produce_java_console(cluster.bootstrap, "java-in", recs, codec)
        sent.update((k, v, tuple(h)) for k, v, h in recs)
    end = clients.end_offsets(cluster.bootstrap, "java-in", 6)
    assert sum(end.values()) == sum(sent.values()) == 200

    by_java = clients.consume_java_console(cluster.bootstrap, "java-in", 6, end)
    assert Counter((m.key, m.value, m.headers) for m in by_java) == sent
    for m in by_java:
        assert m.partition == partition_for_key(m.key, 6), m
    for p in range(6):
        offsets = [m.offset for m in by_java if m.partition == p]
        assert offsets == list(range(end[p])), f"partition {p} offsets not dense"

    by_confluent = clients.consume_confluent(cluster.bootstrap, "java-in", 6, end)
    assert by_confluent == by_java


def test_python_produced_records_read_by_java_console_consumer(cluster: ClusterProcess, java) -> None:
    ok(java(TOPICS, "--create", "--topic", "py-in", "--partitions", "6"))
    for codec in clients.CODECS:
        clients.produce_confluent(cluster.bootstrap, "py-in", clients.make_records(f"cf-{codec}", 20), codec)
        clients.produce_kafka_python(cluster.bootstrap, "py-in", clients.make_records(f"kp-{codec}", 20), codec)
    end = clients.end_offsets(cluster.bootstrap, "py-in", 6)
    assert sum(end.values()) == 200
    by_java = clients.consume_java_console(cluster.bootstrap, "py-in", 6, end)
    assert by_java == clients.consume_confluent(cluster.bootstrap, "py-in", 6, end)
    for m in by_java:
        assert m.partition == partition_for_key(m.key, 6), m


def test_console_consumer_in_a_group_from_beginning(cluster: ClusterProcess, java) -> None:
    """`--from-beginning` without `--partition` joins a consumer group (FindCoordinator,
    JoinGroup/ConsumerGroupHeartbeat, OffsetFetch)."""
    api_keys = _api_keys(cluster.bootstrap)
    if 10 not in api_keys:
        pytest.xfail("our broker does not serve FindCoordinator (key 10) yet: "
                     "kafka-console-consumer --from-beginning needs a group coordinator")
    ok(java(TOPICS, "--create", "--topic", "grp", "--partitions", "6"))
    recs = clients.make_records("grp", 30)
    clients.produce_java_console(cluster.bootstrap, "grp", recs, "lz4")
    res = java(CONSOLE_CONSUMER, "--topic", "grp", "--from-beginning", "--max-messages", "30",
               "--timeout-ms", "60000", *clients.CONSOLE_PRINT)
    got = [clients.parse_console_line(line) for line in ok(res).splitlines() if line]
    assert Counter((m.key, m.value, m.headers) for m in got) == Counter((k, v, tuple(h)) for k, v, h in recs)


def test_consumer_groups_list_describe_reset_delete(cluster: ClusterProcess, java) -> None:
    """kafka-consumer-groups over a group the console consumer committed (classic protocol)."""
    if 10 not in _api_keys(cluster.bootstrap):
        pytest.xfail("our broker does not serve FindCoordinator (key 10) yet")
    ok(java(TOPICS, "--create", "--topic", "cg", "--partitions", "3"))
    recs = clients.make_records("cg", 12)
    clients.produce_java_console(cluster.bootstrap, "cg", recs, "none")
    end = clients.end_offsets(cluster.bootstrap, "cg", 3)
    ok(java(CONSOLE_CONSUMER, "--topic", "cg", "--group", "cg1", "--from-beginning", "--max-messages", "12",
            "--timeout-ms", "60000"))
    assert "cg1" in ok(java(GROUPS, "--list")).split()

    def committed() -> dict[int, tuple[int, int]]:
        out = ok(java(GROUPS, "--describe", "--group", "cg1", "--offsets"))
        rows = re.findall(r"^cg1\s+cg\s+(\d+)\s+(\S+)\s+(\d+)\s+", out, re.M)
        return {int(p): (int(cur) if cur != "-" else -1, int(leo)) for p, cur, leo in rows}

    assert committed() == {p: (end[p], end[p]) for p in range(3)}
    ok(java(GROUPS, "--reset-offsets", "--group", "cg1", "--topic", "cg", "--to-earliest", "--execute"))
    assert committed() == {p: (0, end[p]) for p in range(3)}
    ok(java(GROUPS, "--reset-offsets", "--group", "cg1", "--topic", "cg:1", "--to-offset", "1", "--execute"))
    assert committed()[1] == (1, end[1])
    assert "successful" in ok(java(GROUPS, "--delete", "--group", "cg1"))
    assert "cg1" not in ok(java(GROUPS, "--list")).split()


def test_console_consumer_with_the_kip848_consumer_protocol(cluster: ClusterProcess, java) -> None:
    """`group.protocol=consumer` (KIP-848) needs ConsumerGroupHeartbeat (key 68)."""
    ok(java(TOPICS, "--create", "--topic", "kip848", "--partitions", "3"))
    recs = clients.make_records("kip848", 9)
    clients.produce_java_console(cluster.bootstrap, "kip848", recs, "zstd")
    res = java(CONSOLE_CONSUMER, "--topic", "kip848", "--group", "g848", "--from-beginning", "--max-messages", "9",
               "--command-property", "group.protocol=consumer", "--timeout-ms", "60000", *clients.CONSOLE_PRINT)
    got = [clients.parse_console_line(line) for line in ok(res).splitlines() if line]
    assert Counter((m.key, m.value, m.headers) for m in got) == Counter((k, v, tuple(h)) for k, v, h in recs)


def _api_keys(bootstrap: str) -> set[int]:
    from cluster.client import KafkaClient

    async def run() -> set[int]:
        async with KafkaClient(bootstrap) as client:
            conn = await client.any_connection()
            return set(conn.versions.ranges)

    return asyncio.run(run())


def parse_offsets(out: str) -> dict[int, int]:
    """kafka-get-offsets prints `topic:partition:offset` lines (offset empty when none)."""
    got = {}
    for line in out.splitlines():
        _, p, off = line.rsplit(":", 2)
        got[int(p)] = int(off) if off else -1
    return got


def test_get_offsets_and_delete_records(cluster: ClusterProcess, java, tmp_path: Path) -> None:
    ok(java(TOPICS, "--create", "--topic", "offs", "--partitions", "3"))
    for p in range(3):
        clients_produce_to(cluster.bootstrap, "offs", p, 10 * (p + 1))
    assert parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", "-1"))) == {0: 10, 1: 20, 2: 30}
    assert parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", "-2"))) == {0: 0, 1: 0, 2: 0}
    assert parse_offsets(ok(java(GET_OFFSETS, "--topic-partitions", "offs:1"))) == {1: 20}
    max_ts = parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", "-3")))
    assert max_ts == {0: 9, 1: 19, 2: 29}  # each partition's records carry rising timestamps
    by_time = parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", str(BASE_TS + 5))))
    assert by_time == {0: 5, 1: 5, 2: 5}

    spec = tmp_path / "delete.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "offs", "partition": 0, "offset": 4},
        {"topic": "offs", "partition": 2, "offset": -1}]}))
    out = ok(java(DELETE_RECORDS, "--offset-json-file", str(spec)))
    assert "partition: offs-0\tlow_watermark: 4" in out, out
    assert "partition: offs-2\tlow_watermark: 30" in out, out
    assert parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", "-2"))) == {0: 4, 1: 0, 2: 30}
    assert parse_offsets(ok(java(GET_OFFSETS, "--topic", "offs", "--time", "-1"))) == {0: 10, 1: 20, 2: 30}
    left = clients.consume_java_console(cluster.bootstrap, "offs", 1, {0: 6})
    assert [m.offset for m in left] == list(range(4, 10))


BASE_TS = 1_700_000_000_000


def clients_produce_to(bootstrap: str, topic: str, partition: int, n: int) -> None:
    """n records to one partition with timestamps BASE_TS + i (confluent-kafka)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    errors: list = []
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i}".encode(), partition=partition,
                  timestamp=BASE_TS + i, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0
    assert not errors, errors


def test_broker_api_versions_and_cluster_id(cluster: ClusterProcess, java) -> None:
    """kafka-broker-api-versions parses our ApiVersions; kafka-cluster reads our cluster id
    (DescribeCluster) and it is the one our own client sees."""
    out = ok(java("org.apache.kafka.tools.BrokerApiVersionsCommand"))
    for api in ("Produce(0)", "Fetch(1)", "ListOffsets(2)", "Metadata(3)", "ApiVersions(18)",
                "CreateTopics(19)", "InitProducerId(22)"):
        line = next((ln for ln in out.splitlines() if api in ln), "")
        assert "[usable:" in line, f"{api} not usable by the Java client:\n{out}"
    got = ok(kafka_tool("org.apache.kafka.tools.ClusterTool", "cluster-id", "--bootstrap-server", cluster.bootstrap))
    from cluster.client import KafkaClient

    async def ours() -> str | None:
        async with KafkaClient(cluster.bootstrap) as client:
            return (await client.describe_cluster()).cluster_id

    assert got.strip() == f"Cluster ID: {asyncio.run(ours())}"


def test_producer_perf_test_idempotent_pipelined(cluster: ClusterProcess, java) -> None:
    """kafka-producer-perf-test: the default idempotent producer with 5 requests in flight
    per connection and large lz4 batches; exactly the records sent are stored, no dups."""
    ok(java(TOPICS, "--create", "--topic", "perf", "--partitions", "3"))
    res = kafka_tool("org.apache.kafka.tools.ProducerPerformance", "--topic", "perf", "--num-records", "30000",
                     "--record-size", "200", "--throughput", "-1", "--command-property",
                     f"bootstrap.servers={cluster.bootstrap}", "compression.type=lz4", "acks=all")
    assert "30000 records sent" in ok(res), res.stdout
    assert "ERROR" not in res.stderr, res.stderr[-3000:]
    assert sum(clients.end_offsets(cluster.bootstrap, "perf", 3).values()) == 30000
