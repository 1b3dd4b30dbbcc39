"""Issue 13's deploy scenario through the real CLI against two real sshd "hosts".

east-1 runs the east cluster's broker, west-1 the west broker and the mirror. In order:
``--dry-run`` changes nothing; ``deploy`` brings both clusters and the mirror up and data
produced by a real client to east arrives on west; a second deploy restarts nothing; an
upgrade (a changed tree) rolls broker by broker while a producer runs, losing nothing;
``rollback`` returns every host to the first release; ``status`` reports it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from tests.clients import consume_confluent, create_topic, end_offsets
from tests.deploy.conftest import Site
from tests.deploy.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def dcmirror(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(f"dcmirror {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def pids(site: Site) -> dict[str, str]:
    out = {}
    for host in ("east-1", "west-1"):
        for pidfile in sorted((site.base(host) / "run").glob("*.pid")):
            out[f"{host}/{pidfile.stem}"] = pidfile.read_text().strip()
    return out


def snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")) if root.exists() else []


def produce_all(bootstrap: str, topic: str, n: int, stop: threading.Event | None = None) -> list[bytes]:
    """Idempotent acks=all producer; returns the values the broker acknowledged."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 120000, "reconnect.backoff.max.ms": 500})
    acked: list[bytes] = []
    errors: list = []

    def done(err, msg) -> None:
        if err is not None:
            errors.append(err)
        else:
            acked.append(msg.value())

    i = 0
    while i < n or (stop is not None and not stop.is_set()):
        p.produce(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode(), on_delivery=done)
        p.poll(0.005 if stop is not None else 0)
        i += 1
    assert p.flush(180) == 0
    assert not errors, errors
    return acked


def count(bootstrap: str, topic: str, partitions: int) -> int:
    """Records in the topic; 0 while it (or a partition) does not exist yet."""
    from confluent_kafka import KafkaException

    try:
        return sum(end_offsets(bootstrap, topic, partitions).values())
    except KafkaException:
        return 0


def values_on(bootstrap: str, topic: str, partitions: int, want: int) -> list[bytes]:
    wait_until(lambda: count(bootstrap, topic, partitions) >= want, 90, f"{want} records in {topic} on {bootstrap}")
    end = end_offsets(bootstrap, topic, partitions)
    return [m.value for m in consume_confluent(bootstrap, topic, partitions, end)]


def changed_tree(dst: Path) -> Path:
    """A copy of this tree with one changed file: a new release hash, as an upgrade has."""
    from deploy.release import source_files

    for rel in source_files(ROOT):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    (dst / "deploy" / "__init__.py").write_text('"""Deployment over SSH (upgrade under test)."""\n')
    return dst


def test_deploy_dry_run_deploy_noop_upgrade_rollback(site: Site, wheelhouse: Path, tmp_path: Path) -> None:
    inv, wh = str(site.inventory), str(wheelhouse)
    hosts = site.dir / "hosts"

    # 1. --dry-run: the plan names both hosts, nothing is written to either.
    before = snapshot(hosts)
    res = dcmirror("deploy", inv, "--dry-run", "--wheelhouse", wh)
    assert "host east-1 (dc east): release (none) -> 0.1.0-" in res.stdout
    assert "broker-east: start (new)" in res.stdout and "mirror: start (new)" in res.stdout
    plan = json.loads(dcmirror("deploy", inv, "--dry-run", "--json", "--wheelhouse", wh).stdout)
    assert [h["host"] for h in plan["hosts"]] == ["east-1", "west-1"] and all(h["install"] for h in plan["hosts"])
    assert snapshot(hosts) == before

    # 2. deploy: both clusters and the mirror run; a real client's records reach west.
    res = dcmirror("deploy", inv, "--wheelhouse", wh)
    assert "east-1: broker-east started, healthy" in res.stderr, res.stderr
    first = (site.base("east-1") / "current").resolve().name
    assert (site.base("west-1") / "current").resolve().name == first
    create_topic(site.bootstrap("east"), "orders.eu", 2)
    sent = produce_all(site.bootstrap("east"), "orders.eu", 200)
    assert sorted(values_on(site.bootstrap("west"), "orders.eu", 2, 200)) == sorted(sent)

    # 3. the same deploy again: nothing planned, no process restarted.
    running = pids(site)
    assert set(running) == {"east-1/broker-east", "west-1/broker-west", "west-1/mirror"}
    res = dcmirror("deploy", inv, "--wheelhouse", wh)
    assert "no change" in res.stdout and "nothing to change" in res.stderr
    assert pids(site) == running

    # 4. upgrade: a changed tree rolls east-1 then west-1 while a producer runs; nothing lost.
    stop = threading.Event()
    result: dict = {}
    producer = threading.Thread(target=lambda: result.update(acked=produce_all(
        site.bootstrap("east"), "orders.eu", 0, stop)), daemon=True)
    producer.start()
    wait_until(lambda: count(site.bootstrap("east"), "orders.eu", 2) > 400, 60,
               "the producer to be writing")
    res = dcmirror("deploy", inv, "--wheelhouse", wh, "--source", str(changed_tree(tmp_path / "tree-v2")))
    stop.set()
    producer.join(240)
    assert not producer.is_alive()
    second = (site.base("east-1") / "current").resolve().name
    assert second != first and (site.base("west-1") / "current").resolve().name == second
    lines = res.stderr.splitlines()
    order = [i for i, line in enumerate(lines) if "restarted, healthy" in line]
    assert [lines[i].split(":")[0] for i in order][:2] == ["host east-1", "host west-1"], res.stderr
    assert "broker-west" in lines[order[1]]  # the west broker only after east was healthy
    new = pids(site)
    assert all(new[k] != running[k] for k in running)
    acked = result["acked"]
    total = 200 + len(acked)
    on_east = values_on(site.bootstrap("east"), "orders.eu", 2, total)
    assert sorted(on_east) == sorted(sent + acked)  # every acknowledged record, once
    assert sorted(values_on(site.bootstrap("west"), "orders.eu", 2, total)) == sorted(on_east)

    # 5. rollback: every host back on the first release, services restarted on it.
    res = dcmirror("deploy", "rollback", inv)
    assert (site.base("east-1") / "current").resolve().name == first
    assert (site.base("west-1") / "current").resolve().name == first
    status = json.loads(dcmirror("deploy", "status", inv, "--json").stdout)
    for h in status["hosts"]:
        assert h["release"] == first and h["previous"] == second
        assert all(s["running"] and s["release"] == first for s in h["services"])
        assert all(s.get("healthy", True) for s in h["services"])
    text = dcmirror("deploy", "status", inv).stdout
    assert f"host east-1 (dc east): release {first}" in text and "broker-east: running" in text
