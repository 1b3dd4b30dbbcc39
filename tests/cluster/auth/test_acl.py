"""Kafka's ACL model, decided without a broker: deny wins, patterns, wildcards, implied
operations, super users, default deny, filters; and the store across restarts."""

from __future__ import annotations

import json

import pytest

from cluster.auth.acl import (
    AclBinding,
    AclFilter,
    Authorizer,
    InvalidAcl,
    Operation as Op,
    PatternType as PT,
    Permission as P,
    ResourceType as RT,
    new_binding,
)
from cluster.auth.acl_store import AclFileError, AclStore

ALICE, BOB = "User:alice", "User:bob"
IP = "10.0.0.5"


def acl(name: str, op: Op, perm: P = P.ALLOW, *, rt: RT = RT.TOPIC, pt: PT = PT.LITERAL,
        principal: str = ALICE, host: str = "*") -> AclBinding:
    return AclBinding(rt, name, pt, principal, host, op, perm)


def can(a: Authorizer, op: Op, name: str, *, rt: RT = RT.TOPIC, who: str = ALICE, host: str = IP) -> bool:
    return a.authorize(who, host, op, rt, name)


def test_default_deny_and_exact_allow() -> None:
    a = Authorizer([acl("orders", Op.READ)])
    assert can(a, Op.READ, "orders")
    assert not can(a, Op.WRITE, "orders")
    assert not can(a, Op.READ, "orders2")
    assert not can(a, Op.READ, "orders", who=BOB)
    assert not can(Authorizer(), Op.DESCRIBE, "anything")


def test_deny_wins_over_allow_whatever_the_pattern() -> None:
    a = Authorizer([acl("*", Op.ALL), acl("secret", Op.READ, P.DENY)])
    assert can(a, Op.READ, "public")
    assert not can(a, Op.READ, "secret")
    assert can(a, Op.WRITE, "secret")  # the DENY names READ only
    a.add([acl("sec", Op.ALL, P.DENY, pt=PT.PREFIXED)])
    assert not can(a, Op.WRITE, "secret") and not can(a, Op.DESCRIBE, "security")
    assert can(a, Op.WRITE, "se")


def test_prefixed_and_wildcard_resource() -> None:
    a = Authorizer([acl("app.", Op.WRITE, pt=PT.PREFIXED)])
    assert can(a, Op.WRITE, "app.orders") and can(a, Op.WRITE, "app.")
    assert not can(a, Op.WRITE, "app") and not can(a, Op.WRITE, "other.app.x")
    # a literal "*" matches every name; a PREFIXED "*" only names starting with "*"
    a = Authorizer([acl("*", Op.READ), acl("*", Op.WRITE, pt=PT.PREFIXED)])
    assert can(a, Op.READ, "x") and not can(a, Op.WRITE, "x") and can(a, Op.WRITE, "*x")


def test_many_prefixes_use_either_lookup() -> None:
    a = Authorizer([acl(f"p{i}.", Op.READ, pt=PT.PREFIXED) for i in range(50)])
    assert can(a, Op.READ, "p7.x") and not can(a, Op.READ, "q7.x")
    assert can(a, Op.READ, "p49." + "y" * 200)


def test_wildcard_principal_and_host() -> None:
    a = Authorizer([acl("t", Op.READ, principal="User:*"), acl("t", Op.WRITE, host=IP)])
    assert can(a, Op.READ, "t", who=BOB) and can(a, Op.READ, "t", who="User:ANONYMOUS")
    assert can(a, Op.WRITE, "t") and not can(a, Op.WRITE, "t", host="10.0.0.6")
    a.add([acl("t", Op.READ, P.DENY, principal="User:*", host="10.0.0.6")])
    assert not can(a, Op.READ, "t", host="10.0.0.6") and can(a, Op.READ, "t")


@pytest.mark.parametrize("granted", [Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.DESCRIBE])
def test_describe_implied_by_read_write_delete_alter(granted: Op) -> None:
    assert can(Authorizer([acl("t", granted)]), Op.DESCRIBE, "t")


def test_implications_are_only_those_kafka_has() -> None:
    assert not can(Authorizer([acl("t", Op.CREATE)]), Op.DESCRIBE, "t")
    assert not can(Authorizer([acl("t", Op.DESCRIBE)]), Op.READ, "t")
    assert can(Authorizer([acl("t", Op.ALTER_CONFIGS)]), Op.DESCRIBE_CONFIGS, "t")
    assert not can(Authorizer([acl("t", Op.DESCRIBE_CONFIGS)]), Op.ALTER_CONFIGS, "t")
    assert not can(Authorizer([acl("t", Op.ALTER)]), Op.ALTER_CONFIGS, "t")
    # a DENY implies nothing: denying READ leaves an allowed DESCRIBE
    a = Authorizer([acl("t", Op.ALL), acl("t", Op.READ, P.DENY)])
    assert can(a, Op.DESCRIBE, "t") and not can(a, Op.READ, "t")
    # DENY ALL denies everything
    a = Authorizer([acl("t", Op.ALL), acl("t", Op.ALL, P.DENY)])
    assert not can(a, Op.DESCRIBE, "t")


def test_super_users_are_allowed_everything_even_over_deny() -> None:
    a = Authorizer([acl("*", Op.ALL, P.DENY, principal="User:*")], super_users=["User:admin"])
    assert can(a, Op.CLUSTER_ACTION, "kafka-cluster", rt=RT.CLUSTER, who="User:admin")
    assert not can(a, Op.READ, "t")
    assert a.authorize_by_type("User:admin", IP, Op.WRITE, RT.TOPIC)


def test_resource_types_are_separate() -> None:
    a = Authorizer([acl("x", Op.READ, rt=RT.GROUP)])
    assert can(a, Op.READ, "x", rt=RT.GROUP) and not can(a, Op.READ, "x")


