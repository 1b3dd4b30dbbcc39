"""Group APIs at the wire level, for the versions real clients rarely send (old and batched).

Old clients (JoinGroup v0-v3) join without the MEMBER_ID_REQUIRED handshake and get
non-nullable protocol names; LeaveGroup v0-v2 reports the member's error at top level;
OffsetFetch v8 batches groups and FindCoordinator v4+ batches keys.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode as E

from cluster.groups.subscription import encode_subscription
from tests.cluster.broker.rawconn import RawConn

META = encode_subscription(["t"])


async def test_find_coordinator_every_version(broker) -> None:
    conn = await RawConn.open(broker.advertised_port)
    try:
        r = await conn.call(10, 0, {"key": "g"})
        assert (r.error_code, r.node_id, r.port) == (E.none, broker.node_id, broker.advertised_port)
        r = await conn.call(10, 3, {"key": "txn", "key_type": 1})
        assert r.error_code == E.none and r.host == broker.advertised_host
        r = await conn.call(10, 4, {"key_type": 0, "coordinator_keys": ["a", "b"]})
        assert [(c.key, c.error_code, c.node_id) for c in r.coordinators] == [
            ("a", E.none, broker.node_id), ("b", E.none, broker.node_id)]
        r = await conn.call(10, 4, {"key_type": 2, "coordinator_keys": ["s"]})
        assert r.coordinators[0].error_code == E.invalid_request
    finally:
        conn.close()


async def test_v0_join_sync_heartbeat_leave(broker) -> None:
    conn = await RawConn.open(broker.advertised_port)
    try:
        j = await conn.call(11, 0, {"group_id": "old", "session_timeout": 10_000, "member_id": "",
                                    "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": META}]})
        assert j.error_code == E.none and j.generation_id == 1 and j.protocol_name == "range"
        assert j.leader == j.member_id and [m.metadata for m in j.members] == [META]
        s = await conn.call(14, 0, {"group_id": "old", "generation_id": 1, "member_id": j.member_id,
                                    "assignments": [{"member_id": j.member_id, "assignment": b"mine"}]})
        assert (s.error_code, s.assignment) == (E.none, b"mine")
        h = await conn.call(12, 0, {"group_id": "old", "generation_id": 1, "member_id": j.member_id})
        assert h.error_code == E.none
        h = await conn.call(12, 0, {"group_id": "old", "generation_id": 7, "member_id": j.member_id})
        assert h.error_code == E.illegal_generation
        lv = await conn.call(13, 0, {"group_id": "old", "member_id": j.member_id})
        assert lv.error_code == E.none
        lv = await conn.call(13, 0, {"group_id": "old", "member_id": j.member_id})
        assert lv.error_code == E.unknown_member_id
        d = await conn.call(15, 0, {"groups": ["old", "missing"]})
        assert [(g.group_id, g.group_state) for g in d.groups] == [("old", "Empty"), ("missing", "Dead")]
        bad = await conn.call(11, 5, {"group_id": "old", "session_timeout": 10, "rebalance_timeout": 10,
                                      "member_id": "", "protocol_type": "consumer",
                                      "protocols": [{"name": "range", "metadata": META}]})
        assert bad.error_code == E.invalid_session_timeout
    finally:
        conn.close()


async def test_static_member_join_and_batch_leave_by_instance_id(broker) -> None:
    conn = await RawConn.open(broker.advertised_port)
    try:
        body = {"group_id": "st", "session_timeout": 10_000, "rebalance_timeout": 10_000, "member_id": "",
                "group_instance_id": "inst-1", "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": META}]}
        j = await conn.call(11, 9, body)
        assert j.error_code == E.none and j.member_id and j.protocol_type == "consumer"
        await conn.call(14, 5, {"group_id": "st", "generation_id": j.generation_id, "member_id": j.member_id,
                                "group_instance_id": "inst-1", "protocol_type": "consumer", "protocol_name": "range",
                                "assignments": [{"member_id": j.member_id, "assignment": b"x"}]})
        again = await conn.call(11, 9, body)  # a restarted static member: same generation, new id
        assert again.error_code == E.none and again.generation_id == j.generation_id
        assert again.member_id != j.member_id and again.skip_assignment
        h = await conn.call(12, 4, {"group_id": "st", "generation_id": j.generation_id, "member_id": j.member_id,
                                    "group_instance_id": "inst-1"})
        assert h.error_code == E.fenced_instance_id
        lv = await conn.call(13, 5, {"group_id": "st", "members": [
            {"member_id": "", "group_instance_id": "inst-1"}, {"member_id": "ghost", "group_instance_id": None}]})
        assert lv.error_code == E.none
        assert [m.error_code for m in lv.members] == [E.none, E.unknown_member_id]
        ls = await conn.call(16, 4, {"states_filter": ["Empty"]})
        assert [(g.group_id, g.group_state) for g in ls.groups] == [("st", "Empty")]
    finally:
        conn.close()


async def test_offsets_old_and_batched_versions(broker) -> None:
    conn = await RawConn.open(broker.advertised_port)
    try:
        await conn.call(3, 4, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})  # creates t
        c = await conn.call(8, 8, {"group_id": "tool", "generation_id_or_member_epoch": -1, "member_id": "",
                                   "topics": [{"name": "nope", "partitions": [{"partition_index": 0}]},
                                              {"name": "t", "partitions": [{"partition_index": 9999}]}]})
        assert [(t.name, t.partitions[0].error_code) for t in c.topics] == [
            ("nope", E.unknown_topic_or_partition), ("t", E.unknown_topic_or_partition)]
        c = await conn.call(8, 2, {"group_id": "tool", "generation_id_or_member_epoch": -1, "member_id": "",
                                   "retention_time": -1, "topics": [
                                       {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 5,
                                                                      "committed_metadata": "hi"}]}]})
        assert c.topics[0].partitions[0].error_code == E.none
        big = "x" * 5000
        c = await conn.call(8, 8, {"group_id": "tool", "generation_id_or_member_epoch": -1, "member_id": "",
                                   "topics": [{"name": "t", "partitions": [
                                       {"partition_index": 0, "committed_offset": 6, "committed_leader_epoch": 3,
                                        "committed_metadata": big}]}]})
        assert c.topics[0].partitions[0].error_code == E.offset_metadata_too_large
        f = await conn.call(9, 1, {"group_id": "tool", "topics": [{"name": "t", "partition_indexes": [0, 1]}]})
        assert [(p.committed_offset, p.metadata) for p in f.topics[0].partitions] == [(5, "hi"), (-1, "")]
        f = await conn.call(9, 8, {"groups": [{"group_id": "tool", "topics": None},
                                              {"group_id": "none", "topics": [{"name": "t", "partition_indexes": [0]}]}]})
        assert [g.group_id for g in f.groups] == ["tool", "none"]
        assert [(t.name, [p.committed_offset for p in t.partitions]) for t in f.groups[0].topics] == [("t", [5])]
        assert f.groups[1].topics[0].partitions[0].committed_offset == -1
        od = await conn.call(47, 0, {"group_id": "tool", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]})
        assert od.error_code == E.none and od.topics[0].partitions[0].error_code == E.none
        od = await conn.call(47, 0, {"group_id": "nope", "topics": []})
        assert od.error_code == E.group_id_not_found
        dg = await conn.call(42, 2, {"groups_names": ["tool", "nope"]})
        assert [(r.group_id, r.error_code) for r in dg.results] == [("tool", E.none), ("nope", E.group_id_not_found)]
    finally:
        conn.close()


async def test_require_stable_reports_offsets_held_by_an_open_transaction(broker) -> None:
    import asyncio

    from confluent_kafka import Consumer, Producer, TopicPartition

    bootstrap = f"127.0.0.1:{broker.advertised_port}"
    conn = await RawConn.open(broker.advertised_port)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "tx-offsets"})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "txg"})
    try:
        await conn.call(3, 4, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})
        await asyncio.to_thread(producer.init_transactions, 30)
        await asyncio.to_thread(producer.begin_transaction)
        await asyncio.to_thread(producer.send_offsets_to_transaction, [TopicPartition("t", 0, 5)],
                                consumer.consumer_group_metadata(), 30)

        async def fetch(version: int, stable: bool):
            if version >= 8:
                r = await conn.call(9, version, {"groups": [{"group_id": "txg", "topics": [
                    {"name": "t", "partition_indexes": [0]}]}], "require_stable": stable})
                return r.groups[0].topics[0].partitions[0]
            r = await conn.call(9, version, {"group_id": "txg", "topics": [{"name": "t", "partition_indexes": [0]}],
                                             "require_stable": stable})
            return r.topics[0].partitions[0]

        for version in (7, 8):
            assert (await fetch(version, True)).error_code == E.unstable_offset_commit
            p = await fetch(version, False)
            assert (p.error_code, p.committed_offset) == (E.none, -1)
        await asyncio.to_thread(producer.commit_transaction, 30)
        for version in (7, 8):
            p = await fetch(version, True)
            assert (p.error_code, p.committed_offset) == (E.none, 5)
    finally:
        conn.close()
        await asyncio.to_thread(consumer.close)
