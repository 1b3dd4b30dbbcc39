"""A planned switchover under continuous production: zero loss, zero duplicates.

A producer writes numbered records to east without pause; `dcmirror failover` (no
--force) fences east, drains, checkpoints and promotes west; the producer's refused
batches (fenced, never appended) are re-sent to west once it is promoted. Every
acknowledged record must be on west exactly once, and a group that consumed part of the
topic on east resumes on west reading nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli, cli_json, consume_group, ends, link_state, produce, records
from tests.processes import wait_until

TOPIC = "orders.live"
P = 4
LINK = "east-to-west"


class SwitchingProducer(threading.Thread):
    """Produces ids 0, 1, 2... to east; on a refused batch switches to west and re-sends the
    refused ids there until accepted (west refuses them too until it is promoted)."""

    def __init__(self, east: str, west: str) -> None:
        super().__init__(daemon=True)
        self.boot = {"east": east, "west": west}
        self.where = "east"
        self.acked: dict[int, str] = {}
        self.refused: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _producer(self, where: str):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.boot[where], "linger.ms": 5, "acks": "all",
                         "enable.idempotence": False, "message.send.max.retries": 0,
                         "partitioner": "murmur2_random"})

    def run(self) -> None:
        producer, current = self._producer("east"), "east"
        n = 0

        def report(err, msg, i: int, where: str) -> None:
            with self.lock:
                if err is None:
                    self.acked[i] = where
                else:
                    self.errors.append(str(err))
                    self.refused.append(i)
                    self.where = "west"

        while not self.stop.is_set():
            with self.lock:
                where = self.where
                retry, self.refused = sorted(self.refused), []
            if where == "west" and current == "east":
                producer.flush(10)
                producer, current = self._producer("west"), "west"
                with self.lock:  # refused while we flushed
                    retry, self.refused = sorted(retry + self.refused), []
            for i in retry:
                producer.produce(TOPIC, key=f"k{i % 13}".encode(), value=f"id-{i}".encode(),
                                 on_delivery=lambda e, m, i=i, w=where: report(e, m, i, w))
            if retry:
                producer.flush(10)
                time.sleep(0.1)
            producer.produce(TOPIC, key=f"k{n % 13}".encode(), value=f"id-{n}".encode(),
                             on_delivery=lambda e, m, i=n, w=where: report(e, m, i, w))
            n += 1
            producer.poll(0)
            time.sleep(0.002)
        producer.flush(30)
        # anything refused at the very end goes to west until accepted
        for _ in range(50):
            with self.lock:
                retry, self.refused = sorted(self.refused), []
            if not retry:
                break
            p = self._producer("west")
            for i in retry:
                p.produce(TOPIC, key=f"k{i % 13}".encode(), value=f"id-{i}".encode(),
                          on_delivery=lambda e, m, i=i: report(e, m, i, "west"))
            p.flush(10)
            time.sleep(0.2)


def test_planned_switchover_under_production_loses_and_duplicates_nothing(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, P)
    cfg = dc.config([link(LINK, "east", "west", ["orders.*"])])
    mirror = dc.mirror(cfg)
    produce(dc.east.bootstrap, TOPIC, records("seed", 200))
    seen_east = consume_group(dc.east.bootstrap, TOPIC, "audit", limit=150)
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, P) == ends(dc.east.bootstrap, TOPIC, P), what="mirrored")

    producer = SwitchingProducer(dc.east.bootstrap, dc.west.bootstrap)
    producer.start()
    wait_until(lambda: len(producer.acked) > 300, what="production running")
    dry = cli_json("failover", cfg, "--link", LINK, "--dry-run")
    assert dry["kind"] == "planned" and dry["dry_run"] and link_state(dc.west.bootstrap, LINK).state.state == "normal"
    rep = cli_json("failover", cfg, "--link", LINK, "--yes")
    assert rep["kind"] == "planned" and rep["total_loss"] == 0
    assert rep["fenced"] == [TOPIC] and rep["promoted"] == [TOPIC]
    wait_until(lambda: any(w == "west" for w in list(producer.acked.values())), what="producer moved to west")
    wait_until(lambda: sum(1 for w in list(producer.acked.values()) if w == "west") > 200, what="west taking writes")
    producer.stop.set()
    producer.join(60)
    assert producer.errors, "the fence never refused a batch"
    wait_until(lambda: mirror.status()["links"][0]["state"] == "failed-over", what="daemon obeys failover")

    west = clients.consume_confluent(dc.west.bootstrap, TOPIC, P, ends(dc.west.bootstrap, TOPIC, P))
    ids = Counter(int(c.value.decode().split("-")[1]) for c in west if c.value.startswith(b"id-"))
    assert max(ids.values()) == 1, "a record was written twice"
    assert set(ids) == set(producer.acked), "an acknowledged record is missing (or an unacknowledged one is there)"
    east = clients.consume_confluent(dc.east.bootstrap, TOPIC, P, ends(dc.east.bootstrap, TOPIC, P))
    west_at = {(c.partition, c.offset): c for c in west}
    assert all(west_at[(c.partition, c.offset)] == c for c in east), "west differs from east below the switch"

    seen_west = consume_group(dc.west.bootstrap, TOPIC, "audit")
    keys = [(p, o) for p, o, _ in seen_east + seen_west]
    assert len(keys) == len(set(keys)) == len(west)
    assert cli_json("failover", cfg, "--link", LINK, "--yes")["already"]
    cli("status", cfg)  # still answers with east fenced
