"""What a handler asks before acting: may the connection's principal do this?

The one bridge between handlers, the connection's `Session` and the broker's ACLs
(`cluster.auth.acl`). ACLs apply only when the broker authenticates its clients
(`BrokerConfig.authenticates`); otherwise everyone may do everything, as a Kafka broker
without an authorizer. In-process callers (`session.INTERNAL`: the mirror inside `up`,
tests, housekeeping) are never refused. Handlers call `allowed` with Kafka's operation and
resource, exactly where Kafka's KafkaApis calls `authHelper.authorize`.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from cluster.auth.acl import CLUSTER_NAME, SUPPORTED_OPERATIONS, Operation, ResourceType
from cluster.broker import session

NOT_REQUESTED = -(2**31)  # KIP-430: authorized operations were not asked for

TOPIC, GROUP, CLUSTER, TXN_ID = (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER,
                                 ResourceType.TRANSACTIONAL_ID)
Op = Operation


def enforced(broker: Any) -> bool:
    """True when requests are checked against ACLs (some listener authenticates)."""
    return bool(broker.config.authenticates) and getattr(broker, "acls", None) is not None


def allowed(broker: Any, op: Operation, rtype: ResourceType, name: str = CLUSTER_NAME) -> bool:
    s = session.current()
    if s.internal or not enforced(broker):
        return True
    if not s.authenticated:  # a SASL connection before SaslAuthenticate succeeded
        return False
    return broker.acls.authorizer.authorize(s.principal, s.host, op, rtype, name)


def allowed_cluster(broker: Any, op: Operation) -> bool:
    return allowed(broker, op, CLUSTER, CLUSTER_NAME)


def allowed_by_type(broker: Any, op: Operation, rtype: ResourceType) -> bool:
    s = session.current()
    if s.internal or not enforced(broker):
        return True
    if not s.authenticated:
        return False
    return broker.acls.authorizer.authorize_by_type(s.principal, s.host, op, rtype)


def acl_api_refusal(broker: Any, op: Operation) -> tuple[int, str | None] | None:
    """(error code, message) that DescribeAcls/CreateAcls/DeleteAcls answer before looking
    at a filter, or None: `op` on the cluster first, then SECURITY_DISABLED when ACLs are
    not enforced, in Kafka's order."""
    if not allowed_cluster(broker, op):
        return ErrorCode.cluster_authorization_failed, None
    if not enforced(broker):
        return ErrorCode.security_disabled, "No Authorizer is configured on the broker"
    return None


def authorized_operations(broker: Any, rtype: ResourceType, name: str) -> int:
    """KIP-430 bit field for the current principal (every supported operation when ACLs
    are not enforced, as Kafka answers without an authorizer)."""
    s = session.current()
    if s.internal or not enforced(broker):
        return sum(1 << int(op) for op in SUPPORTED_OPERATIONS.get(rtype, ()))
    return broker.acls.authorizer.authorized_operations(s.principal, s.host, rtype, name)


def principal() -> str:
    return session.current().principal
