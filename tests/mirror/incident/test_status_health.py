"""Health you can alert on: `dcmirror status` exit codes and reachability per end, checkpoint
age that stays 0 while a group is in sync, and the daemon's /healthz and /readyz after a
failover. Clusters, daemon and commands run as processes; groups commit through librdkafka."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli, committed, consume_group, ends, produce, records
from tests.processes import wait_until

TOPIC = "orders.h"
LINK = "east-to-west"


def status(cfg, *args: str):
    proc = cli("status", cfg, "--json", *args, check=False, timeout=60)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else None), proc.stderr


def test_status_exit_codes_and_each_end_separately(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, 2)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    produce(dc.east.bootstrap, TOPIC, records("a", 20))

    rc, rep, _ = status(cfg)
    assert rc == 0  # nothing mirrored yet is lag, not an outage
    assert rep["links"][0]["clusters"] == {
        "source": {"cluster": "east", "reachable": True, "error": None},
        "target": {"cluster": "west", "reachable": True, "error": None}}
    assert status(cfg, "--max-lag", "0")[0] == 3
    assert status(cfg, "--max-lag", "20")[0] == 0

    bad = cli("status", cfg, "--link", "east-to-wset", check=False)
    assert bad.returncode == 2 and "east-to-wset" in bad.stderr and LINK in bad.stderr
    assert "Traceback" not in bad.stderr

    dc.west.stop()  # target gone: still shows the source side
    rc, rep, _ = status(cfg)
    assert rc == 4
    ends_ = rep["links"][0]["clusters"]
    assert ends_["source"]["reachable"] and not ends_["target"]["reachable"] and ends_["target"]["error"]
    assert {(p["topic"], p["source_end"]) for p in rep["links"][0]["partitions"]} == {
        (TOPIC, e) for e in ends(dc.east.bootstrap, TOPIC, 2).values()}
    table = cli("status", cfg, check=False)
    assert table.returncode == 4 and "west" in table.stdout and "unreachable" in table.stdout

    dc.west.start()
    dc.east.stop()  # source gone: the target's side (link state) still shown
    rc, rep, _ = status(cfg, "--max-lag", "1000")
    assert rc == 4
    ends_ = rep["links"][0]["clusters"]
    assert not ends_["source"]["reachable"] and ends_["target"]["reachable"]
    assert rep["links"][0]["link_state"] == "normal"


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_checkpoint_age_is_time_since_in_sync_and_healthz_follows_the_link_state(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, 2)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    m = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("a", 40))
    consume_group(dc.east.bootstrap, TOPIC, "billing", limit=40)
    east_commits = committed(dc.east.bootstrap, TOPIC, "billing", 2)
    wait_until(lambda: committed(dc.west.bootstrap, TOPIC, "billing", 2) == east_commits, what="checkpointed")
    assert get(m.metrics_port, "/readyz")[0] == 200
    assert get(m.metrics_port, "/healthz")[0] == 200

    # Idle but in sync: the age is 0 however long ago the checkpoint was written.
    rc, rep, _ = status(cfg)
    (g,) = rep["links"][0]["groups"]
    assert rc == 0 and g["group"] == "billing" and g["in_sync"] is True and g["age_seconds"] == 0

    # Paused, the group moves on east: no longer in sync, the age counts from the last sync.
    cli("link", "pause", cfg, "--link", LINK)
    wait_until(lambda: m.status()["links"][0]["state"] == "paused", what="paused")
    assert get(m.metrics_port, "/healthz")[0] == 200  # paused is what the link state asks
    produce(dc.east.bootstrap, TOPIC, records("b", 10))
    consume_group(dc.east.bootstrap, TOPIC, "billing", limit=10)
    rc, rep, _ = status(cfg)
    (g,) = rep["links"][0]["groups"]
    assert g["in_sync"] is False and g["age_seconds"] > 0 and g["last_in_sync_ms"] > 0

    cli("link", "resume", cfg, "--link", LINK)  # checkpoints catch up: in sync again
    wait_until(lambda: status(cfg)[1]["links"][0]["groups"][0]["in_sync"], what="in sync again")

    cli("failover", cfg, "--link", LINK, "--yes")
    wait_until(lambda: m.status()["links"][0]["state"] == "failed-over", what="daemon obeys failover")
    code, body = get(m.metrics_port, "/healthz")
    assert code == 200 and body["ok"] is True, body  # a failed-over link is healthy
    assert get(m.metrics_port, "/readyz")[0] == 200
