"""Asking a cluster what the link's principal may do, without changing anything.

KIP-430 first: Metadata v8+ with ``include_topic_authorized_operations``, DescribeGroups
with ``include_authorized_operations``, DescribeCluster with
``include_cluster_authorized_operations``. Where that says nothing (a topic that does not
exist yet, a broker that does not compute it), harmless probes: requests the broker
authorizes before it looks at anything else, so the answer is an authorization error
exactly when the operation is denied, and that change nothing when it is granted —
CreateTopics / CreatePartitions / IncrementalAlterConfigs with ``validate_only``,
DescribeConfigs, a Fetch of one byte, and a Produce with no records (which Kafka refuses
as INVALID_RECORD after the ACL check; a topic that does not exist answers
UNKNOWN_TOPIC_OR_PARTITION). Delete has no harmless probe: it is known from KIP-430 only.
"""

from __future__ import annotations

import logging
import uuid

from kio.schema.errors import ErrorCode

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaProtocolError
from cluster.wire import codec
from cluster.wire.dcmirror_api import DCMIRROR_APPEND
from cluster.wire.build import build
from mirror.preflight.permissions import Evidence, decode_operations

log = logging.getLogger(__name__)

PRODUCE, FETCH, METADATA, OFFSET_COMMIT, DESCRIBE_GROUPS = 0, 1, 3, 8, 15
CREATE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER_CONFIGS, DESCRIBE_CLUSTER = 19, 32, 37, 44, 60
RESOURCE_TOPIC = 2
_TOPIC_DENIED = int(ErrorCode.topic_authorization_failed)
_GROUP_DENIED = int(ErrorCode.group_authorization_failed)
_CLUSTER_DENIED = int(ErrorCode.cluster_authorization_failed)
_DENIED = frozenset({_TOPIC_DENIED, _CLUSTER_DENIED})
_UNKNOWN_TOPIC = int(ErrorCode.unknown_topic_or_partition)
_GROUP_NOT_FOUND = int(ErrorCode.group_id_not_found)
#: A topic nobody creates: the group Read probe commits an offset for it, which the broker
#: refuses (group denied, topic denied or unknown) before anything is stored.
PROBE_TOPIC = "__dcmirror.permission-probe.does-not-exist"
#: Probes per operation; Describe comes from Metadata, Delete from KIP-430 only.
PROBED = frozenset({"Create", "Write", "Read", "DescribeConfigs", "AlterConfigs", "Alter"})


async def topic_evidence(client: KafkaClient, wanted: dict[str, set[str]]) -> dict[str, Evidence]:
    """Evidence per topic; ``wanted``: topic -> the operations the link needs on it."""
    if not wanted:
        return {}
    out = await _metadata(client, sorted(wanted))
    probes: dict[str, list[str]] = {}
    for name, ops in wanted.items():
        ev = out[name]
        if ev.exists is not False and ev.operations is not None:
            continue  # KIP-430 answered
        for op in ops & PROBED:
            if op == "Create" and ev.exists:
                continue
            probes.setdefault(op, []).append(name)
    for op, names in probes.items():
        allowed = await _PROBES[op](client, names)
        for name in names:
            if name in allowed:
                out[name].probes[op] = allowed[name]
    return out


async def _metadata(client: KafkaClient, names: list[str]) -> dict[str, Evidence]:
    conn = await client.any_connection()
    version = conn.version_for(METADATA)
    body = conn.build(METADATA, {"topics": [{"name": n} for n in names], "allow_auto_topic_creation": False,
                                 "include_cluster_authorized_operations": False,
                                 "include_topic_authorized_operations": version >= 8})
    resp = await conn.send(body)
    out = {n: Evidence() for n in names}
    for t in resp.topics:
        ev = out.get(t.name)
        if ev is None:
            continue
        code = int(t.error_code)
        if code == _TOPIC_DENIED:
            ev.describe_denied = True
            ev.probes["Describe"] = False
        elif code == _UNKNOWN_TOPIC:
            ev.exists = False
            ev.probes["Describe"] = True
        elif code == 0:
            ev.exists = True
            ev.operations = decode_operations(getattr(t, "topic_authorized_operations", None))
            if ev.operations is None:
                ev.probes["Describe"] = True
        else:
            log.debug("Metadata %s: error %d", t.name, code)
    return out


def _allowed(codes: dict[str, int]) -> dict[str, bool]:
    return {n: c not in _DENIED for n, c in codes.items()}


