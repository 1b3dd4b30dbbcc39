"""AlterConfigs (key 33), v0-v2: replace a topic's whole override set (non-incremental)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import configs
from cluster.broker.registry import handler


@handler(33, 0, 2)
async def alter_configs(broker, hdr, req) -> dict:
    out = []
    with broker.catalogue.batch():
        _alter_all(broker, req, out)
    return {"throttle_time": 0, "responses": out}


def _alter_all(broker, req, out: list) -> None:
    for r in req.resources:
        base = {"resource_type": r.resource_type, "resource_name": r.resource_name}
        if r.resource_type != configs.TOPIC:
            out.append({**base, "error_code": ErrorCode.invalid_request,
                        "error_message": "only topic configs can be altered"})
            continue
        new = {c.name: c.value for c in r.configs if c.value is not None}
        try:
            configs.apply_topic_configs(broker, r.resource_name, new, req.validate_only)
        except configs.ConfigProblem as exc:
            out.append({**base, "error_code": exc.code, "error_message": str(exc)})
            continue
        out.append({**base, "error_code": 0, "error_message": None})
