"""Topic configuration keys users and mirrors care about: defaults, validation, log settings.

Pure data and functions. The table follows Apache Kafka's names and defaults so that
DescribeConfigs answers look like Kafka's and mirrored configs mean the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cluster.log.config import LogConfig
from cluster.wire.dcmirror_api import FENCED, MIRROR_SOURCE


class InvalidConfig(ValueError):
    """A config value or key the broker refuses (Kafka's INVALID_CONFIG)."""


@dataclass(frozen=True)
class ConfigKey:
    name: str
    default: str
    kind: str  # "long" | "int" | "string" | "list" | "boolean"
    check: Callable[[str], str | None] | None = None  # returns an error sentence or None
    read_only: bool = False


def _long_at_least(minimum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            n = int(value)
        except ValueError:
            return f"must be an integer, got {value!r}"
        if n < minimum:
            return f"must be at least {minimum}, got {n}"
        return None

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(choices)}, got {value!r}"
        return None

    return check


def _cleanup_policy(value: str) -> str | None:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or any(p not in ("delete", "compact") for p in parts):
        return f"must be delete and/or compact, got {value!r}"
    return None


def _ratio(value: str) -> str | None:
    try:
        x = float(value)
    except ValueError:
        return f"must be a number, got {value!r}"
    if not 0.0 <= x <= 1.0:
        return f"must be between 0 and 1, got {value}"
    return None


def policies(value: str) -> set[str]:
    """The parts of a cleanup.policy value: {"delete"}, {"compact"} or both."""
    return {p.strip() for p in value.split(",") if p.strip()}


DEFAULT_MAX_MESSAGE_BYTES = 1048588
DEFAULT_TS_AFTER_MAX_MS = 3_600_000  # Kafka 4.x default
DEFAULT_TS_BEFORE_MAX_MS = 2**63 - 1

TOPIC_CONFIGS: dict[str, ConfigKey] = {
    k.name: k
    for k in [
        ConfigKey("retention.ms", str(7 * 24 * 3600 * 1000), "long", _long_at_least(-1)),
        ConfigKey("retention.bytes", "-1", "long", _long_at_least(-1)),
        ConfigKey("segment.bytes", str(1 << 30), "int", _long_at_least(14)),
        ConfigKey("segment.ms", str(7 * 24 * 3600 * 1000), "long", _long_at_least(1)),
        ConfigKey("segment.index.bytes", str(10 * 1024 * 1024), "int", _long_at_least(4)),
        ConfigKey("index.interval.bytes", "4096", "int", _long_at_least(0)),
        ConfigKey("cleanup.policy", "delete", "list", _cleanup_policy),
        ConfigKey("max.message.bytes", str(DEFAULT_MAX_MESSAGE_BYTES), "int", _long_at_least(0)),
        ConfigKey(
            "message.timestamp.type", "CreateTime", "string", _one_of("CreateTime", "LogAppendTime")
        ),
        ConfigKey(
            "compression.type",
            "producer",
            "string",
            _one_of("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
        ),
        ConfigKey("delete.retention.ms", str(24 * 3600 * 1000), "long", _long_at_least(0)),
        ConfigKey("min.compaction.lag.ms", "0", "long", _long_at_least(0)),
        ConfigKey("max.compaction.lag.ms", str(2**63 - 1), "long", _long_at_least(1)),
        # Kafka's type is DOUBLE; described as a string until configs.py knows doubles.
        ConfigKey("min.cleanable.dirty.ratio", "0.5", "string", _ratio),
        ConfigKey("min.insync.replicas", "1", "int", _long_at_least(1)),
        ConfigKey("message.timestamp.after.max.ms", str(DEFAULT_TS_AFTER_MAX_MS), "long", _long_at_least(0)),
        ConfigKey("message.timestamp.before.max.ms", str(DEFAULT_TS_BEFORE_MAX_MS), "long", _long_at_least(0)),
        ConfigKey("flush.messages", str(2**63 - 1), "long", _long_at_least(1)),
        ConfigKey("flush.ms", str(2**63 - 1), "long", _long_at_least(0)),
        ConfigKey("file.delete.delay.ms", "60000", "long", _long_at_least(0)),
        ConfigKey("unclean.leader.election.enable", "false", "boolean", _one_of("true", "false")),
        ConfigKey(MIRROR_SOURCE, "", "string", None),
        ConfigKey(FENCED, "", "string", None),  # failover: refuse producers
    ]
}
"""Keys we accept. `dcmirror.mirror.source` marks a topic as a read-only mirror target."""


def validate(configs: dict[str, str | None]) -> dict[str, str]:
    """Check keys and values; returns the non-null entries. Raises InvalidConfig."""
    out: dict[str, str] = {}
    for name, value in configs.items():
        key = TOPIC_CONFIGS.get(name)
        if key is None:
            raise InvalidConfig(f"unknown topic config {name!r}")
        if value is None:
            continue
        if key.check is not None:
            problem = key.check(value)
            if problem:
                raise InvalidConfig(f"{name} {problem}")
        out[name] = value
    return out


def effective(overrides: dict[str, str]) -> dict[str, str]:
    """All known keys with the overrides applied."""
    return {name: overrides.get(name, key.default) for name, key in TOPIC_CONFIGS.items()}


def log_config(overrides: dict[str, str], fsync: str, fsync_interval_ms: int) -> LogConfig:
    """Translate topic configs to the log's own settings."""
    eff = effective(overrides)
    policy = policies(eff["cleanup.policy"])
    return LogConfig(
        segment_bytes=int(eff["segment.bytes"]),
        segment_ms=int(eff["segment.ms"]),
        retention_ms=int(eff["retention.ms"]),
        retention_bytes=int(eff["retention.bytes"]),
        index_interval_bytes=int(eff["index.interval.bytes"]),
        fsync=fsync,
        fsync_interval_ms=fsync_interval_ms,
        message_timestamp_type=eff["message.timestamp.type"],
        delete="delete" in policy,
        compact="compact" in policy,
        min_cleanable_dirty_ratio=float(eff["min.cleanable.dirty.ratio"]),
        min_compaction_lag_ms=int(eff["min.compaction.lag.ms"]),
        max_compaction_lag_ms=int(eff["max.compaction.lag.ms"]),
        delete_retention_ms=int(eff["delete.retention.ms"]),
    )
