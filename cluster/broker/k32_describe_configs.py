"""DescribeConfigs (key 32), v0-v4: topic and broker configs with sources and types."""

from __future__ import annotations

from cluster.broker import configs
from cluster.broker.registry import handler


@handler(32, 0, 4)
async def describe_configs(broker, hdr, req) -> dict:
    synonyms = getattr(req, "include_synonyms", False)
    results = [
        configs.describe(broker, r.resource_type, r.resource_name, r.configuration_keys, synonyms)
        for r in req.resources
    ]
    return {"throttle_time": 0, "results": results}
