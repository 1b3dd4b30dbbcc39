"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): Kafka's errors, and
a user created through the API can log in; on a SASL listener (ACLs apply) they need
Describe/Alter on the cluster and DescribeClientQuotas DescribeConfigs, as in Kafka.

Relies on a super user (User:admin) for the login-and-create test, and on granted cluster
ACLs (alice) for the authorization test."""

from __future__ import annotations

import secrets

from cluster.auth.credentials import salted_password
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.sasl_helpers import PASSWORD, sasl_broker, scram_login


def upsertion(name: str, mech: int, password: str, iterations: int = 4096) -> dict:
    names = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
    salt = secrets.token_bytes(16)
    salted = salted_password(names[mech], password, salt, iterations) if mech in names else b"x"
    return {"name": name, "mechanism": mech, "iterations": iterations, "salt": salt, "salted_password": salted}


async def test_describe_and_alter(broker) -> None:
    c = await RawConn.open(broker.config.port)
    resp = await c.call(51, 0, {"deletions": [], "upsertions": [upsertion("bob", 1, "pw"), upsertion("bob", 2, "pw"),
                                                                 upsertion("carol", 2, "pw", 8192)]})
    assert [(r.user, r.error_code) for r in resp.results] == [("bob", 0), ("carol", 0)]
    resp = await c.call(50, 0, {"users": None})
    assert {r.user: sorted((i.mechanism, i.iterations) for i in r.credential_infos) for r in resp.results} == \
        {"bob": [(1, 4096), (2, 4096)], "carol": [(2, 8192)]}
    resp = await c.call(50, 0, {"users": [{"name": "bob"}, {"name": "nobody"}, {"name": "carol"}, {"name": "carol"}]})
    assert [(r.user, int(r.error_code)) for r in resp.results] == [("bob", 0), ("nobody", 91), ("carol", 92)]
    resp = await c.call(51, 0, {
        "deletions": [{"name": "bob", "mechanism": 1}, {"name": "dave", "mechanism": 1}, {"name": "erin", "mechanism": 2}],
        "upsertions": [upsertion("erin", 2, "pw"), upsertion("frank", 3, "pw"), upsertion("gina", 1, "pw", 100),
                       upsertion("", 1, "pw"), upsertion("hal", 1, "pw", 20000)]})
    codes = {r.user: int(r.error_code) for r in resp.results}
    assert codes == {"bob": 0, "dave": 91, "erin": 92, "frank": 33, "gina": 93, "": 93, "hal": 93}
    resp = await c.call(50, 0, {"users": []})
    assert {r.user: [i.mechanism for i in r.credential_infos] for r in resp.results} == {"bob": [2], "carol": [2]}
    c.close()


async def test_user_created_through_api_logs_in(tmp_path) -> None:
    broker = await sasl_broker(tmp_path, super_users=("User:admin",))
    try:
        broker.credentials.upsert_password("admin", "SCRAM-SHA-512", PASSWORD)
        c = await RawConn.open(broker.config.port)
        assert (await scram_login(c, "SCRAM-SHA-512", "admin", PASSWORD)).error_code == 0
        resp = await c.call(51, 0, {"deletions": [], "upsertions": [upsertion("zoe", 1, "zoe-pw")]})
        assert resp.results[0].error_code == 0
        z = await RawConn.open(broker.config.port)
        assert (await scram_login(z, "SCRAM-SHA-256", "zoe", "zoe-pw")).error_code == 0
        # persisted: a restarted store knows zoe
        from cluster.auth.credentials import CredentialStore
        assert "zoe" in CredentialStore(broker.data_dir / "meta").users()
    finally:
        await broker.stop()


async def test_user_apis_need_cluster_acls(tmp_path) -> None:
    from cluster.auth.acl import Operation, ResourceType
    from tests.cluster.broker.acl_helpers import grant

    broker = await sasl_broker(tmp_path)
    try:
        c = await RawConn.open(broker.config.port)
        assert (await scram_login(c, "SCRAM-SHA-512", "alice", PASSWORD)).error_code == 0
        quotas = {"components": [{"entity_type": "user", "match_type": 0, "match": "alice"}], "strict": False}
        alter = {"deletions": [{"name": "bob", "mechanism": 1}], "upsertions": [upsertion("zoe", 1, "pw")]}
        q = await c.call(48, 1, quotas)
        assert (int(q.error_code), q.entries) == (31, None)  # CLUSTER_AUTHORIZATION_FAILED
        d = await c.call(50, 0, {"users": [{"name": "alice"}]})
        assert int(d.error_code) == 31 and [(r.user, int(r.error_code)) for r in d.results] == [("", 31)]
        a = await c.call(51, 0, alter)
        assert [(r.user, int(r.error_code)) for r in a.results] == [("bob", 31), ("zoe", 31)]
        assert "zoe" not in broker.credentials.users()
        grant(broker, Operation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, "kafka-cluster")
        grant(broker, Operation.ALTER, ResourceType.CLUSTER, "kafka-cluster")  # implies Describe
        assert int((await c.call(48, 1, quotas)).error_code) == 0
        d = await c.call(50, 0, {"users": [{"name": "alice"}]})
        assert int(d.error_code) == 0 and d.results[0].user == "alice"
        a = await c.call(51, 0, {"deletions": [], "upsertions": [upsertion("zoe", 1, "pw")]})
        assert [(r.user, int(r.error_code)) for r in a.results] == [("zoe", 0)]
        c.close()
    finally:
        await broker.stop()
