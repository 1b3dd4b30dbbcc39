"""`KafkaClient`: the one object the mirror, tools and tests use to talk to a cluster.

It is the union of the pieces, each in its own module: connections, metadata and routing
(core), raw-batch produce/fetch and offsets (data), pipelined writes of many partitions
(pipeline), administration (admin), group offsets (groups), what the principal may do
(authz) and dcmirror's private append/truncate (dcmirror). It talks to our broker,
Apache Kafka and Tansu alike, negotiating API versions per broker.
"""

from __future__ import annotations

from .admin import AdminMixin
from .authz import AuthzMixin
from .data import DataMixin
from .dcmirror import DcMirrorMixin
from .groups import GroupsMixin
from .pipeline import PipelineMixin


class KafkaClient(DataMixin, PipelineMixin, AdminMixin, AuthzMixin, GroupsMixin, DcMirrorMixin):
    """asyncio client for any Kafka-protocol cluster.

        async with KafkaClient("127.0.0.1:9092") as client:
            await client.create_topics([NewTopic("t", 3)])
            await client.produce("t", 0, batch_bytes)

    core:   start, close, metadata, cached_metadata, leader, connection, any_connection,
            controller, invalidate, retrying, by_leader
    data:   produce, fetch, list_offsets, offsets_at, end_offsets, start_offsets, offset_ranges,
            offset_for_leader_epoch, init_producer_id
    pipeline: produce_rounds, append_rounds (many partitions' batches, pipelined by leader)
    admin:  list_topics, describe_cluster, create_topics, delete_topics, create_partitions,
            describe_configs, incremental_alter_configs, alter_configs, delete_records
    groups: find_coordinator, offset_fetch, offset_commit, list_groups, describe_groups,
            delete_groups
    authz:  topic_authorized_operations, group_authorized_operations, cluster_authorized_operations,
            probe_describe_configs, probe_fetch, probe_produce, probe_offset_commit
    dcmirror: is_dcmirror, append_batches, append_request, truncate (dcmirror clusters only)
    """

    async def __aenter__(self) -> "KafkaClient":
        await self.start()
        return self
