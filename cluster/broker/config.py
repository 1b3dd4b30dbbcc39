"""Settings of one broker process (one node of a dcmirror cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster.wire.framing import DEFAULT_MAX_FRAME


@dataclass
class BrokerConfig:
    name: str
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    advertised_host: str | None = None
    node_id: int = 1
    auto_create_topics: bool = True
    default_partitions: int = 1
    fsync: str = "never"  # always | interval | never: see README "Durability"
    fsync_interval_ms: int = 1000
    max_request_bytes: int = DEFAULT_MAX_FRAME
    retention_check_interval_ms: int = 30_000
    default_topic_configs: dict[str, str] = field(default_factory=dict)

    @property
    def advertised(self) -> str:
        return self.advertised_host or self.host
