"""AlterUserScramCredentials (key 51), v0: add, change and delete SCRAM credentials (KIP-554).

The client salts and hashes (it sends SaltedPassword, never the password); the store keeps
only StoredKey and ServerKey. Errors per user as Kafka answers them: a (user, mechanism)
twice in one request DUPLICATE_RESOURCE, an unknown mechanism UNSUPPORTED_SASL_MECHANISM,
an empty name or iterations outside 4096..16384 UNACCEPTABLE_CREDENTIAL, deleting what
does not exist RESOURCE_NOT_FOUND. A user with any error has none of its changes applied;
the others are written in one rewrite of the store.
"""

from __future__ import annotations

import logging

from kio.schema.errors import ErrorCode

from cluster.auth.credentials import MAX_ITERATIONS, MIN_ITERATIONS, CredentialError
from cluster.broker import authz
from cluster.broker.k48_describe_client_quotas import DENIED
from cluster.broker.k50_describe_user_scram_credentials import MECHANISM_NAMES
from cluster.broker.registry import handler

log = logging.getLogger(__name__)

_CODES = {"unacceptable_credential": ErrorCode.unacceptable_credential,
          "unsupported_sasl_mechanism": ErrorCode.unsupported_sasl_mechanism,
          "resource_not_found": ErrorCode.resource_not_found}


@handler(51, 0, 0)
async def alter_user_scram_credentials(broker, hdr, req) -> dict:
    if not authz.allowed_cluster(broker, authz.Op.ALTER):
        # as ControllerApis + AlterUserScramCredentialsRequest.getErrorResponse: every
        # named user, sorted, gets the error; nothing is changed
        names = sorted({d.name for d in req.deletions} | {u.name for u in req.upsertions})
        return {"throttle_time": 0, "results": [
            {"user": n, "error_code": ErrorCode.cluster_authorization_failed, "error_message": DENIED}
            for n in names]}
    store = broker.credentials
    ops = [("delete", d.name, d.mechanism, d) for d in req.deletions] + \
          [("upsert", u.name, u.mechanism, u) for u in req.upsertions]
    errors: dict[str, tuple[int, str]] = {}
    pairs: dict[tuple[str, int], int] = {}
    for _, name, mech, _ in ops:
        pairs[(name, mech)] = pairs.get((name, mech), 0) + 1
    for (name, mech), n in pairs.items():
        if n > 1 and name not in errors:
            errors[name] = (ErrorCode.duplicate_resource,
                            "A user credential cannot be altered twice in the same request")
    for kind, name, mech, op in ops:
        if name in errors:
            continue
        if mech not in MECHANISM_NAMES:
            errors[name] = (ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism")
        elif not name:
            errors[name] = (ErrorCode.unacceptable_credential, "Username must not be empty")
        elif kind == "upsert" and op.iterations < MIN_ITERATIONS:
            errors[name] = (ErrorCode.unacceptable_credential, f"Too few iterations (minimum {MIN_ITERATIONS})")
        elif kind == "upsert" and op.iterations > MAX_ITERATIONS:
            errors[name] = (ErrorCode.unacceptable_credential, f"Too many iterations (maximum {MAX_ITERATIONS})")
        elif kind == "upsert" and (not op.salt or not op.salted_password):
            errors[name] = (ErrorCode.unacceptable_credential, "Salt and salted password must not be empty")
        elif kind == "delete" and store.scram(MECHANISM_NAMES[mech], name) is None:
            errors[name] = (ErrorCode.resource_not_found,
                            "Attempt to delete a user credential that does not exist")
    changed = False
    for kind, name, mech, op in ops:
        if name in errors:
            continue
        try:
            if kind == "delete":
                store.delete(name, MECHANISM_NAMES[mech], save=False)
            else:
                store.upsert_salted(name, MECHANISM_NAMES[mech], op.iterations, bytes(op.salt),
                                    bytes(op.salted_password), save=False)
            changed = True
        except CredentialError as exc:
            errors[name] = (_CODES[exc.code], str(exc))
    if changed:
        store.save()
    users = list(dict.fromkeys(name for _, name, _, _ in ops))
    return {"throttle_time": 0, "results": [
        {"user": u, "error_code": errors[u][0] if u in errors else 0,
         "error_message": errors[u][1] if u in errors else None} for u in users]}
