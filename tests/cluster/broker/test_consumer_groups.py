"""KIP-848 at the wire: ConsumerGroupHeartbeat/Describe, ListGroups/DescribeGroups, commits, restart.

Two members share a topic through raw heartbeats (the pure machine's rules are in
tests/cluster/groups/test_consumer.py); here the shell's part: topic ids in and out,
v0's server-chosen member id, both group kinds side by side in ListGroups, a consumer
group committing with member epochs, a classic JoinGroup refused while a consumer group
has members, our client's describe_groups seeing its members (the mirror's checkpoint
rule), and a restart keeping epochs, assignments and offsets.
"""

from __future__ import annotations

from pathlib import Path

from kio.schema.errors import ErrorCode as E

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.client import KafkaClient
from cluster.groups.subscription import encode_subscription
from tests.cluster.broker.rawconn import RawConn


def _join(group: str, member: str, topics: list[str], version: int = 1) -> dict:
    body = {"group_id": group, "member_id": member, "member_epoch": 0, "rebalance_timeout": 30_000,
            "subscribed_topic_names": topics, "topic_partitions": []}
    if version >= 1:
        body["subscribed_topic_regex"] = None
    return body


def _beat(group: str, member: str, epoch: int, owned: dict | None) -> dict:
    return {"group_id": group, "member_id": member, "member_epoch": epoch, "rebalance_timeout": -1,
            "subscribed_topic_names": None, "subscribed_topic_regex": None,
            "topic_partitions": None if owned is None else [
                {"topic_id": tid, "partitions": sorted(ps)} for tid, ps in owned.items()]}


def _owned(resp) -> dict:
    return {t.topic_id: set(t.partitions) for t in resp.assignment.topic_partitions}


async def _topic(conn: RawConn, name: str, partitions: int):
    r = await conn.call(19, 7, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                                            "assignments": [], "configs": []}], "timeout": 1000,
                                "validate_only": False})
    return r.topics[0].topic_id


