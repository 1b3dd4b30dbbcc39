"""The forced failover's numbers are true bounds, checked against what real clients see.

A group reads on east after its last checkpoint (the link is paused), east acknowledges
records the mirror saw at its last contact and more after it, then dies. The report's loss
is "at least" the records known at the last contact (the truth is more), and the group's
re-reads are between the known number (0: offsets are preserved) and the "at most" bound;
a librdkafka consumer on west re-reads a number in between. `failback --dry-run` then
shows the true divergence and changes nothing."""

from __future__ import annotations

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
from tests.processes import wait_until

TOPIC = "orders.bounds"
P = 2
LINK = "east-to-west"


def test_forced_failover_reports_bounds_that_hold(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, P)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("a", 100))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored")
    seen_east = consume_group(dc.east.bootstrap, TOPIC, "g", limit=40)
    on_east = committed(dc.east.bootstrap, TOPIC, "g", P)
    wait_until(lambda: committed(dc.west.bootstrap, TOPIC, "g", P) == on_east, what="checkpointed")

    cli("link", "pause", cfg, "--link", LINK)
    wait_until(lambda: mirror.status()["links"][0]["state"] == "paused", what="daemon paused")
    seen_east += consume_group(dc.east.bootstrap, TOPIC, "g", limit=30)  # never checkpointed
    produce(dc.east.bootstrap, TOPIC, records("b", 20))
    known_ends = ends(dc.east.bootstrap, TOPIC, P)
    wait_until(lambda: (c := last_contact(dc.west.bootstrap, LINK)) and c.source_ends[TOPIC] == known_ends,
               what="last contact")
    mirror.stop()
    produce(dc.east.bootstrap, TOPIC, records("c", 5))  # acknowledged after the last contact
    east_ends = ends(dc.east.bootstrap, TOPIC, P)
    west_ends = ends(dc.west.bootstrap, TOPIC, P)
    true_loss = sum(east_ends[p] - west_ends[p] for p in range(P))
    assert true_loss == 25
    dc.east.kill9()

    rep = cli_json("failover", cfg, "--link", LINK, "--force", "--yes")
    assert rep["loss_bound"] == "at least" and rep["total_loss"] == 20 <= true_loss
    (g,) = rep["groups"]
    seen_west = consume_group(dc.west.bootstrap, TOPIC, "g")
    reread = len({(p, o) for p, o, _ in seen_east} & {(p, o) for p, o, _ in seen_west})
    assert reread == 30
    assert g["max_duplicates"] <= reread <= g["may_reread_at_most"]
    assert g["may_reread_at_most"] == sum(west_ends.values()) - sum(o for o in on_east.values() if o >= 0)

    dc.east.start()
    plan = cli_json("failback", cfg, "--link", LINK, "--dry-run")
    assert plan["dry_run"] and plan["total_diverged"] == true_loss
    assert [s["step"] for s in plan["plan"]][:6] == [
        "record failing-back", "prepare topics", "mark mirrors", "keep diverged", "truncate", "catch up"]
    assert link_state(dc.west.bootstrap, LINK).state.state == "failed-over"
    assert ends(dc.east.bootstrap, TOPIC, P) == east_ends and not plan["diverged_topics"] == {}
    text = cli("failback", cfg, "--link", LINK, "--dry-run").stdout
    assert "diverged records to keep: 25" in text and "steps it would run" in text
    assert link_state(dc.west.bootstrap, LINK).state.state == "failed-over"
