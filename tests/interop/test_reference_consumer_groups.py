"""KIP-848 consumer groups compared with Apache Kafka 4.3.1, request by request.

The same raw ConsumerGroupHeartbeat v1 exchange goes to both brokers: two members join a
4-partition topic and heartbeat, acting on each assignment, until each owns half (the
epochs on the way may differ: Kafka 4.3 numbers them its own way); then the refusals (fenced epoch, unknown member, bad regex, unknown
assignor, missing member id or rebalance timeout), member-epoch checks of
OffsetCommit/OffsetFetch v9, and how ListGroups, DescribeGroups and ConsumerGroupDescribe
show the group. Member ids, topic ids and messages are not compared.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from cluster.client import KafkaClient, NewTopic
from peers.kafka_broker import KafkaBroker
from tests.interop.settling import create_ready, poll
from tests.interop.test_reference_kafka import on_both, same
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop
HEARTBEAT, DESCRIBE, LIST_GROUPS, DESCRIBE_GROUPS, COMMIT, FETCH = 68, 69, 16, 15, 8, 9


def _hb(group: str, member: str, epoch: int, **kw: Any) -> dict:
    return {"group_id": group, "member_id": member, "member_epoch": epoch, "instance_id": None, "rack_id": None,
            "rebalance_timeout": kw.pop("rebalance", -1), "subscribed_topic_names": kw.pop("names", None),
            "subscribed_topic_regex": kw.pop("regex", None), "server_assignor": kw.pop("assignor", None),
            "topic_partitions": kw.pop("owned", None), **kw}


async def _consumer_group_probe(client: KafkaClient, topic: str) -> dict[str, Any]:
    await create_ready(client, [NewTopic(topic, 4)])
    conn = await client.any_connection()
    group, m1, m2 = f"{topic}-g", str(uuid.uuid4()), str(uuid.uuid4())
    await conn.send(conn.build(10, {"key_type": 0, "coordinator_keys": [group]}))
    out: dict[str, Any] = {}

    async def beat(body: dict) -> Any:
        return await conn.send(conn.build(HEARTBEAT, body, 1))

    # Kafka loads the group's coordinator partition a moment after FindCoordinator (a
    # settling window, cf. tests/interop/settling.py): an empty ConsumerGroupDescribe
    # answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS until then.
    async def described() -> int:
        r = await conn.send(conn.build(DESCRIBE, {"group_ids": [group], "include_authorized_operations": False}))
        return int(r.groups[0].error_code)

    await poll(described, lambda code: code not in (14, 15, 16), "group coordinator loaded")

    def parts(resp: Any) -> list[int] | None:
        if resp.assignment is None:
            return None
        return sorted(p for t in resp.assignment.topic_partitions for p in t.partitions)

    def owned(resp: Any, keep: list[int] | None = None) -> list[dict]:
        return [{"topic_id": t.topic_id, "partitions": keep if keep is not None else list(t.partitions)}
                for t in resp.assignment.topic_partitions]

    # Each member heartbeats with its epoch and what it owns, acting on every assignment
    # (revocations first, as clients do), until both own half: the path (how many steps,
    # which epochs) may differ between brokers, the outcome and every error code may not.
    epochs = {m1: 0, m2: 0}
    held: dict[str, list[dict]] = {m1: [], m2: []}
    errors: list[int] = []
    joined: list[Any] = []
    for _ in range(300):  # polled for up to ~30 s: Kafka 4.3 computes a new target assignment at
        # most every group.consumer.min.assignment.interval.ms, so it settles later than we do
        for m in (m1, m2):
            body = (_hb(group, m, 0, rebalance=30_000, names=[topic], owned=[]) if epochs[m] == 0
                    else _hb(group, m, epochs[m], owned=held[m]))
            r = await beat(body)
            errors.append(int(r.error_code))
            if epochs[m] == 0:
                joined.append((int(r.error_code), r.heartbeat_interval.total_seconds(),
                               parts(r) == ([0, 1, 2, 3] if m == m1 else [])))
            epochs[m] = r.member_epoch
            if r.assignment is not None:
                held[m] = owned(r)
        counts = sorted(sum(len(t["partitions"]) for t in held[m]) for m in (m1, m2))
        if counts == [2, 2] and epochs[m1] == epochs[m2]:
            break
        await asyncio.sleep(0.1)
    out["joins"] = joined
    out["errors"] = sorted(set(errors))
    out["owned"] = sorted(sorted(p for t in held[m] for p in t["partitions"]) for m in (m1, m2))
    d = (await conn.send(conn.build(DESCRIBE, {"group_ids": [group], "include_authorized_operations": False}))).groups[0]
    out["describe"] = (int(d.error_code), d.group_state, d.group_epoch == d.assignment_epoch, d.assignor_name,
                       sorted(m.member_epoch == d.group_epoch for m in d.members),
                       sorted(len(m.assignment.topic_partitions[0].partitions) for m in d.members))
    epoch = epochs[m1]
    refusals = {
        "fenced": _hb(group, m1, epoch + 5, owned=[]),
        "unknown member": _hb(group, str(uuid.uuid4()), 1, owned=[]),
        "empty member id": _hb(group, "", 0, rebalance=1, names=[topic], owned=[]),
        "no rebalance timeout": _hb(group, str(uuid.uuid4()), 0, names=[topic], owned=[]),
        "bad regex": _hb(group, str(uuid.uuid4()), 0, rebalance=1, regex="(", owned=[]),
        "unknown assignor": _hb(group, str(uuid.uuid4()), 0, rebalance=1, names=[topic], assignor="nope", owned=[]),
        "no group": _hb(f"{group}-none", m1, 1, owned=[]),
    }
    for case, body in refusals.items():
        out[case] = int((await beat(body)).error_code)

    async def commit(member: str, epoch: int, version: int = 9) -> int:
        r = await conn.send(conn.build(COMMIT, {
            "group_id": group, "generation_id_or_member_epoch": epoch, "member_id": member, "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 0,
                                                       "committed_leader_epoch": -1, "committed_metadata": ""}]}]},
            version))
        return int(r.topics[0].partitions[0].error_code)

    out["commit"] = [await commit(m1, epoch), await commit(m1, epoch - 1), await commit(m1, epoch + 1),
                     await commit("", -1), await commit(m1, epoch, version=8)]
    fetched = await conn.send(conn.build(FETCH, {"groups": [
        {"group_id": group, "member_id": m, "member_epoch": e, "topics": [{"name": topic, "partition_indexes": [0]}]}
        for m, e in ((m1, epoch), (m1, epoch - 1), (None, -1))], "require_stable": False}, 9))
    out["fetch"] = [int(g.error_code) for g in fetched.groups]
    listed = await conn.send(conn.build(LIST_GROUPS, {"states_filter": [], "types_filter": ["consumer"]}, 5))
    out["list"] = [(g.group_type, g.group_state, g.protocol_type) for g in listed.groups if g.group_id == group]
    classic = await conn.send(conn.build(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False}, 5))
    out["describe classic"] = [(int(g.error_code), g.group_state, len(g.members)) for g in classic.groups]
    left = await beat(_hb(group, m2, -1))
    out["leave"] = (int(left.error_code), left.member_epoch)
    return out


async def test_consumer_group_heartbeats_and_views(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                                   topic_name: str) -> None:
    answer = same(await on_both(cluster, kafka_broker, topic_name, _consumer_group_probe))
    assert answer["errors"] == [0] and answer["owned"] in ([[0, 1], [2, 3]], [[0, 2], [1, 3]], [[0, 3], [1, 2]])
    assert answer["list"] == [("consumer", "Stable", "consumer")]