async def _commit(conn: RawConn, group: str, member: str, epoch: int, topic: str, offset: int,
                  version: int = 9) -> int:
    r = await conn.call(8, version, {"group_id": group, "generation_id_or_member_epoch": epoch, "member_id": member,
                               "group_instance_id": None, "topics": [{"name": topic, "partitions": [
                                   {"partition_index": 0, "committed_offset": offset,
                                    "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
    return r.topics[0].partitions[0].error_code


async def test_two_members_reconcile_describe_list_commit_and_restart(tmp_path: Path) -> None:
    broker = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0))
    await broker.start()
    conn = await RawConn.open(broker.advertised_port)
    try:
        tid = await _topic(conn, "orders", 4)
        r1 = await conn.call(68, 1, _join("g", "m1", ["orders"]))
        assert (r1.error_code, r1.member_epoch, _owned(r1)) == (E.none, 1, {tid: {0, 1, 2, 3}})
        assert r1.heartbeat_interval.total_seconds() == 5
        r2 = await conn.call(68, 0, {k: v for k, v in _join("g", "", ["orders"], 0).items()})
        m2 = r2.member_id
        assert r2.error_code == E.none and m2 and r2.member_epoch == 2 and _owned(r2) == {}
        r1 = await conn.call(68, 1, _beat("g", "m1", 1, {tid: {0, 1, 2, 3}}))
        kept = _owned(r1)[tid]
        assert len(kept) == 2 and r1.member_epoch == 1
        r1 = await conn.call(68, 1, _beat("g", "m1", 1, {tid: kept}))
        assert r1.member_epoch == 2
        r2 = await conn.call(68, 1, _beat("g", m2, 2, {}))
        assert _owned(r2) == {tid: {0, 1, 2, 3} - kept}
        assert await _commit(conn, "g", "m1", 2, "orders", 7) == E.none
        assert await _commit(conn, "g", "m1", 3, "orders", 7) == E.stale_member_epoch
        assert await _commit(conn, "g", "", -1, "orders", 7) == E.unknown_member_id
        assert await _commit(conn, "g", "m1", 2, "orders", 7, version=8) == E.unsupported_version
        fetched = await conn.call(9, 9, {"groups": [
            {"group_id": "g", "member_id": m, "member_epoch": e, "topics": [{"name": "orders", "partition_indexes": [0]}]}
            for m, e in (("m1", 2), ("m1", 1), ("nobody", 2), (None, -1))], "require_stable": False})
        assert [(g.error_code, [p.committed_offset for t in g.topics for p in t.partitions])
                for g in fetched.groups] == [(E.none, [7]), (E.stale_member_epoch, []),
                                             (E.unknown_member_id, []), (E.none, [7])]

        classic = await conn.call(11, 9, {"group_id": "g", "session_timeout": 10_000, "rebalance_timeout": 10_000,
                                          "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
                                          "protocols": [{"name": "range", "metadata": encode_subscription(["orders"])}],
                                          "reason": None})
        assert classic.error_code == E.inconsistent_group_protocol
        await conn.call(11, 0, {"group_id": "old", "session_timeout": 10_000, "member_id": "",
                                "protocol_type": "consumer",
                                "protocols": [{"name": "range", "metadata": encode_subscription(["orders"])}]})
        listed = await conn.call(16, 5, {"states_filter": [], "types_filter": []})
        assert sorted((g.group_id, g.group_type, g.group_state) for g in listed.groups) == [
            ("g", "consumer", "Stable"), ("old", "classic", "CompletingRebalance")]  # (before "rx")
        only = await conn.call(16, 5, {"states_filter": [], "types_filter": ["consumer"]})
        assert [g.group_id for g in only.groups] == ["g"]
        d = await conn.call(69, 1, {"group_ids": ["g", "old", "none"], "include_authorized_operations": False})
        g, old, none = d.groups
        assert (g.error_code, g.group_state, g.group_epoch, g.assignment_epoch, g.assignor_name) == (
            E.none, "Stable", 2, 2, "uniform")
        assert sorted(m.member_id for m in g.members) == sorted(["m1", m2])
        assert {m.member_id: m.member_epoch for m in g.members} == {"m1": 2, m2: 2}
        assert [(x.error_code, x.error_message) for x in (old, none)] == [
            (E.group_id_not_found, "Group old is not a consumer group."),
            (E.group_id_not_found, "Group none not found.")]
        # the broker's regex resolution matches internal topics too, as Kafka's does
        await conn.call(10, 4, {"key_type": 0, "coordinator_keys": ["rx"]})
        rx = await conn.call(68, 1, {**_join("rx", "r1", []), "subscribed_topic_names": None,
                                     "subscribed_topic_regex": "__consumer_offs.*"})
        assert sum(len(t.partitions) for t in rx.assignment.topic_partitions) == 50
        classic_view = await conn.call(15, 5, {"groups": ["g"], "include_authorized_operations": False})
        assert classic_view.groups[0].group_state == "Dead"  # as Kafka: not a classic group
        # ... so our client (the mirror's checkpoint rule "no active members") asks
        # ConsumerGroupDescribe for groups DescribeGroups calls Dead
        async with KafkaClient(f"127.0.0.1:{broker.advertised_port}") as client:
            seen = (await client.describe_groups(["g"]))["g"]
        assert (seen.state, seen.protocol_type, sorted(m.member_id for m in seen.members)) == (
            "Stable", "consumer", sorted(["m1", m2]))
    finally:
        conn.close()
        await broker.stop()

    again = Broker(BrokerConfig(name="t", data_dir=tmp_path / "b", port=0))
    await again.start()
    conn = await RawConn.open(again.advertised_port)
    try:
        r1 = await conn.call(68, 1, _beat("g", "m1", 2, {tid: kept}))
        assert (r1.error_code, r1.member_epoch) == (E.none, 2)
        fetched = await conn.call(9, 7, {"group_id": "g", "topics": [{"name": "orders", "partition_indexes": [0]}],
                                         "require_stable": False})
        assert fetched.topics[0].partitions[0].committed_offset == 7
        left = await conn.call(68, 1, _beat("g", "m1", -1, None))
        assert left.member_epoch == -1
        d = await conn.call(69, 1, {"group_ids": ["g"], "include_authorized_operations": False})
        assert d.groups[0].group_epoch == 3 and [m.member_id for m in d.groups[0].members] == [m2]
    finally:
        conn.close()
        await again.stop()


async def test_acls_subscribed_names_need_describe_and_regexes_see_only_describable_topics(tmp_path: Path) -> None:
    """As Kafka: a topic named in the subscription that the principal may not Describe is
    TOPIC_AUTHORIZATION_FAILED; a regex resolves only to topics the member may Describe."""
    from cluster.auth.acl import Operation as Op, ResourceType as RT
    from tests.cluster.broker.acl_helpers import call, enforcing_broker, grant

    b = await enforcing_broker(tmp_path / "secure")
    try:
        for name in ("open-a", "secret-b"):
            b.create_topic(name, 2, {})
        grant(b, Op.READ, RT.GROUP, "g")
        grant(b, Op.DESCRIBE, RT.TOPIC, "open-a")
        refused = await call(b, 68, 1, _join("g", "m1", ["open-a", "secret-b"]))
        assert refused.error_code == E.topic_authorization_failed
        r = await call(b, 68, 1, {**_join("g", "m1", []), "subscribed_topic_names": None,
                                  "subscribed_topic_regex": ".*-.*"})
        assert r.error_code == E.none
        assert {t.topic_id for t in r.assignment.topic_partitions} == {b.catalogue.topics["open-a"].uuid}
    finally:
        await b.stop()
