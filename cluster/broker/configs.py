"""Config resources shared by DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.

Resource types follow Kafka: 2 = topic, 4 = broker. Sources: 1 = DYNAMIC_TOPIC_CONFIG,
4 = STATIC_BROKER_CONFIG, 5 = DEFAULT_CONFIG. Config types: 2 = BOOLEAN, 3 = STRING,
4 = INT, 5 = LONG, 7 = LIST.

Authorization as KafkaApis: DescribeConfigs/AlterConfigs on the topic, or on the cluster for
the broker resource. Changing a `dcmirror.*` config (the markers that let MirrorAppend and
MirrorTruncate act on a topic) also needs ClusterAction on the cluster, so AlterConfigs on
a topic is not enough to turn an ordinary topic into one the mirror APIs may cut.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz, topic_config
from cluster.broker.config import CONNECTION_SETTINGS
from cluster.wire.dcmirror_api import CONFIG_PREFIX

TOPIC, BROKER = 2, 4
SOURCE_TOPIC, SOURCE_STATIC_BROKER, SOURCE_DEFAULT = 1, 4, 5
_TYPES = {"boolean": 2, "string": 3, "int": 4, "long": 5, "list": 7}
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


class ConfigProblem(Exception):
    def __init__(self, code: int, message: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def broker_configs(broker) -> dict[str, tuple[str, str]]:
    """name -> (value, kind) of the broker settings tools ask about."""
    c = broker.config
    return {
        "broker.id": (str(broker.node_id), "int"),
        "node.id": (str(broker.node_id), "int"),
        "auto.create.topics.enable": (str(c.auto_create_topics).lower(), "boolean"),
        "num.partitions": (str(c.default_partitions), "int"),
        "log.dirs": (str(broker.data_dir), "string"),
        "socket.request.max.bytes": (str(c.max_request_bytes), "int"),
        "fetch.max.bytes": (str(c.fetch_max_bytes), "int"),
        "offsets.retention.minutes": (str(c.offsets_retention_minutes), "int"),
        "group.initial.rebalance.delay.ms": (str(c.group_initial_rebalance_delay_ms), "int"),
        "max.incremental.fetch.session.cache.slots": (str(c.max_incremental_fetch_session_cache_slots), "int"),
        "message.max.bytes": (str(topic_config.DEFAULT_MAX_MESSAGE_BYTES), "int"),
        "default.replication.factor": ("1", "int"),
        "min.insync.replicas": ("1", "int"),
        "dcmirror.log.fsync": (c.fsync, "string"),
        **{key: (str(getattr(c, name)), "long" if "bytes" in key or key.endswith(".ms") else "int")
           for name, (key, _) in CONNECTION_SETTINGS.items()},
        "dcmirror.max.partitions": (str(c.max_partitions), "int"),
    }


def _denied(broker, resource_type: int, name: str, op: authz.Operation) -> int:
    """The authorization error for a config resource, or 0 (KafkaApis/ConfigHelper)."""
    if resource_type == TOPIC and not authz.allowed(broker, op, authz.TOPIC, name):
        return ErrorCode.topic_authorization_failed
    if resource_type == BROKER and not authz.allowed_cluster(broker, op):
        return ErrorCode.cluster_authorization_failed
    return 0


PRIVATE_PREFIX = CONFIG_PREFIX
PRIVATE_CONFIG_REFUSED = ("dcmirror.* topic configs mark mirror topics; setting or removing them needs "
                          "ClusterAction on the cluster")


def private_change(old: dict[str, str], new: dict[str, str]) -> bool:
    """Does the change set, alter or remove a dcmirror.* config (the mirror markers)?"""
    keys = {k for k in (*old, *new) if k.startswith(PRIVATE_PREFIX)}
    return any(old.get(k) != new.get(k) for k in keys)


def describe(broker, resource_type: int, name: str, keys, synonyms: bool) -> dict:
    base = {"resource_type": resource_type, "resource_name": name, "error_message": None}
    entries = []
    if code := _denied(broker, resource_type, name, authz.Op.DESCRIBE_CONFIGS):
        return {**base, "error_code": code, "configs": []}
    if resource_type == TOPIC:
        meta = broker.topic(name)
        if meta is None:
            return {**base, "error_code": ErrorCode.unknown_topic_or_partition,
                    "error_message": f"topic {name} does not exist", "configs": []}
        for key, spec in topic_config.TOPIC_CONFIGS.items():
            if key.startswith("dcmirror.") and key not in meta.configs:
                continue
            value = meta.configs.get(key, spec.default)
            source = SOURCE_TOPIC if key in meta.configs else SOURCE_DEFAULT
            entries.append((key, value, spec.kind, source, spec.read_only))
    elif resource_type == BROKER:
        if name not in ("", str(broker.node_id)):
            return {**base, "error_code": ErrorCode.invalid_request,
                    "error_message": f"broker {name} is not this node", "configs": []}
        for key, (value, kind) in broker_configs(broker).items():
            entries.append((key, value, kind, SOURCE_STATIC_BROKER, True))
    else:
        return {**base, "error_code": ErrorCode.invalid_request,
                "error_message": f"resource type {resource_type} is not supported", "configs": []}
    wanted = set(keys) if keys else None
    configs = []
    for key, value, kind, source, read_only in entries:
        if wanted is not None and key not in wanted:
            continue
        configs.append({
            "name": key, "value": value, "read_only": read_only, "config_source": source,
            "is_sensitive": False,
            "synonyms": [{"name": key, "value": value, "source": source}] if synonyms else [],
            "config_type": _TYPES[kind], "documentation": None,
        })
    return {**base, "error_code": 0, "configs": configs}


def apply_topic_configs(broker, name: str, new: dict[str, str], validate_only: bool) -> None:
    """Validate and store a topic's complete override set. Raises ConfigProblem."""
    if broker.topic(name) is None:
        raise ConfigProblem(ErrorCode.unknown_topic_or_partition, f"topic {name} does not exist")
    try:
        checked = topic_config.validate(new)
    except topic_config.InvalidConfig as exc:
        raise ConfigProblem(ErrorCode.invalid_config, str(exc)) from None
    if not validate_only:
        broker.set_topic_configs(name, checked)


