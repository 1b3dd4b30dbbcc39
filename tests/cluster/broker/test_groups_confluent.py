"""Consumer groups with confluent-kafka (librdkafka) against a cluster started by the CLI.

Two members share a 6-partition topic, rebalance when one leaves, commit, and a later
member resumes from the committed offsets. Run for the eager (range) and the cooperative
(cooperative-sticky, which needs the follow-up rebalance) assignors.
"""

from __future__ import annotations

import time

import pytest

from tests.clients import create_topic

PARTITIONS = 6


def _produce(bootstrap: str, topic: str, per_partition: int, tag: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(PARTITIONS):
        for i in range(per_partition):
            p.produce(topic, value=f"{tag}-{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


def _consumer(bootstrap: str, group: str, strategy: str):
    from confluent_kafka import Consumer

    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 300,
        "partition.assignment.strategy": strategy,
    })


def _poll_until(consumers, done, seconds: float = 60.0, seen: dict | None = None) -> None:
    """Poll every consumer in turn (rebalances need all of them polling) until done()."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for c in consumers:
            m = c.poll(0.05)
            if m is not None and m.error() is None and seen is not None:
                seen.setdefault(c, []).append(m)
        if done():
            return
    raise AssertionError("condition not reached while polling")


def _parts(c) -> set[int]:
    return {tp.partition for tp in c.assignment()}


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_two_members_share_rebalance_commit_and_resume(cluster, strategy: str) -> None:
    from confluent_kafka import TopicPartition

    topic, group = "events", f"g-{strategy}"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    _produce(cluster.bootstrap, topic, 5, "old")

    c1 = _consumer(cluster.bootstrap, group, strategy)
    c2 = _consumer(cluster.bootstrap, group, strategy)
    c1.subscribe([topic])
    c2.subscribe([topic])
    seen: dict = {}
    _poll_until(
        [c1, c2],
        lambda: _parts(c1) and _parts(c2) and not (_parts(c1) & _parts(c2))
        and (_parts(c1) | _parts(c2)) == set(range(PARTITIONS)),
        seen=seen,
    )
    def values() -> set[bytes]:
        return {m.value() for ms in seen.values() for m in ms}

    def caught_up() -> bool:  # every owner has read its partitions to the end
        return all(tp.offset == 5 for c in (c1, c2) for tp in c.position(c.assignment()))

    _poll_until([c1, c2], lambda: len(values()) >= 5 * PARTITIONS and caught_up(), seen=seen)
    # at-least-once: a partition moved before any commit is read again by its new owner
    assert values() == {f"old-{p}-{i}".encode() for p in range(PARTITIONS) for i in range(5)}
    for c in (c1, c2):
        c.commit(asynchronous=False)

    c2.close()  # LeaveGroup: c1 takes over every partition
    _poll_until([c1], lambda: _parts(c1) == set(range(PARTITIONS)))
    committed = c1.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    assert [tp.offset for tp in committed] == [5] * PARTITIONS
    c1.close()

    _produce(cluster.bootstrap, topic, 1, "new")
    c3 = _consumer(cluster.bootstrap, group, strategy)
    c3.subscribe([topic])
    seen = {}
    _poll_until([c3], lambda: len(seen.get(c3, [])) >= PARTITIONS, seen=seen)
    assert sorted(m.value() for m in seen[c3]) == sorted(f"new-{p}-0".encode() for p in range(PARTITIONS))
    assert all(m.offset() == 5 for m in seen[c3])
    c3.close()


def test_committed_offsets_survive_kill9(cluster) -> None:
    from confluent_kafka import TopicPartition

    topic = "durable"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    c = _consumer(cluster.bootstrap, "keeper", "range")
    offsets = [TopicPartition(topic, p, 10 * p + 1, f"meta-{p}") for p in range(PARTITIONS)]
    c.commit(offsets=offsets, asynchronous=False)  # a "simple" commit: no group membership
    c.close()
    cluster.kill9()
    cluster.start()
    c = _consumer(cluster.bootstrap, "keeper", "range")
    got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)
    assert [(tp.offset, tp.metadata) for tp in got] == [(10 * p + 1, f"meta-{p}") for p in range(PARTITIONS)]
    c.close()


def test_static_member_restart_does_not_rebalance_the_others(cluster) -> None:
    from confluent_kafka import Consumer

    topic = "static"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    revoked: dict[str, int] = {"s1": 0, "s2": 0}

    def member(name: str) -> Consumer:
        c = Consumer({
            "bootstrap.servers": cluster.bootstrap, "group.id": "statics", "group.instance.id": name,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
            "partition.assignment.strategy": "range",
        })
        c.subscribe([topic], on_revoke=lambda _c, _p, n=name: revoked.__setitem__(n, revoked[n] + 1))
        return c

    s1, s2 = member("s1"), member("s2")
    _poll_until([s1, s2], lambda: len(_parts(s1)) == 3 and len(_parts(s2)) == 3)
    before = _parts(s2)
    s1_revocations = revoked["s1"]
    s2.close()  # a static member does not send LeaveGroup: its slot waits for it
    s2 = member("s2")
    _poll_until([s1, s2], lambda: len(_parts(s2)) == 3)
    assert _parts(s2) == before
    for _ in range(20):
        s1.poll(0.05)
    assert revoked["s1"] == s1_revocations and len(_parts(s1)) == 3
    s1.close()
    s2.close()
