"""`failback --stay`: the new primary stays, the old source becomes its mirror — kept in sync
by the same running daemon without a config change — and a later `failback` switches back.
The daemon runs through the whole story (east killed and restarted under it)."""

from __future__ import annotations

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli, cli_json, ends, last_contact, link_state, produce, records
from tests.mirror.replication.test_mirror_e2e import raw_batches
from tests.processes import wait_until

TOPIC = "orders.stay"
P = 2
LINK = "east-to-west"


def refused(bootstrap: str) -> bool:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "message.send.max.retries": 0})
    errors: list = []
    p.produce(TOPIC, b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    return bool(errors) and errors[0] is not None


def test_failback_stay_reverses_the_running_link_then_switches_back(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, P)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("a", 100))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored")
    assert cli_json("failover", cfg, "--link", LINK, "--dry-run")["kind"] == "planned"  # east is up
    cli("link", "pause", cfg, "--link", LINK)
    wait_until(lambda: mirror.status()["links"][0]["state"] == "paused", what="daemon paused")
    produce(dc.east.bootstrap, TOPIC, records("lost", 20))
    east_ends = ends(dc.east.bootstrap, TOPIC, P)
    wait_until(lambda: (c := last_contact(dc.west.bootstrap, LINK)) and c.source_ends[TOPIC] == east_ends,
               what="last contact")
    dc.east.kill9()
    assert cli_json("failover", cfg, "--link", LINK, "--force", "--yes")["total_loss"] == 20
    produce(dc.west.bootstrap, TOPIC, records("w", 50))

    dc.east.start()
    rep = cli_json("failback", cfg, "--link", LINK, "--stay", "--yes")
    assert rep["total_diverged"] == 20 and rep["state"] == "reversed"
    assert link_state(dc.west.bootstrap, LINK).state.state == "reversed"
    assert ends(dc.east.bootstrap, TOPIC, P) == ends(dc.west.bootstrap, TOPIC, P)
    assert refused(dc.east.bootstrap)  # east is a read-only mirror of west now
    # the running daemon copies west -> east
    produce(dc.west.bootstrap, TOPIC, records("w2", 40))
    wait_until(lambda: ends(dc.east.bootstrap, TOPIC, P) == ends(dc.west.bootstrap, TOPIC, P),
               what="reversed link copies west -> east")
    assert cli_json("failback", cfg, "--link", LINK, "--stay", "--yes")["already"]

    # switch back: east primary again, the daemon copies east -> west
    back = cli_json("failback", cfg, "--link", LINK, "--yes")
    assert back["state"] == "normal" and back["total_diverged"] == 0
    assert raw_batches(dc.east.bootstrap, TOPIC, P) == raw_batches(dc.west.bootstrap, TOPIC, P)
    assert refused(dc.west.bootstrap)
    produce(dc.east.bootstrap, TOPIC, records("e", 30))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P),
               what="east -> west again")
    assert mirror.status()["links"][0]["state"] in ("running", "idle")