def incremental(current: dict[str, str], ops) -> dict[str, str]:
    """Apply IncrementalAlterConfigs operations to a copy of `current`."""
    out = dict(current)
    for op in ops:
        if op.config_operation == SET:
            out[op.name] = op.value
        elif op.config_operation == DELETE:
            out.pop(op.name, None)
        elif op.config_operation in (APPEND, SUBTRACT):
            spec = topic_config.TOPIC_CONFIGS.get(op.name)
            if spec is None or spec.kind != "list":
                raise ConfigProblem(ErrorCode.invalid_config,
                                    f"{op.name} is not a list config; APPEND/SUBTRACT need one")
            items = [x for x in out.get(op.name, spec.default).split(",") if x]
            change = [x for x in (op.value or "").split(",") if x]
            if op.config_operation == APPEND:
                items += [x for x in change if x not in items]
            else:
                items = [x for x in items if x not in change]
            out[op.name] = ",".join(items)
        else:
            raise ConfigProblem(ErrorCode.invalid_request,
                                f"unknown config operation {op.config_operation}")
    return out


def alter_topics(broker, req, new_configs) -> dict:
    """Shared body of AlterConfigs and IncrementalAlterConfigs: per resource, compute the
    topic's complete new override set with `new_configs(meta, resource)` and store it;
    one catalogue write for the whole request."""
    out = []
    with broker.topic_batch():
        for r in req.resources:
            base = {"resource_type": r.resource_type, "resource_name": r.resource_name}
            try:
                if code := _denied(broker, r.resource_type, r.resource_name, authz.Op.ALTER_CONFIGS):
                    raise ConfigProblem(code, None)
                if r.resource_type != TOPIC:
                    raise ConfigProblem(ErrorCode.invalid_request, "only topic configs can be altered")
                meta = broker.topic(r.resource_name)
                if meta is None:
                    raise ConfigProblem(ErrorCode.unknown_topic_or_partition,
                                        f"topic {r.resource_name} does not exist")
                new = new_configs(meta, r)
                if private_change(meta.configs, new) and not authz.allowed_cluster(
                        broker, authz.Op.CLUSTER_ACTION):
                    raise ConfigProblem(ErrorCode.cluster_authorization_failed, PRIVATE_CONFIG_REFUSED)
                apply_topic_configs(broker, r.resource_name, new, req.validate_only)
            except ConfigProblem as exc:
                out.append({**base, "error_code": exc.code, "error_message": exc.message})
                continue
            out.append({**base, "error_code": 0, "error_message": None})
    return {"throttle_time": 0, "responses": out}
