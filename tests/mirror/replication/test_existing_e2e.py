"""Target topics that exist before the link's first topic sync, as users meet them: a
`kcat -L -t` lookup or an application's producer on the DR cluster auto-creates the topic
there. Empty: the link adopts it and mirrors byte for byte. Written to: that topic alone is
`conflict` in every view, the rest keeps copying, and `dcmirror link adopt --truncate`
resolves it keeping the application's record in a kept topic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.replication.test_mirror_e2e import caught_up, ends, raw_batches, read_all
from tests.processes import wait_until


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcmirror_cli", *args], capture_output=True, text=True,
                          timeout=120)


def status_json(cfg) -> tuple[int, dict]:
    out = cli("status", str(cfg), "--json")
    return out.returncode, json.loads(out.stdout)


def metric(text: str, **labels: str) -> float | None:
    """The value of dcmirror_partition_state with these labels, None if absent."""
    for line in text.splitlines():
        if line.startswith("dcmirror_partition_state{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_topic_auto_created_by_a_lookup_is_adopted_and_mirrored_byte_for_byte(dc) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.k", 6)
    clients.produce_confluent(dc.east.bootstrap, "orders.k", clients.make_records("k", 120), "lz4")
    clients.create_topic(dc.east.bootstrap, "orders.a", 6)
    clients.produce_confluent(dc.east.bootstrap, "orders.a", clients.make_records("a", 60), "zstd")
    # the lookups every user makes against the DR cluster before the mirror runs
    look = subprocess.run(["kcat", "-L", "-b", dc.west.bootstrap, "-t", "orders.k"], capture_output=True,
                          text=True, timeout=30)
    assert look.returncode == 0, look.stderr
    from confluent_kafka.admin import AdminClient

    west = AdminClient({"bootstrap.servers": dc.west.bootstrap})
    west.list_topics(topic="orders.a", timeout=10)
    created = wait_until(lambda: {t: len(m.partitions) for t, m in west.list_topics(timeout=5).topics.items()
                                  if t in ("orders.k", "orders.a")}, what="auto-created on west")
    assert created == {"orders.k": 1, "orders.a": 1}
    m = dc.mirror(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    wait_until(lambda: caught_up(dc, "orders.k") and caught_up(dc, "orders.a"), what="adopted and copied")
    for topic in ("orders.k", "orders.a"):
        assert read_all(dc.west.bootstrap, topic) == read_all(dc.east.bootstrap, topic)
        assert raw_batches(dc.west.bootstrap, topic) == raw_batches(dc.east.bootstrap, topic)
    log = m.log_text()
    assert log.count("adopted existing empty target topic orders.k") == 1, log
    assert "CONFLICT" not in log
    rc, report = status_json(dc.config([link("east-to-west", "east", "west", ["orders.*"])]))
    assert rc == 0 and {p["state"] for p in report["links"][0]["partitions"]} == {"in-sync"}


@pytest.mark.parametrize("mode", ["preserve-offsets", "translate"])
def test_a_topic_an_application_wrote_to_is_a_conflict_until_adopted(dc, mode: str) -> None:
    clients.create_topic(dc.east.bootstrap, "orders.ok", 2)
    clients.create_topic(dc.east.bootstrap, "orders.app", 3)
    clients.produce_confluent(dc.east.bootstrap, "orders.app", clients.make_records("src", 30), "none")
    # an application already pointed at DR: its producer auto-creates the topic with one record
    clients.produce_confluent(dc.west.bootstrap, "orders.app", clients.make_records("app", 1), "none")
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"], mode=mode)])
    m = dc.mirror(cfg)
    clients.produce_confluent(dc.east.bootstrap, "orders.ok", clients.make_records("ok", 40), "lz4")
    wait_until(lambda: ends(dc.east.bootstrap, "orders.ok", 2) == ends(dc.west.bootstrap, "orders.ok", 2),
               what="the other topic keeps copying")

    def conflicted(parts) -> list:
        return [p for p in parts if p["topic"] == "orders.app" and p["state"] == "conflict"]

    live = wait_until(lambda: conflicted(m.status()["links"][0]["partitions"]), what="/status conflict")
    assert len(live) == 3
    reason = live[0]["error"]
    assert "orders.app" in reason and "1 record(s)" in reason and "partition(s) 0 of 1" in reason
    assert f"dcmirror link adopt {cfg} --link east-to-west --topic orders.app --truncate" in reason
    assert metric(m.metrics(), topic="orders.app", partition="0", state="conflict") == 1
    rc, report = status_json(cfg)
    assert rc == 4  # a conflict needs an operator
    parts = report["links"][0]["partitions"]
    assert len(conflicted(parts)) == 3 and all(p["reason"] == reason for p in conflicted(parts))
    assert {p["state"] for p in parts if p["topic"] == "orders.ok"} == {"in-sync"}
    table = cli("status", str(cfg))
    text = " ".join(table.stdout.split())
    assert table.returncode != 0 and "conflict" in text and "dcmirror link adopt" in text
    # without --truncate nothing is taken that holds records: one sentence, exit 1
    refused = cli("link", "adopt", str(cfg), "--link", "east-to-west", "--topic", "orders.app")
    assert refused.returncode == 1 and "--truncate" in refused.stderr and "Traceback" not in refused.stderr
    # resolve: the application's record is kept aside, the topic becomes a mirror
    out = cli("link", "adopt", str(cfg), "--link", "east-to-west", "--topic", "orders.app", "--truncate",
              "--json")
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    kept = done["kept_topic"]
    assert kept.startswith("__dcmirror.kept.orders.app.") and done["kept_records"] == 1
    def values(bootstrap: str) -> list:
        return sorted((r.partition, r.key, r.value) for r in read_all(bootstrap, "orders.app", 3))

    wait_until(lambda: values(dc.west.bootstrap) == values(dc.east.bootstrap), what="orders.app mirrored")
    if mode == "preserve-offsets":
        assert read_all(dc.west.bootstrap, "orders.app", 3) == read_all(dc.east.bootstrap, "orders.app", 3)
    foreign = read_all(dc.west.bootstrap, kept, 1)
    assert [(r.key, r.value) for r in foreign] == [(k, v) for k, v, _ in clients.make_records("app", 1)]
    wait_until(lambda: not conflicted(m.status()["links"][0]["partitions"]), what="/status clear")
    assert metric(m.metrics(), topic="orders.app", partition="0", state="running") == 1
    rc, report = status_json(cfg)
    assert rc == 0, report


def test_a_partition_stopped_by_the_daemon_shows_error_in_every_view(dc) -> None:
    """A recreated source topic (only the daemon knows): state `error` with its reason in
    /status, metrics and `dcmirror status` (exit 3); the other topic keeps copying."""
    from confluent_kafka.admin import AdminClient

    clients.create_topic(dc.east.bootstrap, "orders.re", 2)
    clients.create_topic(dc.east.bootstrap, "orders.ok", 2)
    clients.produce_confluent(dc.east.bootstrap, "orders.re", clients.make_records("old", 20), "none")
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"])])
    m = dc.mirror(cfg)
    wait_until(lambda: ends(dc.east.bootstrap, "orders.re", 2) == ends(dc.west.bootstrap, "orders.re", 2),
               what="first copy")
    east = AdminClient({"bootstrap.servers": dc.east.bootstrap})
    east.delete_topics(["orders.re"])["orders.re"].result(10)
    wait_until(lambda: "orders.re" not in east.list_topics(timeout=5).topics, what="deleted")
    clients.create_topic(dc.east.bootstrap, "orders.re", 2)
    clients.produce_confluent(dc.east.bootstrap, "orders.re", clients.make_records("new", 50), "none")

    def errored(parts) -> list:
        return [p for p in parts if p["topic"] == "orders.re" and p["state"] == "error"]

    live = wait_until(lambda: errored(m.status()["links"][0]["partitions"]), what="/status error")
    assert "recreated" in live[0]["reason"]
    assert metric(m.metrics(), topic="orders.re", state="error") == 1
    report = wait_until(lambda: (lambda r: r if errored(r[1]["links"][0]["partitions"]) else None)(status_json(cfg)),
                        what="status shows the error")
    rc, doc = report
    assert rc == 4 and "recreated" in errored(doc["links"][0]["partitions"])[0]["reason"]
    clients.produce_confluent(dc.east.bootstrap, "orders.ok", clients.make_records("ok", 30), "lz4")
    wait_until(lambda: ends(dc.east.bootstrap, "orders.ok", 2) == ends(dc.west.bootstrap, "orders.ok", 2),
               what="the other topic keeps copying")
