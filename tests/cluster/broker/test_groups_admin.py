"""Group administration through real admin clients: list, describe, delete, offsets.

confluent-kafka's AdminClient covers ListGroups (with the v4+ states filter),
DescribeGroups, DeleteGroups and OffsetCommit/OffsetFetch as tools send them; kafka-python's
admin covers OffsetDelete, which librdkafka's Python binding does not expose.
"""

from __future__ import annotations

import time

from tests.clients import create_topic


def _wait_stable_member(bootstrap: str, topic: str, group: str):
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 300, "partition.assignment.strategy": "range",
    })
    c.subscribe([topic])
    deadline = time.monotonic() + 60
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.1)
    assert len(c.assignment()) == 3
    return c


def test_list_describe_delete_groups_and_offsets(cluster) -> None:
    from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError, NoError
    from kafka.structs import TopicPartition as KTP

    create_topic(cluster.bootstrap, "live", 3)
    create_topic(cluster.bootstrap, "gone", 3)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    active = _wait_stable_member(cluster.bootstrap, "live", "active")
    try:
        # a tool-style commit for a group with no members
        req = ConsumerGroupTopicPartitions("idle", [TopicPartition("gone", p, 100 + p) for p in range(3)])
        admin.alter_consumer_group_offsets([req])["idle"].result(20)
        got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("idle")])["idle"].result(20)
        assert sorted((tp.topic, tp.partition, tp.offset) for tp in got.topic_partitions) == [
            ("gone", p, 100 + p) for p in range(3)
        ]

        listed = admin.list_consumer_groups().result(20)
        states = {g.group_id: g.state for g in listed.valid}
        assert states == {"active": ConsumerGroupState.STABLE, "idle": ConsumerGroupState.EMPTY}
        stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(20)
        assert [g.group_id for g in stable.valid] == ["active"]

        desc = admin.describe_consumer_groups(["active"])["active"].result(20)
        assert desc.state == ConsumerGroupState.STABLE and desc.partition_assignor == "range"
        [member] = desc.members
        assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1, 2]

        # OffsetDelete: refused for a topic the active group consumes, allowed otherwise
        kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        try:
            active.commit(offsets=[TopicPartition("live", 0, 1)], asynchronous=False)
            res = kadmin.delete_group_offsets("idle", [KTP("gone", 0)])
            assert res == {KTP("gone", 0): NoError}
            res = kadmin.delete_group_offsets("active", [KTP("live", 0)])
            assert res == {KTP("live", 0): GroupSubscribedToTopicError}
        finally:
            kadmin.close()
        got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("idle")])["idle"].result(20)
        assert sorted(tp.partition for tp in got.topic_partitions if tp.offset >= 0) == [1, 2]

        futures = admin.delete_consumer_groups(["active", "idle"])
        futures["idle"].result(20)
        try:
            futures["active"].result(20)
            raise AssertionError("deleting a group with members must fail")
        except Exception as exc:  # KafkaException(NON_EMPTY_GROUP)
            assert "NON_EMPTY_GROUP" in str(exc)
    finally:
        active.close()
    listed = admin.list_consumer_groups().result(20)
    assert "idle" not in {g.group_id for g in listed.valid}
    admin.delete_consumer_groups(["active"])["active"].result(20)
