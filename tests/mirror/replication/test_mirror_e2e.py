"""The mirror as a user runs it: two clusters and `dcmirror mirror` started through the CLI,
records produced by real clients, the target read back by real clients."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

from tests import clients
from tests.mirror.conftest import link
from tests.processes import wait_until

PARTITIONS = 6


def read_all(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> list[clients.Consumed]:
    end = clients.end_offsets(bootstrap, topic, partitions)
    return clients.consume_confluent(bootstrap, topic, partitions, end)


def ends(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(partitions)}
    finally:
        c.close()


def caught_up(dc, topic: str, target_topic: str | None = None) -> bool:
    try:
        return ends(dc.east.bootstrap, topic) == ends(dc.west.bootstrap, target_topic or topic)
    except Exception:
        return False


def raw_batches(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> dict[int, bytes]:
    from cluster.client.client import KafkaClient
    from cluster.client.data import FetchPosition

    async def run() -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        async with KafkaClient(bootstrap) as c:
            for p in range(partitions):
                data = b""
                pos = 0
                while True:
                    res = (await c.fetch({(topic, p): FetchPosition(pos, 8 << 20)}, max_wait_ms=0))[(topic, p)]
                    if not res.records:
                        break
                    from cluster.wire import record_batch as rb

                    last = None
                    for at, h in rb.iter_batches(res.records):
                        if h.base_offset >= pos:
                            data += res.records[at : at + h.size]
                        last = h
                    pos = last.next_offset
                out[p] = data
        return out

    return asyncio.run(run())


def test_every_codec_mirrored_byte_for_byte(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.eu", PARTITIONS, {"retention.ms": "86400000"})
    dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    for codec in clients.CODECS:
        clients.produce_confluent(dc.east.bootstrap, "orders.eu", clients.make_records(f"c-{codec}", 60), codec)
        clients.produce_kafka_python(dc.east.bootstrap, "orders.eu", clients.make_records(f"p-{codec}", 60), codec)
    wait_until(lambda: caught_up(dc, "orders.eu"), what="west caught up")
    east, west = read_all(dc.east.bootstrap, "orders.eu"), read_all(dc.west.bootstrap, "orders.eu")
    assert len(east) == 600
    assert west == east  # same partition, offset, key, value, headers and timestamp
    assert raw_batches(dc.west.bootstrap, "orders.eu") == raw_batches(dc.east.bootstrap, "orders.eu")
    # the topic config followed, and the copy refuses ordinary producers
    from confluent_kafka.admin import AdminClient, ConfigResource

    a = AdminClient({"bootstrap.servers": dc.west.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, "orders.eu")
    cfg = a.describe_configs([res])[res].result(10)
    assert cfg["retention.ms"].value == "86400000"
    from confluent_kafka import KafkaException, Producer

    p = Producer({"bootstrap.servers": dc.west.bootstrap, "message.send.max.retries": 0})
    errors = []
    p.produce("orders.eu", b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors and errors[0] is not None and errors[0].code() != 0


def test_follows_new_topics_partitions_and_configs(dc) -> None:
    dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*", "payments"])]))
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions

    clients.create_topic(dc.east.bootstrap, "payments", 2)
    clients.create_topic(dc.east.bootstrap, "ignored", 1)
    west = AdminClient({"bootstrap.servers": dc.west.bootstrap})
    east = AdminClient({"bootstrap.servers": dc.east.bootstrap})
    wait_until(lambda: "payments" in west.list_topics(timeout=5).topics, what="payments created on west")
    east.create_partitions([NewPartitions("payments", 4)])["payments"].result(10)
    wait_until(lambda: len(west.list_topics(timeout=5).topics["payments"].partitions) == 4,
               what="partition increase followed")
    res = ConfigResource(ConfigResource.Type.TOPIC, "payments", set_config={"retention.ms": "3600000"})
    east.alter_configs([res])[res].result(10)

    def retention() -> str:
        r = ConfigResource(ConfigResource.Type.TOPIC, "payments")
        return west.describe_configs([r])[r].result(10)["retention.ms"].value

    wait_until(lambda: retention() == "3600000", what="config change followed")
    clients.produce_confluent(dc.east.bootstrap, "payments", clients.make_records("pay", 50), "zstd")
    wait_until(lambda: ends(dc.east.bootstrap, "payments", 4) == ends(dc.west.bootstrap, "payments", 4),
               what="payments copied")
    assert "ignored" not in west.list_topics(timeout=5).topics


def test_kill9_of_the_mirror_loses_and_duplicates_nothing(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.stream", PARTITIONS)
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"])])
    m = dc.mirror(cfg)
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            clients.produce_confluent(dc.east.bootstrap, "orders.stream", clients.make_records(f"s{i}", 50), "lz4")
            i += 1

    t = threading.Thread(target=produce)
    t.start()
    try:
        for _ in range(3):
            wait_until(lambda: sum(ends(dc.west.bootstrap, "orders.stream").values()) > 0, what="copying")
            time.sleep(0.5)
            m.kill9()
            m = dc.mirror(cfg)
    finally:
        stop.set()
        t.join()
    wait_until(lambda: caught_up(dc, "orders.stream"), what="caught up after kills")
    east, west = read_all(dc.east.bootstrap, "orders.stream"), read_all(dc.west.bootstrap, "orders.stream")
    assert west == east and len(east) > 0


def test_broker_restarts_on_both_sides(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.r", PARTITIONS)
    dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    clients.produce_confluent(dc.east.bootstrap, "orders.r", clients.make_records("a", 100), "gzip")
    wait_until(lambda: caught_up(dc, "orders.r"), what="first copy")
    dc.west.kill9()
    clients.produce_confluent(dc.east.bootstrap, "orders.r", clients.make_records("b", 100), "snappy")
    dc.west.start()
    dc.east.kill9()
    dc.east.start()
    clients.produce_confluent(dc.east.bootstrap, "orders.r", clients.make_records("c", 100), "zstd")
    wait_until(lambda: caught_up(dc, "orders.r"), what="copy after restarts")
    assert read_all(dc.west.bootstrap, "orders.r") == read_all(dc.east.bootstrap, "orders.r")


def test_retention_gap_raises_an_alarm_with_the_exact_count(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.gap", 1)
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"])])
    m = dc.mirror(cfg)
    clients.produce_confluent(dc.east.bootstrap, "orders.gap", clients.make_records("a", 10), "none")
    wait_until(lambda: ends(dc.east.bootstrap, "orders.gap", 1) == ends(dc.west.bootstrap, "orders.gap", 1),
               what="first copy")
    m.stop()
    clients.produce_confluent(dc.east.bootstrap, "orders.gap", clients.make_records("b", 30), "none")
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": dc.east.bootstrap})
    a.delete_records([TopicPartition("orders.gap", 0, 25)])[TopicPartition("orders.gap", 0, 25)].result(10)
    m = dc.mirror(cfg)
    wait_until(lambda: ends(dc.east.bootstrap, "orders.gap", 1) == ends(dc.west.bootstrap, "orders.gap", 1),
               what="copy after the gap")
    alarms = wait_until(lambda: m.status()["links"][0]["alarms"], what="alarm")
    assert alarms[0]["kind"] == "records-lost" and alarms[0]["count"] == 15
    assert "dcmirror_records_lost_total" in m.metrics()
    # records after the gap keep their offsets
    east = read_all(dc.east.bootstrap, "orders.gap", 1)
    west = [r for r in read_all(dc.west.bootstrap, "orders.gap", 1) if r.offset >= 25]
    assert west == east


def test_active_active_with_prefixes_never_bounces(dc) -> None:
    cfg = dc.config([
        link("east-to-west", "east", "west", ["orders"], rename="prefix"),
        link("west-to-east", "west", "east", ["orders"], rename="prefix"),
    ])
    dc.mirror(cfg)
    clients.create_topic(dc.east.bootstrap, "orders", PARTITIONS)
    clients.create_topic(dc.west.bootstrap, "orders", PARTITIONS)
    clients.produce_confluent(dc.east.bootstrap, "orders", clients.make_records("e", 60), "lz4")
    clients.produce_confluent(dc.west.bootstrap, "orders", clients.make_records("w", 60), "lz4")
    wait_until(lambda: ends(dc.east.bootstrap, "orders") == ends(dc.west.bootstrap, "east.orders"), what="e->w")
    wait_until(lambda: ends(dc.west.bootstrap, "orders") == ends(dc.east.bootstrap, "west.orders"), what="w->e")
    assert read_all(dc.west.bootstrap, "east.orders") == read_all(dc.east.bootstrap, "orders")
    time.sleep(3)  # several sync intervals: nothing may bounce back
    from confluent_kafka.admin import AdminClient

    for boot in (dc.east.bootstrap, dc.west.bootstrap):
        names = set(AdminClient({"bootstrap.servers": boot}).list_topics(timeout=5).topics)
        assert not any(n.startswith(("east.west.", "west.east.", "east.east.", "west.west.")) for n in names), names


def test_status_command_reports_lag_in_json(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.s", 2)
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"])])
    clients.produce_confluent(dc.east.bootstrap, "orders.s", clients.make_records("x", 40), "none")
    # before any mirror runs: everything is lagging (target topic missing)
    out = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(cfg), "--json"],
                         capture_output=True, text=True, timeout=60)
    report = json.loads(out.stdout)
    parts = report["links"][0]["partitions"]
    assert sum(p["lag"] for p in parts) == 40 and {p["state"] for p in parts} == {"missing"}
    assert parts[0]["lag_seconds"] >= 0
    rc = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(cfg), "--max-lag", "0"],
                        capture_output=True, text=True, timeout=60).returncode
    assert rc == 3
    dc.mirror(cfg)
    wait_until(lambda: ends(dc.east.bootstrap, "orders.s", 2) == ends(dc.west.bootstrap, "orders.s", 2),
               what="copied")
    out = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(cfg), "--json", "--max-lag", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert all(p["lag"] == 0 and p["state"] == "in-sync" for p in report["links"][0]["partitions"])
    assert report["links"][0]["link_state"] == "normal"


def test_consumer_group_offsets_follow_and_resume_exactly(dc) -> None:
    from confluent_kafka import Consumer, TopicPartition

    clients.create_topic(dc.east.bootstrap, "orders.g", PARTITIONS)
    clients.produce_confluent(dc.east.bootstrap, "orders.g", clients.make_records("g", 300), "lz4")
    dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"], groups=["billing"])]))
    wait_until(lambda: caught_up(dc, "orders.g"), what="copied")
    # a group reads part of the topic on east and commits
    c = Consumer({"bootstrap.servers": dc.east.bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["orders.g"])
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 120 and time.monotonic() < deadline:
        for m in c.consume(20, timeout=1):
            if not m.error():
                seen.append((m.partition(), m.offset()))
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed(
        [TopicPartition("orders.g", p) for p in range(PARTITIONS)], timeout=10)}
    c.close()

    def west_committed() -> dict[int, int]:
        w = Consumer({"bootstrap.servers": dc.west.bootstrap, "group.id": "billing"})
        try:
            return {tp.partition: tp.offset for tp in w.committed(
                [TopicPartition("orders.g", p) for p in range(PARTITIONS)], timeout=10)}
        finally:
            w.close()

    wait_until(lambda: west_committed() == committed, what="group offsets on west")
    # the group resumes on west: exactly the records it had not read, none twice
    w = Consumer({"bootstrap.servers": dc.west.bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    w.subscribe(["orders.g"])
    rest = []
    deadline = time.monotonic() + 60
    while len(rest) < 300 - len(seen) and time.monotonic() < deadline:
        for m in w.consume(50, timeout=1):
            if not m.error():
                rest.append((m.partition(), m.offset()))
    w.close()
    assert not set(rest) & set(seen)
    assert len(set(rest) | set(seen)) == 300
    # the mirror's own scale-out group is not mirrored
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": dc.west.bootstrap})
    groups = {g.group_id for g in admin.list_consumer_groups().result().valid}
    assert "billing" in groups and not any(g.startswith("dcmirror") for g in groups)


def test_recreated_source_topic_is_reported_never_mixed(dc) -> None:
    from confluent_kafka.admin import AdminClient

    clients.create_topic(dc.east.bootstrap, "orders.re", 2)
    clients.produce_confluent(dc.east.bootstrap, "orders.re", clients.make_records("old", 40), "none")
    m = dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    wait_until(lambda: ends(dc.east.bootstrap, "orders.re", 2) == ends(dc.west.bootstrap, "orders.re", 2),
               what="first copy")
    before = read_all(dc.west.bootstrap, "orders.re", 2)
    east = AdminClient({"bootstrap.servers": dc.east.bootstrap})
    east.delete_topics(["orders.re"])["orders.re"].result(10)
    wait_until(lambda: "orders.re" not in east.list_topics(timeout=5).topics, what="deleted")
    clients.create_topic(dc.east.bootstrap, "orders.re", 2)
    # more records than the old topic had: a copier that resumed by offset would mix them in
    clients.produce_confluent(dc.east.bootstrap, "orders.re", clients.make_records("new", 200), "none")
    alarms = wait_until(lambda: [a for a in m.status()["links"][0]["alarms"] if a["kind"] == "topic-recreated"],
                        what="recreation alarm")
    assert "orders.re" in alarms[0]["message"]
    time.sleep(2)  # a few sync intervals: the new topic's records must not be mixed in
    assert read_all(dc.west.bootstrap, "orders.re", 2) == before


def test_transactions_keep_their_meaning_on_the_copy(dc) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    clients.create_topic(dc.east.bootstrap, "orders.tx", 2)
    dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    p = Producer({"bootstrap.servers": dc.east.bootstrap, "transactional.id": "tx-1", "linger.ms": 5})
    p.init_transactions(30)
    for i, commit in enumerate([True, False, True, False, True]):
        p.begin_transaction()
        for j in range(10):
            p.produce("orders.tx", key=f"k{j}".encode(), value=f"{'C' if commit else 'A'}{i}-{j}".encode())
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    wait_until(lambda: ends(dc.east.bootstrap, "orders.tx", 2) == ends(dc.west.bootstrap, "orders.tx", 2),
               what="copied with markers")

    def values(bootstrap: str, isolation: str) -> list[bytes]:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{isolation}",
                      "isolation.level": isolation, "enable.auto.commit": False})
        c.assign([TopicPartition("orders.tx", p, 0) for p in range(2)])
        out: list[bytes] = []
        deadline = time.monotonic() + 20
        want = 30 if isolation == "read_committed" else 50
        while len(out) < want and time.monotonic() < deadline:
            out += [m.value() for m in c.consume(100, timeout=0.5) if not m.error()]
        time.sleep(1)
        out += [m.value() for m in c.consume(100, timeout=0.5) if not m.error()]
        c.close()
        return sorted(out)

    committed = values(dc.west.bootstrap, "read_committed")
    assert len(committed) == 30 and all(v.startswith(b"C") for v in committed)
    assert committed == values(dc.east.bootstrap, "read_committed")
    assert len(values(dc.west.bootstrap, "read_uncommitted")) == 50


def test_prometheus_metrics_and_health(dc) -> None:
    import urllib.request

    clients.create_topic(dc.east.bootstrap, "orders.m", 2)
    m = dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    clients.produce_confluent(dc.east.bootstrap, "orders.m", clients.make_records("m", 50), "lz4")
    wait_until(lambda: ends(dc.east.bootstrap, "orders.m", 2) == ends(dc.west.bootstrap, "orders.m", 2),
               what="copied")

    def sample(text: str, name: str, **labels: str) -> float | None:
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None

    def copied() -> bool:
        text = m.metrics()
        total = sum(sample(text, "dcmirror_records_total", topic="orders.m", partition=str(p)) or 0
                    for p in range(2))
        return total == 50

    wait_until(copied, what="records counted")
    text = m.metrics()
    for name in ("dcmirror_replication_lag_records", "dcmirror_replication_lag_seconds",
                 "dcmirror_bytes_total", "dcmirror_retries_total", "dcmirror_link_state",
                 "dcmirror_replication_latency_seconds_bucket"):
        assert name in text, name
    assert sample(text, "dcmirror_replication_lag_records", topic="orders.m", partition="0") == 0
    assert sample(text, "dcmirror_replication_latency_seconds_count", link="east-to-west") > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{m.metrics_port}/healthz", timeout=5) as r:
        assert r.status == 200
