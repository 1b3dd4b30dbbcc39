"""A planned failover of a paused link, as a script runs it (no terminal).

The pause stops the daemon's copying, not the failover's own catch-up: the records the
pause held back are copied before promotion (this used to time out after 120 s: the drain's
copier cancelled every fetch as "reassigned"). Without --yes nothing happens (exit 2);
`--dry-run` prints the steps; each step is printed as it runs; `history` lists it all."""

from __future__ import annotations

import json

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli, cli_json, ends, link_state, produce, records
from tests.processes import wait_until

TOPIC = "orders.paused"
P = 2
LINK = "east-to-west"
STEPS = ["record failing-over", "fence", "drain", "daemon ack", "checkpoint+promote", "record failed-over"]


def test_planned_failover_of_a_paused_link_drains_what_the_pause_held_back(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, P)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("a", 50))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored")
    cli("link", "pause", cfg, "--link", LINK)
    wait_until(lambda: mirror.status()["links"][0]["state"] == "paused", what="daemon paused")
    produce(dc.east.bootstrap, TOPIC, records("b", 30))
    held_back = sum(ends(dc.east.bootstrap, TOPIC, P).values()) - sum(ends(dc.west.bootstrap, TOPIC, P).values())
    assert held_back == 30

    for extra in ([], ["--force"]):  # no terminal, no --yes: refused, whatever else is asked
        refused = cli("failover", cfg, "--link", LINK, *extra, check=False)
        assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert link_state(dc.west.bootstrap, LINK).state.state == "paused"

    dry = cli("failover", cfg, "--link", LINK, "--dry-run")
    assert "expected loss: 0 (30 lagging record(s) are copied after the fence" in dry.stdout
    assert all(name in dry.stdout for name in STEPS) and "steps it would run" in dry.stdout
    assert link_state(dc.west.bootstrap, LINK).state.state == "paused"

    done = cli("failover", cfg, "--link", LINK, "--yes", "--json", timeout=100)
    rep = json.loads(done.stdout)
    assert rep["total_loss"] == 0 and rep["loss_bound"] == "exact" and rep["promoted"] == [TOPIC]
    assert [s["step"] for s in rep["plan"]] == STEPS and list(rep["steps"]) == ["plan", *STEPS]
    assert "[3/6] drain" in done.stderr and "30 record(s) to copy (held back by the pause)" in done.stderr
    assert ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P)
    assert rep["steps"]["drain"] < 30

    history = cli_json("history", cfg, "--link", LINK)
    assert [h["state"] for h in history] == ["paused", "failing-over", "failed-over"]
    assert history[-1]["detail"] == "loss exact 0" and history[0]["by"] == "dcmirror link pause"
    assert "failed-over" in cli("history", cfg).stdout
