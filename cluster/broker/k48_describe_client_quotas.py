"""DescribeClientQuotas (key 48), v0-v1: this broker has no client quotas, so none match.

Why it exists: `kafka-configs --describe --entity-type users` asks for a user's quotas
and its SCRAM credentials together and fails outright if either call is unsupported.
Answering "no quotas" is the truth: no quota is ever enforced here (AlterClientQuotas is
not served, so none can be set and none is silently ignored).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler

DENIED = "Cluster authorization failed."  # Kafka's message for CLUSTER_AUTHORIZATION_FAILED


@handler(48, 0, 1)
async def describe_client_quotas(broker, hdr, req) -> dict:
    if not authz.allowed_cluster(broker, authz.Op.DESCRIBE_CONFIGS):  # as KafkaApis
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed,
                "error_message": DENIED, "entries": None}
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "entries": []}
