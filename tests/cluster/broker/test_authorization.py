"""Every handler checks what Kafka's KafkaApis checks, and answers Kafka's error codes.

Alice starts with no ACLs (default deny), so each API is refused with its code; then the
grant Kafka requires makes it work. Requests go through the real dispatch path with
Alice's session bound (see acl_helpers).
"""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode as E

from cluster.auth.acl import Operation as Op, PatternType as PT, Permission as P, ResourceType as RT
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from tests.cluster.broker.acl_helpers import call, enforcing_broker, grant

ADMIN = {"principal": "User:admin"}
ZERO = uuid.UUID(int=0)
CLUSTER = "kafka-cluster"


@pytest.fixture
async def sb(tmp_path):
    b = await enforcing_broker(tmp_path / "b", super_users=("User:admin",))
    for name in ("orders", "secret", "app.one"):
        b.create_topic(name, 1, {})
    yield b
    await b.stop()


def batch(n: int = 3) -> bytes:
    return build_batch([(b"k%d" % i, b"v%d" % i, [], 1_700_000_000_000 + i) for i in range(n)])


def produce_body(topic: str, records: bytes, tid: str | None = None) -> dict:
    return {"transactional_id": tid, "acks": -1, "timeout": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}]}


async def produce(b, topic: str, records: bytes | None = None, **who) -> int:
    r = await call(b, 0, 9, produce_body(topic, records or batch()), **who)
    return r.responses[0].partition_responses[0].error_code


