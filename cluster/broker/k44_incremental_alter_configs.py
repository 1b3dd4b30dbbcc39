"""IncrementalAlterConfigs (key 44), v0-v1: SET, DELETE, APPEND, SUBTRACT on topic configs."""

from __future__ import annotations

from cluster.broker import configs
from cluster.broker.registry import handler


@handler(44, 0, 1)
async def incremental_alter_configs(broker, hdr, req) -> dict:
    return configs.alter_topics(broker, req, lambda meta, r: configs.incremental(meta.configs, r.configs))
