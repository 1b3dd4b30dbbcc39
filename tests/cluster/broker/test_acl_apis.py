"""DescribeAcls / CreateAcls / DeleteAcls (29/30/31) as Kafka answers them."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.auth.acl import Operation as Op, ResourceType as RT
from tests.cluster.broker.acl_helpers import ALICE, call, enforcing_broker, grant

ANY = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
       "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}


def creation(name: str, op: int = 3, **kw) -> dict:
    return {"resource_type": 2, "resource_name": name, "resource_pattern_type": 3,
            "principal": "User:bob", "host": "*", "operation": op, "permission_type": 3, **kw}


async def test_security_disabled_without_authentication(broker) -> None:
    d = await call(broker, 29, 3, ANY)
    assert d.error_code == ErrorCode.security_disabled
    c = await call(broker, 30, 3, {"creations": [creation("t")]})
    assert [r.error_code for r in c.results] == [ErrorCode.security_disabled]
    x = await call(broker, 31, 3, {"filters": [ANY]})
    assert [r.error_code for r in x.filter_results] == [ErrorCode.security_disabled]


async def test_acl_apis_need_cluster_describe_and_alter(tmp_path) -> None:
    b = await enforcing_broker(tmp_path)
    try:
        assert (await call(b, 29, 3, ANY)).error_code == ErrorCode.cluster_authorization_failed
        c = await call(b, 30, 2, {"creations": [creation("t")]})
        assert [r.error_code for r in c.results] == [ErrorCode.cluster_authorization_failed]
        x = await call(b, 31, 1, {"filters": [ANY]})
        assert [r.error_code for r in x.filter_results] == [ErrorCode.cluster_authorization_failed]
        grant(b, Op.DESCRIBE, RT.CLUSTER, "kafka-cluster")
        assert (await call(b, 29, 3, ANY)).error_code == 0
        c = await call(b, 30, 3, {"creations": [creation("t")]})
        assert [r.error_code for r in c.results] == [ErrorCode.cluster_authorization_failed]
        assert len(b.acls.authorizer) == 1
    finally:
        await b.stop()


async def test_create_list_delete_round_trip_survives_restart(tmp_path) -> None:
    b = await enforcing_broker(tmp_path, super_users=("User:admin",))
    admin = {"principal": "User:admin"}
    try:
        c = await call(b, 30, 3, {"creations": [
            creation("orders"), creation("app.", 4, resource_pattern_type=4),
            creation("", 3), creation("x", resource_type=4), creation("t", principal="bob")]}, **admin)
        assert [r.error_code for r in c.results] == [0, 0] + [ErrorCode.invalid_request] * 3
        assert "empty resource name" in c.results[2].error_message
        assert "kafka-cluster" in c.results[3].error_message
        d = await call(b, 29, 3, ANY, **admin)
        assert d.error_code == 0
        got = {(r.resource_name, r.pattern_type, a.operation) for r in d.resources for a in r.acls}
        assert got == {("orders", 3, 3), ("app.", 4, 4)}
        match = await call(b, 29, 3, {**ANY, "resource_type_filter": 2, "resource_name_filter": "app.x",
                                       "pattern_type_filter": 2}, **admin)
        assert [r.resource_name for r in match.resources] == ["app."]
    finally:
        await b.stop()
    b = await enforcing_broker(tmp_path, super_users=("User:admin",))
    try:
        assert len(b.acls.authorizer) == 2
        x = await call(b, 31, 3, {"filters": [{**ANY, "pattern_type_filter": 4},
                                              {**ANY, "operation": 0}]}, **admin)
        assert x.filter_results[0].error_code == 0
        assert [(m.resource_name, m.pattern_type, m.principal, m.operation)
                for m in x.filter_results[0].matching_acls] == [("app.", 4, "User:bob", 4)]
        assert x.filter_results[1].error_code == ErrorCode.invalid_request
        assert [a.name for a in b.acls.authorizer] == ["orders"]
    finally:
        await b.stop()
    b = await enforcing_broker(tmp_path)
    try:
        assert [a.name for a in b.acls.authorizer] == ["orders"]
        assert ALICE not in b.acls.authorizer.super_users
    finally:
        await b.stop()
