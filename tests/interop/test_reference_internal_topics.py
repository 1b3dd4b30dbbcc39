"""Internal topics compared with Apache Kafka 4.3.1: Metadata, Produce, CreateTopics, CreatePartitions.

Both brokers get the same requests after a FindCoordinator for a group and for a
transactional id (Kafka creates `__consumer_offsets` and `__transaction_state` then). The
session's Kafka is shared, so nothing here deletes or grows them there; Kafka's answers
to a validate-only grow and to DeleteTopics (it accepts both) are the documented
difference, asserted on both sides so a change in Kafka shows up.
"""
from __future__ import annotations

from typing import Any

import pytest

from cluster.client import KafkaClient, KafkaProtocolError, NewTopic
from cluster.wire.batch_builder import build_batch
from kio.schema.errors import ErrorCode
from peers.kafka_broker import KafkaBroker
from tests.interop.settling import create_ready, poll
from tests.interop.test_reference_kafka import code, on_both, same
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop
INTERNAL = ["__consumer_offsets", "__transaction_state"]
OFFSETS_PARTITIONS = {"dcmirror": 50, "kafka": 10}  # Kafka's default / peers/kafka_broker.py's setting


async def _metadata(client: KafkaClient, names: list[str] | None) -> dict[str, Any]:
    conn = await client.any_connection()
    resp = await conn.send(conn.build(3, {
        "topics": None if names is None else [{"name": n} for n in names], "allow_auto_topic_creation": False,
        "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False}))
    return {t.name: t for t in resp.topics}


async def _find_coordinators(client: KafkaClient) -> list[int]:
    conn = await client.any_connection()

    async def once(key_type: int) -> int:
        r = await conn.send(conn.build(10, {"key_type": key_type, "coordinator_keys": [f"ref-{key_type}"]}))
        return int(r.coordinators[0].error_code)

    return [await poll(lambda: once(kt), lambda c: c == 0, "FindCoordinator", raise_on_timeout=False)
            for kt in (0, 1)]


async def test_internal_topics_in_metadata(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                           topic_name: str) -> None:
    async def probe(client: KafkaClient, topic: str) -> dict[str, Any]:
        out: dict[str, Any] = {"find-coordinator": await _find_coordinators(client)}
        # Kafka lists the new internal partitions a moment before each has its leader
        # (LEADER_NOT_AVAILABLE meanwhile): wait for that, as a client would retry.
        named = await poll(lambda: _metadata(client, INTERNAL),
                           lambda ts: len(ts) == 2 and all(p.error_code == 0 for t in ts.values() for p in t.partitions),
                           "internal topics' partitions led", raise_on_timeout=False)
        out["named"] = {n: (int(t.error_code), t.is_internal, t.topic_id.int != 0,
                            sorted({(int(p.error_code), len(p.replica_nodes), len(p.isr_nodes)) for p in t.partitions}))
                        for n, t in named.items()}
        out["partitions"] = {n: len(t.partitions) for n, t in named.items()}
        listed = await _metadata(client, None)
        out["listed"] = {n: listed[n].is_internal for n in INTERNAL if n in listed}
        # the test's own topic (Kafka's broker is shared by the module: other topics vary)
        await create_ready(client, [NewTopic(topic, 1, 1, {})])
        user = await _metadata(client, [topic])
        out["user-topic-internal"] = [t.is_internal for t in user.values()]
        return out

    answers = await on_both(cluster, kafka_broker, topic_name, probe)
    for side, answer in answers.items():
        assert answer.pop("partitions") == {"__consumer_offsets": OFFSETS_PARTITIONS[side],
                                            "__transaction_state": 50}, side
    answer = same(answers)
    assert answer["listed"] == {"__consumer_offsets": True, "__transaction_state": True}
    assert answer["named"]["__consumer_offsets"][:2] == (0, True)


async def test_internal_topics_refusals(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                        topic_name: str) -> None:
    async def probe(client: KafkaClient, topic: str) -> dict[str, Any]:
        await _find_coordinators(client)
        out: dict[str, Any] = {}
        batch = build_batch([(b"k", b"v", [], 0)])
        for name in INTERNAL:
            try:
                out[f"produce {name}"] = (await client.produce(name, 0, batch, acks=1)).base_offset
            except KafkaProtocolError as exc:
                out[f"produce {name}"] = exc.error_code
            out[f"create {name}"] = code((await client.create_topics([NewTopic(name, 1)], raise_errors=False))[name])
            out[f"shrink {name}"] = code((await client.create_partitions({name: 3}, raise_errors=False))[name])
        return out

    answer = same(await on_both(cluster, kafka_broker, topic_name, probe))
    assert answer["produce __consumer_offsets"] == ErrorCode.invalid_topic_exception
    assert answer["create __transaction_state"] == ErrorCode.topic_already_exists
    assert answer["shrink __consumer_offsets"] == ErrorCode.invalid_partitions
    # The documented difference: Kafka would grow (validate-only here: it changes nothing).
    async with KafkaClient(kafka_broker.bootstrap) as kafka, KafkaClient(cluster.bootstrap) as ours:
        grow = {"__consumer_offsets": 60}
        assert code((await kafka.create_partitions(grow, validate_only=True, raise_errors=False))[
            "__consumer_offsets"]) == 0
        assert code((await ours.create_partitions(grow, validate_only=True, raise_errors=False))[
            "__consumer_offsets"]) == ErrorCode.invalid_topic_exception
        assert code((await ours.delete_topics(["__consumer_offsets"], raise_errors=False))[
            "__consumer_offsets"]) == ErrorCode.invalid_topic_exception
