"""AlterConfigs (key 33), v0-v2: replace a topic's whole override set (non-incremental)."""

from __future__ import annotations

from cluster.broker import configs
from cluster.broker.registry import handler


@handler(33, 0, 2)
async def alter_configs(broker, hdr, req) -> dict:
    return configs.alter_topics(
        broker, req, lambda meta, r: {c.name: c.value for c in r.configs if c.value is not None})
