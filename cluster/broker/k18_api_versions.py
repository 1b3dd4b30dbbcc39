"""ApiVersions (key 18), v0-v4: advertises exactly the registered handlers' version ranges.

Kafka answers a request at an ApiVersions version it does not know with a v0 response
carrying UNSUPPORTED_VERSION and its own ranges, so the client can retry lower;
`unsupported_version_reply` does that for the dispatcher.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker.registry import HANDLERS, handler
from cluster.wire import codec
from cluster.wire.build import build


def _api_keys() -> list[dict[str, int]]:
    return [
        {"api_key": h.api_key, "min_version": h.min_version, "max_version": h.max_version}
        for h in sorted(HANDLERS.values(), key=lambda h: h.api_key)
    ]


@handler(18, 0, 4)
async def api_versions(broker, hdr, req) -> dict:
    return {"error_code": 0, "api_keys": _api_keys(), "throttle_time": 0}


def unsupported_version_reply(correlation_id: int) -> bytes:
    body = build(
        codec.response_schema(18, 0),
        {"error_code": ErrorCode.unsupported_version, "api_keys": _api_keys()},
    )
    return codec.encode_response(correlation_id, body, framed=True)
