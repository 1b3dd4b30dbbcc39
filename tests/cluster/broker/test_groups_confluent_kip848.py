"""confluent-kafka (librdkafka >= 2.12) with `group.protocol=consumer` (KIP-848) against the CLI's cluster.

Two members share a topic subscribed by regex (resolved by the broker), the server-side
`range` or `uniform` assignor splits it, both read everything, commit with their member
epochs, one leaves and the other takes every partition, the cluster is killed with
SIGKILL and restarted (the group comes back with its epoch and committed offsets), and a
later member resumes from the committed offsets. ListGroups reports the group's type.
"""

from __future__ import annotations

import time

import pytest

from tests.clients import create_topic

PARTITIONS = 6
SHORT_SESSIONS = ("--group-consumer-session-timeout-ms", "6000", "--group-consumer-heartbeat-interval-ms", "500")


def _produce(bootstrap: str, topic: str, per_partition: int, tag: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(PARTITIONS):
        for i in range(per_partition):
            p.produce(topic, value=f"{tag}-{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


def _consumer(bootstrap: str, group: str, assignor: str):
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "group.remote.assignor": assignor, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})


def _poll_until(consumers, done, seconds: float = 60.0, seen: dict | None = None) -> None:
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


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_kip848_members_share_commit_leave_survive_kill9_and_resume(cluster_factory, assignor: str) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    cluster = cluster_factory("east", *SHORT_SESSIONS)
    topic, group = "events848", f"g848-{assignor}"
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    _produce(cluster.bootstrap, topic, 5, "old")
    c1, c2 = _consumer(cluster.bootstrap, group, assignor), _consumer(cluster.bootstrap, group, assignor)
    for c in (c1, c2):
        c.subscribe(["^events8.*"])  # a regex: the broker resolves it (subscribed_topic_regex)
    seen: dict = {}
    _poll_until([c1, c2], lambda: len(_parts(c1)) == len(_parts(c2)) == 3 and not _parts(c1) & _parts(c2),
                seen=seen)

    def values() -> set[bytes]:
        return {m.value() for ms in seen.values() for m in ms}

    def caught_up() -> bool:
        return all(tp.offset == 5 for c in (c1, c2) for tp in c.position(c.assignment()))

    _poll_until([c1, c2], lambda: len(values()) >= 5 * PARTITIONS and caught_up(), seen=seen)
    assert values() == {f"old-{p}-{i}".encode() for p in range(PARTITIONS) for i in range(5)}
    if assignor == "range":
        assert sorted([sorted(_parts(c1)), sorted(_parts(c2))]) == [[0, 1, 2], [3, 4, 5]]
    for c in (c1, c2):
        c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    listed = admin.list_consumer_groups().result()
    kinds = {g.group_id: g.type.name for g in listed.valid}
    assert kinds[group] == "CONSUMER"

    c2.close()  # leaves with epoch -1: c1 takes over every partition
    _poll_until([c1], lambda: _parts(c1) == set(range(PARTITIONS)))
    committed = c1.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    assert [tp.offset for tp in committed] == [5] * PARTITIONS

    cluster.kill9()
    cluster.start()
    _poll_until([c1], lambda: c1.committed([TopicPartition(topic, 0)], timeout=5)[0].offset == 5)
    c1.close()

    _produce(cluster.bootstrap, topic, 1, "new")
    c3 = _consumer(cluster.bootstrap, group, assignor)
    c3.subscribe([topic])
    seen = {}
    _poll_until([c3], lambda: len(seen.get(c3, [])) >= PARTITIONS, seen=seen)
    assert sorted(m.value() for m in seen[c3]) == sorted(f"new-{p}-0".encode() for p in range(PARTITIONS))
    assert all(m.offset() == 5 for m in seen[c3])
    c3.close()
