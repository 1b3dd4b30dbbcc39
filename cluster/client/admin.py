"""Topic, config, record-deletion and cluster administration.

Requests Kafka only accepts on the controller (CreateTopics, DeleteTopics,
CreatePartitions) go there; KRaft brokers forward them anyway, so the controller id from
Metadata is a routing hint, and NOT_CONTROLLER is retried after a refresh. Mutations raise
on the first failed resource unless `raise_errors=False`, which returns the per-resource
errors instead (the mirror's topic applier wants "already exists" as data, not an exception).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from .connection import BrokerConnection
from .core import TP, ClientCore
from .errors import KafkaProtocolError, check
from .metadata import BrokerInfo, TopicMetadata

log = logging.getLogger(__name__)

CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS = 19, 20, 21
DESCRIBE_CONFIGS, ALTER_CONFIGS, CREATE_PARTITIONS = 32, 33, 37
INCREMENTAL_ALTER_CONFIGS, DESCRIBE_CLUSTER = 44, 60
RESOURCE_TOPIC = 2
OP_SET, OP_DELETE = 0, 1
#: DescribeConfigs config_source values (Kafka's ConfigSource enum)
SOURCE_UNKNOWN, SOURCE_TOPIC, SOURCE_DEFAULT = 0, 1, 5


@dataclass(frozen=True)
class NewTopic:
    name: str
    num_partitions: int
    replication_factor: int = 1
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigEntry:
    value: str | None
    source: int  # Kafka ConfigSource: 1 topic override, 4 static broker, 5 default, ...
    read_only: bool = False
    sensitive: bool = False

    @property
    def is_default(self) -> bool:
        """Not set on the topic itself (inherited from broker config or Kafka's default)."""
        return self.source != SOURCE_TOPIC


@dataclass(frozen=True)
class ClusterDescription:
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, BrokerInfo]


def _results(
    items: list[tuple[str, int, str | None]], what: str, raise_errors: bool, ok: frozenset[int] = frozenset()
) -> dict[str, KafkaProtocolError | None]:
    out: dict[str, KafkaProtocolError | None] = {}
    for name, code, message in items:
        out[name] = None if code == 0 or code in ok else KafkaProtocolError(code, message, context=f"{what} {name}")
    if raise_errors:
        for err in out.values():
            if err is not None:
                raise err
    return out


def _reroute(items: list[tuple[str, int, str | None]]) -> None:
    """Raise a retriable error if any resource came back NOT_CONTROLLER or similar."""
    for name, code, message in items:
        if code in (ErrorCode.not_controller,):
            raise KafkaProtocolError(code, message, context=name)