async def fetch(b, topic: str, **who):
    r = await call(b, 1, 12, {"max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
                              "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
                              "topics": [{"topic": topic, "partitions": [
                                  {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}, **who)
    return r.responses[0].partitions[0]


async def metadata(b, topics: list[str] | None, *, version: int = 12, auto: bool = False, **who):
    body = {"topics": None if topics is None else [{"name": t, "topic_id": ZERO} for t in topics],
            "allow_auto_topic_creation": auto, "include_topic_authorized_operations": True}
    if version <= 10:
        body["include_cluster_authorized_operations"] = True
    return await call(b, 3, version, body, **who)


def bits(*ops: Op) -> int:
    return sum(1 << int(o) for o in ops)


async def test_produce_needs_write_on_the_topic(sb) -> None:
    assert await produce(sb, "orders") == E.topic_authorization_failed
    grant(sb, Op.READ, name="orders")
    assert await produce(sb, "orders") == E.topic_authorization_failed
    grant(sb, Op.WRITE, name="orders")
    assert await produce(sb, "orders") == 0
    assert await produce(sb, "secret") == E.topic_authorization_failed
    # an unknown topic the principal may not write is not disclosed as unknown
    assert await produce(sb, "nope") == E.topic_authorization_failed


async def test_transactional_produce_needs_write_on_the_transactional_id(sb) -> None:
    grant(sb, Op.WRITE, name="orders")
    txn = build_batch([(b"k", b"v", [], 1_700_000_000_000)], producer_id=5, producer_epoch=0,
                      base_sequence=0, transactional=True)
    r = await call(sb, 0, 9, produce_body("orders", txn, tid="tx-1"))
    assert r.responses[0].partition_responses[0].error_code == E.transactional_id_authorization_failed


async def test_fetch_list_offsets_and_leader_epoch_need_read_or_describe(sb) -> None:
    await produce(sb, "orders", **ADMIN)
    assert (await fetch(sb, "orders")).error_code == E.topic_authorization_failed
    lo = {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "orders", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}
    assert (await call(sb, 2, 7, lo)).topics[0].partitions[0].error_code == E.topic_authorization_failed
    ofle = {"replica_id": -1, "topics": [{"topic": "orders", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]}
    assert (await call(sb, 23, 4, ofle)).topics[0].partitions[0].error_code == E.topic_authorization_failed
    grant(sb, Op.DESCRIBE, name="orders")
    assert (await fetch(sb, "orders")).error_code == E.topic_authorization_failed
    assert (await call(sb, 2, 7, lo)).topics[0].partitions[0].offset == 3
    assert (await call(sb, 23, 4, ofle)).topics[0].partitions[0].error_code == 0
    grant(sb, Op.READ, name="orders")
    got = await fetch(sb, "orders")
    assert got.error_code == 0 and got.records


async def test_metadata_hides_what_the_principal_may_not_describe(sb) -> None:
    md = await metadata(sb, None)
    assert md.topics == ()
    grant(sb, Op.READ, name="app.", pattern=PT.PREFIXED)
    grant(sb, Op.WRITE, name="orders")
    md = await metadata(sb, None)
    assert sorted(t.name for t in md.topics) == ["app.one", "orders"]
    md = await metadata(sb, ["orders", "secret", "missing"])
    codes = {t.name: t.error_code for t in md.topics}
    assert codes == {"orders": 0, "secret": E.topic_authorization_failed,
                     "missing": E.topic_authorization_failed}
    assert all(t.topic_id in (ZERO, None) for t in md.topics if t.error_code)
    ops = {t.name: t.topic_authorized_operations for t in md.topics}
    assert ops["orders"] == bits(Op.WRITE, Op.DESCRIBE)
    # everything is visible to a super user, and to anyone when ACLs are not enforced
    assert len((await metadata(sb, None, **ADMIN)).topics) == 3


async def test_metadata_by_topic_id_and_cluster_operations(sb) -> None:
    secret = sb.topic("secret").uuid
    r = await call(sb, 3, 12, {"topics": [{"name": None, "topic_id": secret}],
                               "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    assert r.topics[0].error_code == E.topic_authorization_failed and r.topics[0].name is None
    md = await metadata(sb, ["orders"], version=10)
    assert md.cluster_authorized_operations == 0  # no Describe on the cluster
    grant(sb, Op.DESCRIBE, RT.CLUSTER, CLUSTER)
    grant(sb, Op.CLUSTER_ACTION, RT.CLUSTER, CLUSTER)
    md = await metadata(sb, ["orders"], version=10)
    assert md.cluster_authorized_operations == bits(Op.DESCRIBE, Op.CLUSTER_ACTION)
    admin = await metadata(sb, ["orders"], version=10, **ADMIN)
    assert admin.topics[0].topic_authorized_operations == bits(
        Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS)


async def test_metadata_auto_create_needs_create(sb) -> None:
    grant(sb, Op.DESCRIBE, name="*")
    md = await metadata(sb, ["fresh"], auto=True)
    assert md.topics[0].error_code == E.topic_authorization_failed and sb.topic("fresh") is None
    grant(sb, Op.CREATE, name="fresh")
    md = await metadata(sb, ["fresh"], auto=True)
    assert md.topics[0].error_code == 0 and sb.topic("fresh") is not None
    grant(sb, Op.CREATE, RT.CLUSTER, CLUSTER)
    assert (await metadata(sb, ["fresh2"], auto=True)).topics[0].error_code == 0


async def test_topic_admin_apis(sb) -> None:
    create = {"topics": [{"name": "new", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                          "configs": []}], "timeout": 5000, "validate_only": False}
    r = await call(sb, 19, 7, create)
    assert r.topics[0].error_code == E.topic_authorization_failed and sb.topic("new") is None
    grant(sb, Op.CREATE, name="new")
    assert (await call(sb, 19, 7, create)).topics[0].error_code == 0
    part = {"topics": [{"name": "orders", "count": 3, "assignments": None}], "timeout": 5000,
            "validate_only": False}
    assert (await call(sb, 37, 3, part)).results[0].error_code == E.topic_authorization_failed
    grant(sb, Op.ALTER, name="orders")
    assert (await call(sb, 37, 3, part)).results[0].error_code == 0
    await produce(sb, "orders", **ADMIN)
    dr = {"topics": [{"name": "orders", "partitions": [{"partition_index": 0, "offset": -1}]}], "timeout": 5000}
    assert (await call(sb, 21, 2, dr)).topics[0].partitions[0].error_code == E.topic_authorization_failed
    assert sb.partitions[("orders", 0)].log.log_start_offset == 0
    delete = {"topics": [{"name": "orders", "topic_id": ZERO}], "timeout": 5000}
    assert (await call(sb, 20, 6, delete)).responses[0].error_code == E.topic_authorization_failed
    by_id = {"topics": [{"name": None, "topic_id": sb.topic("secret").uuid}], "timeout": 5000}
    r = (await call(sb, 20, 6, by_id)).responses[0]
    assert r.error_code == E.topic_authorization_failed and r.name is None
    grant(sb, Op.DELETE, name="orders")
    assert (await call(sb, 21, 2, dr)).topics[0].partitions[0].error_code == 0
    assert (await call(sb, 20, 6, delete)).responses[0].error_code == 0
    assert sb.topic("orders") is None and sb.topic("secret") is not None


async def test_config_apis(sb) -> None:
    desc = {"resources": [{"resource_type": 2, "resource_name": "orders", "configuration_keys": None},
                          {"resource_type": 4, "resource_name": "1", "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False}
    r = await call(sb, 32, 4, desc)
    assert [x.error_code for x in r.results] == [E.topic_authorization_failed, E.cluster_authorization_failed]
    alter = {"resources": [{"resource_type": 2, "resource_name": "orders", "configs": [
        {"name": "retention.ms", "config_operation": 0, "value": "1000"}]}], "validate_only": False}
    assert (await call(sb, 44, 1, alter)).responses[0].error_code == E.topic_authorization_failed
    full = {"resources": [{"resource_type": 2, "resource_name": "orders",
                           "configs": [{"name": "retention.ms", "value": "2000"}]}], "validate_only": False}
    assert (await call(sb, 33, 2, full)).responses[0].error_code == E.topic_authorization_failed
    grant(sb, Op.ALTER_CONFIGS, name="orders")
    grant(sb, Op.DESCRIBE_CONFIGS, RT.CLUSTER, CLUSTER)
    r = await call(sb, 32, 4, desc)
    assert [x.error_code for x in r.results] == [0, 0]  # DescribeConfigs implied by AlterConfigs
    assert (await call(sb, 44, 1, alter)).responses[0].error_code == 0
    assert sb.topic("orders").configs["retention.ms"] == "1000"
    assert (await call(sb, 33, 2, full)).responses[0].error_code == 0
    assert sb.topic("orders").configs["retention.ms"] == "2000"


async def test_group_apis(sb) -> None:
    g = "payments"
    commit = {"group_id": g, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
              "topics": [{"name": "orders", "partitions": [
                  {"partition_index": 0, "committed_offset": 2, "committed_leader_epoch": -1,
                   "committed_metadata": ""}]}]}
    fetch_offsets = {"group_id": g, "topics": [{"name": "orders", "partition_indexes": [0]}], "require_stable": False}
    find = {"key": g, "key_type": 0}
    assert (await call(sb, 10, 3, find)).error_code == E.group_authorization_failed
    assert (await call(sb, 8, 8, commit)).topics[0].partitions[0].error_code == E.group_authorization_failed
    assert (await call(sb, 9, 7, fetch_offsets)).error_code == E.group_authorization_failed
    join = {"group_id": g, "session_timeout": 10000, "rebalance_timeout": 10000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}]}
    assert (await call(sb, 11, 5, join)).error_code == E.group_authorization_failed
    grant(sb, Op.READ, RT.GROUP, g)
    assert (await call(sb, 10, 3, find)).error_code == 0
    assert (await call(sb, 8, 8, commit)).topics[0].partitions[0].error_code == E.topic_authorization_failed
    grant(sb, Op.READ, name="orders")
    assert (await call(sb, 8, 8, commit)).topics[0].partitions[0].error_code == 0
    got = await call(sb, 9, 7, fetch_offsets)
    assert got.error_code == 0 and got.topics[0].partitions[0].committed_offset == 2
    # groups alice may not Describe are left out of ListGroups and refused by DescribeGroups
    await call(sb, 8, 8, {**commit, "group_id": "other"}, **ADMIN)
    listed = await call(sb, 16, 4, {"states_filter": []})
    assert [x.group_id for x in listed.groups] == [g]
    assert len((await call(sb, 16, 4, {"states_filter": []}, **ADMIN)).groups) == 2
    d = await call(sb, 15, 5, {"groups": [g, "other"], "include_authorized_operations": True})
    assert [(x.group_id, x.error_code) for x in d.groups] == [(g, 0), ("other", E.group_authorization_failed)]
    assert d.groups[0].authorized_operations == bits(Op.READ, Op.DESCRIBE)
    assert (await call(sb, 42, 2, {"groups_names": [g]})).results[0].error_code == E.group_authorization_failed
    od = {"group_id": g, "topics": [{"name": "orders", "partitions": [{"partition_index": 0}]}]}
    assert (await call(sb, 47, 0, od)).error_code == E.group_authorization_failed
    grant(sb, Op.DELETE, RT.GROUP, g)
    assert (await call(sb, 42, 2, {"groups_names": [g]})).results[0].error_code == 0


async def test_idempotent_and_transactional_ids(sb) -> None:
    init = {"transactional_id": None, "transaction_timeout": 60000, "producer_id": -1, "producer_epoch": -1}
    assert (await call(sb, 22, 4, init)).error_code == E.cluster_authorization_failed
    grant(sb, Op.WRITE, name="orders")  # Write on some topic is enough (KIP-679)
    assert (await call(sb, 22, 4, init)).error_code == 0
    tinit = {**init, "transactional_id": "tx-1"}
    assert (await call(sb, 22, 4, tinit)).error_code == E.transactional_id_authorization_failed
    assert (await call(sb, 10, 3, {"key": "tx-1", "key_type": 1})).error_code == \
        E.transactional_id_authorization_failed
    end = {"transactional_id": "tx-1", "producer_id": 1, "producer_epoch": 0, "committed": True}
    assert (await call(sb, 26, 3, end)).error_code == E.transactional_id_authorization_failed
    grant(sb, Op.WRITE, RT.TRANSACTIONAL_ID, "tx-1")
    assert (await call(sb, 22, 4, tinit)).error_code == 0
    lst = await call(sb, 66, 0, {"state_filters": [], "producer_id_filters": []}, **ADMIN)
    assert [t.transactional_id for t in lst.transaction_states] == ["tx-1"]
    sb.acls.delete([__import__("cluster.auth.acl", fromlist=["AclFilter"]).AclFilter(
        resource_type=RT.TRANSACTIONAL_ID)])
    assert (await call(sb, 66, 0, {"state_filters": [], "producer_id_filters": []})).transaction_states == ()


async def test_describe_cluster_operations(sb) -> None:
    r = await call(sb, 60, 1, {"include_cluster_authorized_operations": True, "endpoint_type": 1})
    assert r.error_code == 0 and r.cluster_authorized_operations == 0
    grant(sb, Op.ALTER, RT.CLUSTER, CLUSTER)
    r = await call(sb, 60, 1, {"include_cluster_authorized_operations": True, "endpoint_type": 1})
    assert r.cluster_authorized_operations == bits(Op.ALTER, Op.DESCRIBE)


async def test_the_truncate_attack_is_refused_at_every_step(sb) -> None:
    """Issue 10: with Alter (and AlterConfigs) on a topic, set dcmirror.mirror.source, call
    MirrorTruncate, delete the config. Every step is refused; the records stay."""
    for _ in range(10):
        assert await produce(sb, "orders", batch(10), **ADMIN) == 0
    grant(sb, Op.ALL, name="orders")  # everything on the topic, nothing on the cluster
    mark = {"resources": [{"resource_type": 2, "resource_name": "orders", "configs": [
        {"name": "dcmirror.mirror.source", "config_operation": 0, "value": "east"}]}], "validate_only": False}
    r = (await call(sb, 44, 1, mark)).responses[0]
    assert r.error_code == E.cluster_authorization_failed and "ClusterAction" in r.error_message
    full = {"resources": [{"resource_type": 2, "resource_name": "orders",
                           "configs": [{"name": "dcmirror.mirror.source", "value": "east"}]}], "validate_only": False}
    assert (await call(sb, 33, 2, full)).responses[0].error_code == E.cluster_authorization_failed
    assert "dcmirror.mirror.source" not in sb.topic("orders").configs
    truncate = {"topics": [{"name": "orders", "partitions": [{"partition_index": 0, "offset": 0}]}], "timeout": 5000}
    r = await call(sb, codec.DCMIRROR_TRUNCATE, 0, truncate)
    assert r.topics[0].partitions[0].error_code == E.cluster_authorization_failed
    # even on a topic an administrator made a mirror, the ordinary principal cannot cut it
    # nor remove the marker
    assert (await call(sb, 44, 1, mark, **ADMIN)).responses[0].error_code == 0
    r = await call(sb, codec.DCMIRROR_TRUNCATE, 0, truncate)
    assert r.topics[0].partitions[0].error_code == E.cluster_authorization_failed
    unmark = {"resources": [{"resource_type": 2, "resource_name": "orders", "configs": [
        {"name": "dcmirror.mirror.source", "config_operation": 1, "value": None}]}], "validate_only": False}
    assert (await call(sb, 44, 1, unmark)).responses[0].error_code == E.cluster_authorization_failed
    assert sb.topic("orders").configs["dcmirror.mirror.source"] == "east"
    r = await call(sb, codec.DCMIRROR_APPEND, 0, produce_body("orders", batch()))
    assert r.responses[0].partition_responses[0].error_code == E.cluster_authorization_failed
    fenced = {"topics": [{"name": "x", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                          "configs": [{"name": "dcmirror.fenced", "value": "west"}]}],
              "timeout": 5000, "validate_only": False}
    grant(sb, Op.CREATE, RT.CLUSTER, CLUSTER)
    assert (await call(sb, 19, 7, fenced)).topics[0].error_code == E.cluster_authorization_failed
    part = sb.partitions[("orders", 0)]
    assert part.log.log_start_offset == 0 and part.high_watermark == 100
    # ClusterAction on the cluster is what a mirror link gets, and it is enough
    grant(sb, Op.CLUSTER_ACTION, RT.CLUSTER, CLUSTER, principal="User:mirror")
    r = await call(sb, codec.DCMIRROR_TRUNCATE, 0, {**truncate, "topics": [
        {"name": "orders", "partitions": [{"partition_index": 0, "offset": 95}]}]}, principal="User:mirror")
    assert r.topics[0].partitions[0].error_code == 0


async def test_deny_acl_overrides_grant_on_a_real_path(sb) -> None:
    grant(sb, Op.ALL, name="*")
    grant(sb, Op.WRITE, name="secret", permission=P.DENY)
    assert await produce(sb, "orders") == 0
    assert await produce(sb, "secret") == E.topic_authorization_failed
    grant(sb, Op.ALL, name="*", principal="User:*", permission=P.DENY, host="10.9.9.9")
    assert await produce(sb, "orders", host="10.9.9.9") == E.topic_authorization_failed
    assert await produce(sb, "orders", host="127.0.0.1") == 0
