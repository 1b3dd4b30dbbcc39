"""What the client's principal may do: KIP-430 authorized operations and harmless probes.

KIP-430 first: Metadata v8+ with ``include_topic_authorized_operations``, DescribeGroups
with ``include_authorized_operations``, DescribeCluster with
``include_cluster_authorized_operations``; each answers an error code and the operations
bit field as the broker sent it (None where it sent none; decoding it is the caller's).
Where that says nothing, probes: requests the broker authorizes before it looks at
anything else, so the answer is an authorization error exactly when the operation is
denied, and that change nothing when it is granted. Each returns the raw error codes; the
create, alter and alter-configs probes are `create_topics` / `create_partitions` /
`incremental_alter_configs` with ``validate_only``, and the ClusterAction probe is
`append_request` (dcmirror clusters only).
"""

from __future__ import annotations

import logging

from .groups import DESCRIBE_GROUPS, OFFSET_COMMIT, GroupsMixin

log = logging.getLogger(__name__)

PRODUCE, FETCH, METADATA, DESCRIBE_CONFIGS, DESCRIBE_CLUSTER = 0, 1, 3, 32, 60
RESOURCE_TOPIC = 2
#: ask for partition 0 of each topic, by name: Fetch v13+ names topics by id, Produce v13+ too
_BY_NAME = 12


class AuthzMixin(GroupsMixin):
    async def topic_authorized_operations(self, names: list[str]) -> dict[str, tuple[int, int | None]]:
        """{topic: (Metadata error code, KIP-430 operations or None)}; never auto-creates."""

        async def once() -> dict[str, tuple[int, int | None]]:
            conn = await self.any_connection()
            body = conn.build(METADATA, {
                "topics": [{"name": n} for n in names], "allow_auto_topic_creation": False,
                "include_cluster_authorized_operations": False,
                "include_topic_authorized_operations": conn.version_for(METADATA) >= 8})
            resp = await conn.send(body)
            return {t.name: (int(t.error_code), getattr(t, "topic_authorized_operations", None))
                    for t in resp.topics if t.name in names}

        return await self.retrying(once, "Metadata")

    async def group_authorized_operations(self, group: str) -> tuple[int, str, int | None]:
        """(DescribeGroups error code, group state, KIP-430 operations or None) from the
        group's coordinator (`find_coordinator` first: its refusal is the caller's answer)."""

        async def once() -> tuple[int, str, int | None]:
            conn = await self._coordinator(group)
            resp = await conn.send(conn.build(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": True}))
            d = resp.groups[0]
            return int(d.error_code), d.group_state or "", getattr(d, "authorized_operations", None)

        return await self.retrying(once, "DescribeGroups")

    async def cluster_authorized_operations(self) -> tuple[int, int | None] | None:
        """(DescribeCluster error code, KIP-430 operations on the cluster), or None where
        the broker has no DescribeCluster (Kafka before 2.8)."""

        async def once() -> tuple[int, int | None] | None:
            conn = await self.any_connection()
            if not conn.versions.supports(DESCRIBE_CLUSTER):
                return None
            resp = await conn.send(conn.build(DESCRIBE_CLUSTER, {"include_cluster_authorized_operations": True,
                                                                 "endpoint_type": 1}))
            return int(resp.error_code), int(resp.cluster_authorized_operations)

        return await self.retrying(once, "DescribeCluster")

    async def probe_describe_configs(self, names: list[str]) -> dict[str, int]:
        """{topic: DescribeConfigs error code} asking for one config of each."""

        async def once() -> dict[str, int]:
            conn = await self.any_connection()
            resp = await conn.send(conn.build(DESCRIBE_CONFIGS, {
                "resources": [{"resource_type": RESOURCE_TOPIC, "resource_name": n,
                               "configuration_keys": ["cleanup.policy"]} for n in names],
                "include_synonyms": False, "include_documentation": False}))
            return {r.resource_name: int(r.error_code) for r in resp.results}

        return await self.retrying(once, "DescribeConfigs")

    async def probe_fetch(self, names: list[str]) -> dict[str, int]:
        """{topic: error code} of a one-byte Fetch of partition 0 by name (so a topic that
        does not exist is still asked about); a request-level error counts for every topic."""

        async def once() -> dict[str, int]:
            conn = await self.any_connection()
            body = conn.build(FETCH, {
                "replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 1, "isolation_level": 0,
                "session_id": 0, "session_epoch": -1,
                "topics": [{"topic": n, "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1,
                                                         "current_leader_epoch": -1, "log_start_offset": -1}]}
                           for n in names]}, _BY_NAME)
            resp = await conn.send(body)
            top = int(getattr(resp, "error_code", 0))
            codes = {n: top for n in names}
            for t in resp.responses:
                for p in t.partitions:
                    codes[t.topic] = top or int(p.error_code)
            return codes

        return await self.retrying(once, "Fetch")

    async def probe_produce(self, names: list[str]) -> dict[str, int]:
        """{topic: error code} of a Produce with an empty record set to partition 0: Kafka
        checks Write first, then refuses the empty set (INVALID_RECORD), writing nothing."""

        async def once() -> dict[str, int]:
            conn = await self.any_connection()
            body = conn.build(PRODUCE, {
                "transactional_id": None, "acks": 1, "timeout": 5000,
                "topic_data": [{"name": n, "partition_data": [{"index": 0, "records": b""}]} for n in names]},
                _BY_NAME)
            resp = await conn.send(body)
            return {t.name: int(p.error_code) for t in resp.responses for p in t.partition_responses}

        return await self.retrying(once, "Produce")

    async def probe_offset_commit(self, group: str, topic: str) -> list[int]:
        """Error codes of a simple OffsetCommit of ``topic``-0 for ``group``: Kafka checks
        Read on the group before it looks at the topic, so with a topic that does not
        exist the answer is a group or topic refusal and nothing is committed."""

        async def once() -> list[int]:
            conn = await self._coordinator(group)
            body = conn.build(OFFSET_COMMIT, {
                "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "",
                "group_instance_id": None, "retention_time": -1,
                "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 0,
                                                           "committed_leader_epoch": -1,
                                                           "committed_metadata": ""}]}]}, 9)
            resp = await conn.send(body)
            return [int(p.error_code) for t in resp.topics for p in t.partitions]

        return await self.retrying(once, "OffsetCommit")