async def _probe_create(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    conn = await client.controller()
    resp = await conn.send(conn.build(CREATE_TOPICS, {
        "topics": [{"name": n, "num_partitions": 1, "replication_factor": -1, "assignments": [], "configs": []}
                   for n in names],
        "timeout": 5000, "validate_only": True}))
    return _allowed({t.name: int(t.error_code) for t in resp.topics})


async def _probe_alter(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    conn = await client.controller()
    resp = await conn.send(conn.build(CREATE_PARTITIONS, {
        "topics": [{"name": n, "count": 1, "assignments": None} for n in names],
        "timeout": 5000, "validate_only": True}))
    return _allowed({r.name: int(r.error_code) for r in resp.results})


async def _probe_describe_configs(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    conn = await client.any_connection()
    resp = await conn.send(conn.build(DESCRIBE_CONFIGS, {
        "resources": [{"resource_type": RESOURCE_TOPIC, "resource_name": n, "configuration_keys": ["cleanup.policy"]}
                      for n in names],
        "include_synonyms": False, "include_documentation": False}))
    return _allowed({r.resource_name: int(r.error_code) for r in resp.results})


async def _probe_alter_configs(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    conn = await client.any_connection()
    resp = await conn.send(conn.build(INCREMENTAL_ALTER_CONFIGS, {
        "resources": [{"resource_type": RESOURCE_TOPIC, "resource_name": n, "configs": []} for n in names],
        "validate_only": True}))
    return _allowed({r.resource_name: int(r.error_code) for r in resp.responses})


async def _probe_read(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    """A one-byte Fetch of partition 0 by name (v12: names, not ids, so a topic that
    does not exist is still asked about)."""
    conn = await client.any_connection()
    body = conn.build(FETCH, {
        "replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 1, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": n, "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1,
                                                 "current_leader_epoch": -1, "log_start_offset": -1}]}
                   for n in names]}, 12)
    resp = await conn.send(body)
    top = int(getattr(resp, "error_code", 0))
    codes = {n: top for n in names}
    for t in resp.responses:
        for p in t.partitions:
            codes[t.topic] = top or int(p.error_code)
    return _allowed(codes)


async def _probe_write(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    """A Produce with an empty record set: denied -> TOPIC_AUTHORIZATION_FAILED; granted ->
    INVALID_RECORD (nothing written) or UNKNOWN_TOPIC_OR_PARTITION."""
    conn = await client.any_connection()
    body = conn.build(PRODUCE, {
        "transactional_id": None, "acks": 1, "timeout": 5000,
        "topic_data": [{"name": n, "partition_data": [{"index": 0, "records": b""}]} for n in names]}, 12)
    resp = await conn.send(body)
    return _allowed({t.name: int(p.error_code) for t in resp.responses for p in t.partition_responses})


_PROBES = {"Create": _probe_create, "Alter": _probe_alter, "DescribeConfigs": _probe_describe_configs,
           "AlterConfigs": _probe_alter_configs, "Read": _probe_read, "Write": _probe_write}


async def group_evidence(client: KafkaClient, groups: list[str]) -> dict[str, Evidence]:
    """Describe and KIP-430 operations per group (FindCoordinator, then DescribeGroups)."""
    out = {g: Evidence() for g in groups}
    for g in groups:
        ev = out[g]
        try:
            await client.find_coordinator(g)
        except KafkaProtocolError as exc:
            if exc.error_code == _GROUP_DENIED:
                ev.describe_denied = True
                ev.probes["Describe"] = False
                continue
            raise
        conn = await client._coordinator(g)
        resp = await conn.send(conn.build(DESCRIBE_GROUPS, {"groups": [g], "include_authorized_operations": True}))
        for d in resp.groups:
            code = int(d.error_code)
            if code == _GROUP_DENIED:
                ev.describe_denied = True
                ev.probes["Describe"] = False
            elif code in (0, _GROUP_NOT_FOUND):
                ev.probes["Describe"] = True
                ev.exists = code == 0 and (d.group_state or "").lower() not in ("dead", "")
                ev.operations = decode_operations(getattr(d, "authorized_operations", None))
        if ev.operations is None and not ev.describe_denied:
            ev.probes["Read"] = await _probe_group_read(client, g)
    return out


async def _probe_group_read(client: KafkaClient, group: str) -> bool:
    """Kafka authorizes Read on the group before it looks at the topics of an OffsetCommit;
    the one partition named is of a topic that does not exist, so nothing is committed."""
    conn = await client._coordinator(group)
    body = conn.build(OFFSET_COMMIT, {
        "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "retention_time": -1,
        "topics": [{"name": PROBE_TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 0,
                                                          "committed_leader_epoch": -1, "committed_metadata": ""}]}]},
        9)
    resp = await conn.send(body)
    codes = [int(p.error_code) for t in resp.topics for p in t.partitions]
    return _GROUP_DENIED not in codes


async def cluster_evidence(client: KafkaClient) -> Evidence:
    """KIP-430 operations on the cluster resource (DescribeCluster), if the broker says."""
    conn = await client.any_connection()
    if not conn.versions.supports(DESCRIBE_CLUSTER):
        return Evidence(exists=True)
    resp = await conn.send(conn.build(DESCRIBE_CLUSTER, {"include_cluster_authorized_operations": True,
                                                         "endpoint_type": 1}))
    if int(resp.error_code) == _CLUSTER_DENIED:
        ev = Evidence(exists=True, describe_denied=True)
    else:
        ev = Evidence(exists=True, operations=decode_operations(int(resp.cluster_authorized_operations)))
    if (ev.operations is None or "ClusterAction" not in ev.operations) and \
            conn.versions.supports(DCMIRROR_APPEND):
        # A principal without Describe on the cluster gets no operations from DescribeCluster
        # (0, as Kafka answers), which says nothing about ClusterAction: ask DcMirrorAppend.
        ev.probes["ClusterAction"] = await _probe_cluster_action(conn)
    return ev


async def _probe_cluster_action(conn) -> bool:
    """DcMirrorAppend to a topic that does not exist: denied -> CLUSTER_AUTHORIZATION_FAILED;
    granted -> UNKNOWN_TOPIC_OR_PARTITION, nothing written (the topic is not there)."""
    name = f"__dcmirror.check-probe.{uuid.uuid4().hex}"
    body = build(codec.request_schema(DCMIRROR_APPEND, 0), {
        "transactional_id": None, "acks": 1, "timeout": 5000,
        "topic_data": [{"name": name, "partition_data": [{"index": 0, "records": b""}]}]})
    resp = await conn.send(body, api_key=DCMIRROR_APPEND, api_version=0)
    return all(int(p.error_code) != _CLUSTER_DENIED for t in resp.responses for p in t.partition_responses)
