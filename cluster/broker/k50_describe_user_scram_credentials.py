"""DescribeUserScramCredentials (key 50), v0: users' SCRAM mechanisms and iterations (KIP-554).

As Kafka answers: `users` null or empty lists every user; a named user without credentials
is RESOURCE_NOT_FOUND; the same user twice is DUPLICATE_RESOURCE for that user. Salts and
keys never leave the broker.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.k48_describe_client_quotas import DENIED
from cluster.broker.registry import handler

# Kafka's org.apache.kafka.clients.admin.ScramMechanism ids.
MECHANISM_IDS: dict[str, int] = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES: dict[int, str] = {v: k for k, v in MECHANISM_IDS.items()}


def _infos(mechs: dict[str, int]) -> list[dict]:
    return [{"mechanism": MECHANISM_IDS[m], "iterations": it} for m, it in sorted(mechs.items())]


@handler(50, 0, 0)
async def describe_user_scram_credentials(broker, hdr, req) -> dict:
    if not authz.allowed_cluster(broker, authz.Op.DESCRIBE):
        # as KafkaApis + DescribeUserScramCredentialsRequest.getErrorResponse: the error at
        # the top and once per requested user (with no user name)
        code = ErrorCode.cluster_authorization_failed
        return {"throttle_time": 0, "error_code": code, "error_message": DENIED, "results": [
            {"user": "", "error_code": code, "error_message": DENIED, "credential_infos": []}
            for _ in (req.users or ())]}
    users = broker.credentials.users()
    results = []
    if not req.users:
        for user, mechs in sorted(users.items()):
            results.append({"user": user, "error_code": 0, "error_message": None, "credential_infos": _infos(mechs)})
        return {"throttle_time": 0, "error_code": 0, "error_message": None, "results": results}
    names = [u.name for u in req.users]
    seen: set[str] = set()
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            results.append({"user": name, "error_code": ErrorCode.duplicate_resource,
                            "error_message": f"Cannot describe SCRAM credentials for the same user twice in a "
                                             f"single request: {name}", "credential_infos": []})
        elif name not in users:
            results.append({"user": name, "error_code": ErrorCode.resource_not_found,
                            "error_message": f"Attempt to describe a user credential that does not exist: {name}",
                            "credential_infos": []})
        else:
            results.append({"user": name, "error_code": 0, "error_message": None,
                            "credential_infos": _infos(users[name])})
        seen.add(name)
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "results": results}