def test_cache_follows_changes() -> None:
    a = Authorizer([acl("t", Op.READ)])
    assert can(a, Op.READ, "t")
    a.add([acl("t", Op.READ, P.DENY)])
    assert not can(a, Op.READ, "t")
    a.remove(AclFilter(permission=P.DENY))
    assert can(a, Op.READ, "t")


def test_authorized_operations_bit_field() -> None:
    a = Authorizer([acl("t", Op.READ), acl("t", Op.ALTER_CONFIGS)])
    bits = a.authorized_operations(ALICE, IP, RT.TOPIC, "t")
    want = {Op.READ, Op.DESCRIBE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS}
    assert bits == sum(1 << int(o) for o in want)
    assert a.authorized_operations(BOB, IP, RT.TOPIC, "t") == 0


def test_authorize_by_type() -> None:
    assert Authorizer([acl("t", Op.WRITE)]).authorize_by_type(ALICE, IP, Op.WRITE, RT.TOPIC)
    assert not Authorizer([acl("t", Op.READ)]).authorize_by_type(ALICE, IP, Op.WRITE, RT.TOPIC)
    assert not Authorizer([acl("t", Op.WRITE), acl("t", Op.WRITE, P.DENY)]).authorize_by_type(
        ALICE, IP, Op.WRITE, RT.TOPIC)
    assert not Authorizer([acl("app.x", Op.WRITE), acl("app.", Op.ALL, P.DENY, pt=PT.PREFIXED)]
                          ).authorize_by_type(ALICE, IP, Op.WRITE, RT.TOPIC)
    assert not Authorizer([acl("t", Op.WRITE), acl("*", Op.WRITE, P.DENY)]).authorize_by_type(
        ALICE, IP, Op.WRITE, RT.TOPIC)


def test_new_binding_validation_as_kafka() -> None:
    ok = new_binding(2, "t", 3, ALICE, "*", 3, 3)
    assert ok == acl("t", Op.READ)
    for args, words in [((1, "t", 3, ALICE, "*", 3, 3), "resourceType"),
                        ((2, "t", 2, ALICE, "*", 3, 3), "patternType"),
                        ((2, "t", 3, ALICE, "*", 1, 3), "operation"),
                        ((2, "t", 3, ALICE, "*", 3, 1), "permissionType"),
                        ((4, "other", 3, ALICE, "*", 3, 3), "kafka-cluster"),
                        ((2, "", 3, ALICE, "*", 3, 3), "empty resource name"),
                        ((2, "t", 3, "alice", "*", 3, 3), "principal"),
                        ((2, "t", 3, ALICE, "*", 99, 3), "operation")]:
        with pytest.raises(InvalidAcl, match=words):
            new_binding(*args)


def test_filters_any_match_literal_prefixed() -> None:
    lit, star, pre, other = (acl("app.orders", Op.READ), acl("*", Op.READ),
                             acl("app.", Op.WRITE, pt=PT.PREFIXED), acl("zzz", Op.READ, principal=BOB))
    a = Authorizer([lit, star, pre, other])
    assert set(a.matching(AclFilter())) == {lit, star, pre, other}
    assert set(a.matching(AclFilter(name="app.orders", pattern_type=PT.MATCH))) == {lit, star, pre}
    assert set(a.matching(AclFilter(name="app.orders"))) == {lit}  # ANY: exact name, any type
    assert set(a.matching(AclFilter(name="app.", pattern_type=PT.PREFIXED))) == {pre}
    assert set(a.matching(AclFilter(pattern_type=PT.LITERAL))) == {lit, star, other}
    assert set(a.matching(AclFilter(principal=BOB))) == {other}
    assert set(a.matching(AclFilter(operation=Op.WRITE))) == {pre}
    assert a.matching(AclFilter(resource_type=RT.GROUP)) == []
    with pytest.raises(InvalidAcl):
        AclFilter.parse(2, None, 0, None, None, 1, 1)


def test_store_survives_restart_and_refuses_a_damaged_file(tmp_path) -> None:
    store = AclStore(tmp_path)
    assert store.create([acl("t", Op.READ), acl("g", Op.READ, rt=RT.GROUP)]) != []
    assert store.create([acl("t", Op.READ)]) == []  # already there: no change
    again = AclStore(tmp_path, super_users=["User:admin"])
    assert len(again.authorizer) == 2
    assert can(again.authorizer, Op.READ, "t") and not can(again.authorizer, Op.WRITE, "t")
    [[gone]] = again.delete([AclFilter(resource_type=RT.GROUP)])
    assert gone.name == "g"
    assert [b.name for b in AclStore(tmp_path).authorizer] == ["t"]
    assert not (tmp_path / "acls.json.tmp").exists()
    (tmp_path / "acls.json").write_text('{"format": 1, "acls": [[2, "t"]]}')
    with pytest.raises(AclFileError, match="damaged"):
        AclStore(tmp_path)
    (tmp_path / "acls.json").write_text(json.dumps({"format": 9, "acls": []}))
    with pytest.raises(AclFileError, match="format 9"):
        AclStore(tmp_path)


def test_store_keeps_memory_equal_to_disk_when_a_write_fails(tmp_path, monkeypatch) -> None:
    store = AclStore(tmp_path)
    store.create([acl("t", Op.READ)])

    def fail(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cluster.auth.acl_store.atomic_write", fail)
    with pytest.raises(OSError):
        store.create([acl("u", Op.READ)])
    with pytest.raises(OSError):
        store.delete([AclFilter()])
    assert [b.name for b in store.authorizer] == ["t"]
    assert not can(store.authorizer, Op.READ, "u")
