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

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaProtocolError
from mirror.preflight.permissions import Evidence, decode_operations

log = logging.getLogger(__name__)

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
    out = {n: Evidence() for n in names}
    for name, (code, operations) in (await client.topic_authorized_operations(names)).items():
        ev = out[name]
        if code == _TOPIC_DENIED:
            ev.describe_denied = True
            ev.probes["Describe"] = False
        elif code == _UNKNOWN_TOPIC:
            ev.exists = False
            ev.probes["Describe"] = True
        elif code == 0:
            ev.exists = True
            ev.operations = decode_operations(operations)
            if ev.operations is None:
                ev.probes["Describe"] = True
        else:
            log.debug("Metadata %s: error %d", name, code)
    return out


def _allowed(codes: dict[str, int]) -> dict[str, bool]:
    return {n: c not in _DENIED for n, c in codes.items()}


def _allowed_errors(errors: dict[str, KafkaProtocolError | None]) -> dict[str, bool]:
    """`_allowed` for an admin call's per-resource errors (None: accepted)."""
    return _allowed({n: 0 if e is None else int(e.error_code) for n, e in errors.items()})


async def _probe_create(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    return _allowed_errors(await client.create_topics([NewTopic(n, 1, -1) for n in names], validate_only=True,
                                                      raise_errors=False))


async def _probe_alter(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    return _allowed_errors(await client.create_partitions({n: 1 for n in names}, validate_only=True,
                                                          raise_errors=False))


async def _probe_describe_configs(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    return _allowed(await client.probe_describe_configs(names))


async def _probe_alter_configs(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    return _allowed_errors(await client.incremental_alter_configs({n: {} for n in names}, validate_only=True,
                                                                  raise_errors=False))


async def _probe_read(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    return _allowed(await client.probe_fetch(names))


async def _probe_write(client: KafkaClient, names: list[str]) -> dict[str, bool]:
    """Denied -> TOPIC_AUTHORIZATION_FAILED; granted -> INVALID_RECORD (nothing written)
    or UNKNOWN_TOPIC_OR_PARTITION."""
    return _allowed(await client.probe_produce(names))


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
        code, state, operations = await client.group_authorized_operations(g)
        if code == _GROUP_DENIED:
            ev.describe_denied = True
            ev.probes["Describe"] = False
        elif code in (0, _GROUP_NOT_FOUND):
            ev.probes["Describe"] = True
            ev.exists = code == 0 and state.lower() not in ("dead", "")
            ev.operations = decode_operations(operations)
        if ev.operations is None and not ev.describe_denied:
            # Read on the group is checked before the topics of an OffsetCommit; the one
            # partition named is of a topic that does not exist, so nothing is committed.
            ev.probes["Read"] = _GROUP_DENIED not in await client.probe_offset_commit(g, PROBE_TOPIC)
    return out


async def cluster_evidence(client: KafkaClient) -> Evidence:
    """KIP-430 operations on the cluster resource (DescribeCluster), if the broker says."""
    described = await client.cluster_authorized_operations()
    if described is None:
        return Evidence(exists=True)
    code, operations = described
    if code == _CLUSTER_DENIED:
        ev = Evidence(exists=True, describe_denied=True)
    else:
        ev = Evidence(exists=True, operations=decode_operations(operations))
    if (ev.operations is None or "ClusterAction" not in ev.operations) and await client.is_dcmirror():
        # A principal without Describe on the cluster gets no operations from DescribeCluster
        # (0, as Kafka answers), which says nothing about ClusterAction: ask DcMirrorAppend.
        ev.probes["ClusterAction"] = await _probe_cluster_action(client)
    return ev


async def _probe_cluster_action(client: KafkaClient) -> bool:
    """DcMirrorAppend to a topic that does not exist: denied -> CLUSTER_AUTHORIZATION_FAILED;
    granted -> UNKNOWN_TOPIC_OR_PARTITION, nothing written (the topic is not there)."""
    name = f"__dcmirror.check-probe.{uuid.uuid4().hex}"
    codes = await client.append_request({name: [(0, b"")]}, acks=1, timeout_ms=5000)
    return all(code != _CLUSTER_DENIED for code, _ in codes.values())
