"""Failover and failback as an operator runs them: clusters, daemon and commands through the
CLI, producers and consumer groups through librdkafka (confluent-kafka)."""

from __future__ import annotations

import json
from pathlib import Path

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import (
    cli,
    cli_json,
    committed,
    consume_group,
    ends,
    last_contact,
    link_state,
    produce,
    records,
)
from tests.mirror.replication.test_mirror_e2e import raw_batches
from tests.processes import wait_until

TOPIC = "orders.eu"
P = 3
LINK = "east-to-west"


def test_unplanned_failover_then_failback_loses_and_duplicates_nothing(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, P)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("a", 300))
    seen_east = consume_group(dc.east.bootstrap, TOPIC, "billing", limit=120)
    assert len(seen_east) == 120
    east_commits = committed(dc.east.bootstrap, TOPIC, "billing", P)
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored")
    wait_until(lambda: committed(dc.west.bootstrap, TOPIC, "billing", P) == east_commits, what="checkpointed")
    translated = cli_json("offsets", "translate", cfg, "--link", LINK, "--group", "billing")
    assert translated["mode"] == "preserve-offsets" and translated["from"] == "source commits"
    assert {r["partition"]: r["target_offset"] for r in translated["rows"]} == {
        p: o for p, o in east_commits.items() if o >= 0}  # identity

    # The link stops copying (the daemon keeps in touch with east), east acknowledges more.
    cli("link", "pause", cfg, "--link", LINK)
    wait_until(lambda: mirror.status()["links"][0]["state"] == "paused", what="daemon paused")
    mirrored_ends = ends(dc.west.bootstrap, TOPIC, P)
    produce(dc.east.bootstrap, TOPIC, records("b", 90))
    east_ends = ends(dc.east.bootstrap, TOPIC, P)
    unmirrored = sum(east_ends[p] - mirrored_ends[p] for p in range(P))
    # a group that read the never-mirrored records on east (its commits never left east)
    assert len(consume_group(dc.east.bootstrap, TOPIC, "late")) == 390
    assert unmirrored == 90
    wait_until(lambda: (c := last_contact(dc.west.bootstrap, LINK)) and c.source_ends[TOPIC] == east_ends,
               what="last contact recorded")
    dc.east.kill9()

    plan = cli("failover", cfg, "--link", LINK, "--force", "--dry-run")
    assert f"recovery point: at least {unmirrored} record(s) not mirrored" in plan.stdout
    assert link_state(dc.west.bootstrap, LINK).state.state == "paused"  # dry run changed nothing

    rep = cli_json("failover", cfg, "--link", LINK, "--force", "--yes")
    assert rep["total_loss"] == unmirrored
    assert {r["partition"]: r["loss"] for r in rep["partitions"]} == {
        p: east_ends[p] - mirrored_ends[p] for p in range(P)}
    assert rep["promoted"] == [TOPIC]
    snapshot = json.loads(Path(rep["snapshot"]).read_text())  # saved before acting
    assert snapshot["plan"]["total_loss"] == unmirrored and snapshot["state"]["state"] == "paused"
    assert {g["group"] for g in rep["groups"]} == {"billing"}
    wait_until(lambda: mirror.status()["links"][0]["state"] == "failed-over", what="daemon obeys failover")
    again = cli_json("failover", cfg, "--link", LINK, "--force", "--yes")
    assert again["already"] and again["total_loss"] == unmirrored

    # The group resumes on west: no duplicate, no gap among mirrored records.
    seen_west = consume_group(dc.west.bootstrap, TOPIC, "billing")
    keys = [(p, o) for p, o, _ in seen_east + seen_west]
    assert len(keys) == len(set(keys)) == sum(mirrored_ends.values())
    # West is primary now.
    produce(dc.west.bootstrap, TOPIC, records("w", 60))
    seen_west += consume_group(dc.west.bootstrap, TOPIC, "billing")
    west_ends = ends(dc.west.bootstrap, TOPIC, P)

    # East comes back; failback keeps its 90 diverged records and makes it identical to west.
    mirror.stop()
    dc.east.start()
    diverged_values = {v for v in (r[1] for r in records("b", 90))}
    back = cli_json("failback", cfg, "--link", LINK, "--yes")
    assert back["total_diverged"] == unmirrored
    name = back["diverged_topics"][TOPIC]
    assert name.startswith(f"__dcmirror.diverged.{TOPIC}.")
    kept = clients.consume_confluent(dc.east.bootstrap, name, P, {p: east_ends[p] - mirrored_ends[p] for p in range(P)})
    assert {c.value for c in kept} == diverged_values
    assert {(c.partition, c.offset) for c in kept} == {
        (p, o) for p in range(P) for o in range(mirrored_ends[p], east_ends[p])}
    assert ends(dc.east.bootstrap, TOPIC, P) == west_ends
    assert raw_batches(dc.east.bootstrap, TOPIC, P) == raw_batches(dc.west.bootstrap, TOPIC, P)
    assert committed(dc.east.bootstrap, TOPIC, "billing", P) == committed(dc.west.bootstrap, TOPIC, "billing", P)
    # "late" is moved back to where west took over, so it misses none of west's records
    assert committed(dc.east.bootstrap, TOPIC, "late", P) == mirrored_ends
    assert link_state(dc.west.bootstrap, LINK).state.state == "normal"
    assert cli_json("failback", cfg, "--link", LINK, "--yes")["already"]

    # East is primary again, the daemon mirrors east -> west, the group resumes on east.
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("c", 30))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored again")
    seen_back = consume_group(dc.east.bootstrap, TOPIC, "billing")
    assert sorted(v for _, _, v in seen_back) == sorted(r[1] for r in records("c", 30))
    everything = [(p, o) for p, o, _ in seen_east + seen_west + seen_back]
    assert len(everything) == len(set(everything)) == sum(ends(dc.east.bootstrap, TOPIC, P).values())