class AdminMixin(ClientCore):
    @property
    def _admin_timeout_ms(self) -> int:
        return int(self.request_timeout_s * 1000)

    async def list_topics(self, *, include_internal: bool = False) -> dict[str, TopicMetadata]:
        meta = await self.metadata()
        return {n: t for n, t in sorted(meta.topics.items()) if include_internal or not t.is_internal}

    async def describe_cluster(self) -> ClusterDescription:
        """From DescribeCluster where offered (Kafka 2.8+), else from Metadata."""

        async def once() -> ClusterDescription:
            conn = await self.any_connection()
            if not conn.versions.supports(DESCRIBE_CLUSTER):
                meta = await self._metadata_once(None)
                return ClusterDescription(meta.cluster_id, meta.controller_id, dict(meta.brokers))
            resp = await conn.send(conn.build(DESCRIBE_CLUSTER, {"endpoint_type": 1}))
            check(resp.error_code, resp.error_message, context="DescribeCluster")
            brokers = {
                int(b.broker_id): BrokerInfo(int(b.broker_id), b.host, int(b.port), b.rack) for b in resp.brokers
            }
            return ClusterDescription(resp.cluster_id, int(resp.controller_id), brokers)

        return await self.retrying(once, "DescribeCluster")

    async def create_topics(
        self, topics: list[NewTopic], validate_only: bool = False, *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        async def once() -> list[tuple[str, int, str | None]]:
            conn = await self.controller()
            body = conn.build(
                CREATE_TOPICS,
                {
                    "topics": [
                        {"name": t.name, "num_partitions": t.num_partitions, "replication_factor": t.replication_factor,
                         "assignments": [], "configs": [{"name": k, "value": v} for k, v in t.configs.items()]}
                        for t in topics
                    ],
                    "timeout": self._admin_timeout_ms,
                    "validate_only": validate_only,
                },
            )
            resp = await conn.send(body)
            items = [(t.name, int(t.error_code), getattr(t, "error_message", None)) for t in resp.topics]
            _reroute(items)
            return items

        items = await self.retrying(once, "CreateTopics")
        self.invalidate()
        return _results(items, "CreateTopics", raise_errors)

    async def delete_topics(
        self, names: list[str], *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        async def once() -> list[tuple[str, int, str | None]]:
            conn = await self.controller()
            body = conn.build(
                DELETE_TOPICS,
                {"topic_names": list(names), "topics": [{"name": n} for n in names], "timeout": self._admin_timeout_ms},
            )
            resp = await conn.send(body)
            items = [(r.name, int(r.error_code), getattr(r, "error_message", None)) for r in resp.responses]
            _reroute(items)
            return items

        items = await self.retrying(once, "DeleteTopics")
        self.invalidate()
        return _results(items, "DeleteTopics", raise_errors)

    async def create_partitions(
        self, new_totals: dict[str, int], validate_only: bool = False, *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        async def once() -> list[tuple[str, int, str | None]]:
            conn = await self.controller()
            body = conn.build(
                CREATE_PARTITIONS,
                {
                    "topics": [{"name": t, "count": n, "assignments": None} for t, n in new_totals.items()],
                    "timeout": self._admin_timeout_ms,
                    "validate_only": validate_only,
                },
            )
            resp = await conn.send(body)
            items = [(r.name, int(r.error_code), r.error_message) for r in resp.results]
            _reroute(items)
            return items

        items = await self.retrying(once, "CreatePartitions")
        self.invalidate()
        return _results(items, "CreatePartitions", raise_errors)

    async def describe_configs(
        self, topics: list[str], keys: list[str] | None = None
    ) -> dict[str, dict[str, ConfigEntry]]:
        """{topic: {config name: ConfigEntry}} for topic resources."""

        async def once() -> dict[str, dict[str, ConfigEntry]]:
            conn = await self.any_connection()
            body = conn.build(
                DESCRIBE_CONFIGS,
                {
                    "resources": [
                        {"resource_type": RESOURCE_TOPIC, "resource_name": t, "configuration_keys": keys}
                        for t in topics
                    ],
                    "include_synonyms": False,
                    "include_documentation": False,
                },
            )
            resp = await conn.send(body)
            out: dict[str, dict[str, ConfigEntry]] = {}
            for r in resp.results:
                check(r.error_code, r.error_message, context=f"DescribeConfigs {r.resource_name}")
                entries = {}
                for c in r.configs:
                    source = getattr(c, "config_source", None)
                    if source is None:  # v0 only says whether it is the default
                        source = SOURCE_DEFAULT if getattr(c, "is_default", False) else SOURCE_TOPIC
                    entries[c.name] = ConfigEntry(c.value, int(source), bool(c.read_only), bool(c.is_sensitive))
                out[r.resource_name] = entries
            return out

        return await self.retrying(once, "DescribeConfigs")

    async def _alter(
        self, api_key: int, resources: list[dict], validate_only: bool, raise_errors: bool, what: str
    ) -> dict[str, KafkaProtocolError | None]:
        async def once() -> list[tuple[str, int, str | None]]:
            conn = await self.controller()
            resp = await conn.send(conn.build(api_key, {"resources": resources, "validate_only": validate_only}))
            items = [(r.resource_name, int(r.error_code), r.error_message) for r in resp.responses]
            _reroute(items)
            return items

        return _results(await self.retrying(once, what), what, raise_errors)

    async def incremental_alter_configs(
        self, changes: dict[str, dict[str, str | None]], validate_only: bool = False, *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        """Set (value) or delete (None) individual topic configs, leaving others alone."""
        resources = [
            {"resource_type": RESOURCE_TOPIC, "resource_name": topic, "configs": [
                {"name": k, "config_operation": OP_DELETE if v is None else OP_SET, "value": v}
                for k, v in configs.items()
            ]}
            for topic, configs in changes.items()
        ]
        return await self._alter(INCREMENTAL_ALTER_CONFIGS, resources, validate_only, raise_errors,
                                 "IncrementalAlterConfigs")

    async def alter_configs(
        self, configs: dict[str, dict[str, str]], validate_only: bool = False, *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        """Replace each topic's whole set of overrides (legacy AlterConfigs semantics)."""
        resources = [
            {"resource_type": RESOURCE_TOPIC, "resource_name": topic,
             "configs": [{"name": k, "value": v} for k, v in cfg.items()]}
            for topic, cfg in configs.items()
        ]
        return await self._alter(ALTER_CONFIGS, resources, validate_only, raise_errors, "AlterConfigs")

    async def delete_records(self, before: dict[TP, int]) -> dict[TP, int]:
        """Advance log start offsets (records before `offset` become unreadable); -1 means
        the high watermark. Returns {(topic, partition): new low watermark}."""

        async def per_broker(conn: BrokerConnection, tps: list[TP]) -> dict[TP, int]:
            body = conn.build(DELETE_RECORDS, cut_request(before, tps, self._admin_timeout_ms))
            return low_watermarks(self, await conn.send(body), "DeleteRecords")

        return await self.retrying(lambda: self.by_leader(list(before), per_broker), "DeleteRecords")


def low_watermarks(client: ClientCore, resp, what: str) -> dict[TP, int]:
    """{tp: new log start} from a DeleteRecords-shaped reply, raising for a failed partition."""
    out = {}
    for t in resp.topics:
        for p in t.partitions:
            client.check_partition(p.error_code, context=f"{what} {t.name}-{p.partition_index}")
            out[(t.name, int(p.partition_index))] = int(p.low_watermark)
    return out


def cut_request(offsets: dict[TP, int], tps: list[TP], timeout_ms: int) -> dict:
    """The body of a DeleteRecords-shaped request cutting ``tps`` at ``offsets``."""
    by_topic: dict[str, list[dict]] = {}
    for t, p in tps:
        by_topic.setdefault(t, []).append({"partition_index": p, "offset": offsets[(t, p)]})
    return {"topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()], "timeout": timeout_ms}
