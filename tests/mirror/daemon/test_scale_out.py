"""Scale-out as a user runs it: several `dcmirror mirror` processes for one config share
each link's partitions through the group `dcmirror.<link>` on the target cluster, and the
survivors take over a dead process's share."""

from __future__ import annotations

import threading
from collections import Counter

from tests import clients
from tests.mirror.conftest import link
from tests.mirror.replication.test_mirror_e2e import ends, read_all
from tests.processes import MirrorProcess, wait_until

PARTITIONS = 8
TOPIC = "orders.scale"
#: membership.MembershipConfig.session_timeout_ms, plus room for the rebalance and a sync
TAKEOVER_S = 8 + 22


def owned(m: MirrorProcess) -> set[tuple[str, int]]:
    return {(p["topic"], p["partition"]) for p in m.status()["links"][0]["partitions"]}


def split_between(mirrors: list[MirrorProcess], topic: str = TOPIC, n: int = PARTITIONS) -> bool:
    """Every partition is copied by exactly one of `mirrors`, and each copies some."""
    shares = [owned(m) for m in mirrors]
    everything = {(topic, p) for p in range(n)}
    return (all(shares) and sum(len(s) for s in shares) == n
            and set().union(*shares) == everything)


class Producer:
    """Keeps producing to the source until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.stop = threading.Event()
        self.batches = 0

        def run() -> None:
            while not self.stop.is_set():
                clients.produce_confluent(bootstrap, topic, clients.make_records(f"s{self.batches}", 40), "lz4")
                self.batches += 1

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()


def test_two_processes_split_the_link_and_survive_a_kill9(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, PARTITIONS)
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"])])
    producer = Producer(dc.east.bootstrap, TOPIC)
    try:
        a = dc.mirror(cfg)
        b = dc.mirror(cfg)
        wait_until(lambda: split_between([a, b]), what="a and b each copy a disjoint half")
        assert {len(owned(a)), len(owned(b))} == {PARTITIONS // 2}
        wait_until(lambda: all(sum(p["records"] for p in m.status()["links"][0]["partitions"]) > 0
                               for m in (a, b)), what="both copy records")
        groups = {m.status()["links"][0]["membership"]["group"] for m in (a, b)}
        assert groups == {"dcmirror.east-to-west"}
        a.kill9()
        wait_until(lambda: owned(b) == {(TOPIC, p) for p in range(PARTITIONS)}, timeout=TAKEOVER_S,
                   what="b took over a's share")
        before = sum(ends(dc.west.bootstrap, TOPIC, PARTITIONS).values())
        wait_until(lambda: sum(ends(dc.west.bootstrap, TOPIC, PARTITIONS).values()) > before,
                   what="b keeps copying")
    finally:
        producer.finish()
    wait_until(lambda: ends(dc.east.bootstrap, TOPIC, PARTITIONS) == ends(dc.west.bootstrap, TOPIC, PARTITIONS),
               what="west caught up")
    east = read_all(dc.east.bootstrap, TOPIC, PARTITIONS)
    west = read_all(dc.west.bootstrap, TOPIC, PARTITIONS)
    assert len(east) == producer.batches * 40
    assert west == east  # offsets included: nothing lost, nothing duplicated


def test_translation_mode_hands_partitions_over_without_duplicates(dc) -> None:
    """Translation mode writes with new offsets, so two processes copying one partition at
    once would duplicate records: a joining and a leaving process must revoke first."""
    clients.create_topic(dc.east.bootstrap, TOPIC, PARTITIONS)
    cfg = dc.config([link("east-to-west", "east", "west", ["orders.*"], mode="translate")])
    producer = Producer(dc.east.bootstrap, TOPIC)
    try:
        a = dc.mirror(cfg)
        wait_until(lambda: len(owned(a)) == PARTITIONS, what="a alone copies everything")
        b = dc.mirror(cfg)
        wait_until(lambda: split_between([a, b]), what="a handed half to b")
        c = dc.mirror(cfg)
        wait_until(lambda: split_between([a, b, c]), what="three-way split")
        assert b.stop() == 0  # clean stop: LeaveGroup, the others take over at once
        wait_until(lambda: split_between([a, c]), what="a and c took over b's share")
    finally:
        producer.finish()

    def caught_up() -> bool:
        return sum(ends(dc.west.bootstrap, TOPIC, PARTITIONS).values()) >= producer.batches * 40

    wait_until(caught_up, what="west caught up")
    east = read_all(dc.east.bootstrap, TOPIC, PARTITIONS)
    west = read_all(dc.west.bootstrap, TOPIC, PARTITIONS)
    assert sum(ends(dc.west.bootstrap, TOPIC, PARTITIONS).values()) == len(east)
    seen = Counter((r.partition, r.key, r.value) for r in west)
    assert [k for k, n in seen.items() if n > 1] == []  # nothing duplicated
    assert set(seen) == {(r.partition, r.key, r.value) for r in east}  # nothing lost
    for p in range(PARTITIONS):  # and per partition in source order
        assert [r.value for r in west if r.partition == p] == [r.value for r in east if r.partition == p]
