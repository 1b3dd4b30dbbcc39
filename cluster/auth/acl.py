"""Kafka's ACL model (KIP-11, KIP-290 prefixed patterns) and the decision it makes.

Why written here rather than borrowed: the broker must answer exactly as Apache Kafka's
StandardAuthorizer does, so tools (`kafka-acls`) and clients see the same outcomes, and
no Python library implements that authorizer. The rules, as StandardAuthorizerData has
them:

- An ACL binds a resource pattern (type, name, LITERAL or PREFIXED; the literal name "*"
  matches every name) to an entry (principal, host, operation, ALLOW or DENY).
- A request's principal matches an entry naming it or "User:*"; its host matches "*" or
  its exact address.
- DENY wins: one matching DENY refuses, whatever ALLOWs match. With no matching ALLOW the
  answer is no (Kafka's default `allow.everyone.if.no.acl.found=false`).
- Operation ALL matches every operation; an ALLOW of Read, Write, Delete or Alter implies
  Describe, and an ALLOW of AlterConfigs implies DescribeConfigs (a DENY implies nothing).
- Super users are allowed everything, ACLs or not.

Filters (DescribeAcls, DeleteAcls) follow ResourcePatternFilter/AccessControlEntryFilter:
ANY matches any value; pattern type MATCH matches every pattern that would apply to the
named resource (the literal name, "*", and every prefix of it).

This module holds state in memory only; `cluster.auth.acl_store` persists it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Iterator


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class Permission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"

O = Operation
IMPLIES_DESCRIBE = frozenset({O.DESCRIBE, O.READ, O.WRITE, O.DELETE, O.ALTER})
IMPLIES_DESCRIBE_CONFIGS = frozenset({O.DESCRIBE_CONFIGS, O.ALTER_CONFIGS})

# AclEntry.supportedOperations: what KIP-430 authorized-operation bit fields may hold.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[Operation, ...]] = {
    ResourceType.TOPIC: (O.READ, O.WRITE, O.CREATE, O.DESCRIBE, O.DELETE, O.ALTER,
                         O.DESCRIBE_CONFIGS, O.ALTER_CONFIGS),
    ResourceType.GROUP: (O.READ, O.DESCRIBE, O.DELETE, O.DESCRIBE_CONFIGS, O.ALTER_CONFIGS),
    ResourceType.CLUSTER: (O.CREATE, O.CLUSTER_ACTION, O.DESCRIBE_CONFIGS, O.ALTER_CONFIGS,
                           O.IDEMPOTENT_WRITE, O.ALTER, O.DESCRIBE),
    ResourceType.TRANSACTIONAL_ID: (O.DESCRIBE, O.WRITE, O.TWO_PHASE_COMMIT),
    ResourceType.DELEGATION_TOKEN: (O.DESCRIBE,),
    ResourceType.USER: (O.CREATE_TOKENS, O.DESCRIBE_TOKENS),
}


class InvalidAcl(ValueError):
    """An ACL or filter Kafka would refuse with INVALID_REQUEST; the message says why."""


@dataclass(frozen=True)
class AclBinding:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def to_json(self) -> list:
        return [int(self.resource_type), self.name, int(self.pattern_type), self.principal,
                self.host, int(self.operation), int(self.permission)]

    @classmethod
    def from_json(cls, row: list) -> AclBinding:
        rt, name, pt, principal, host, op, perm = row
        return cls(ResourceType(rt), str(name), PatternType(pt), str(principal), str(host),
                   Operation(op), Permission(perm))

    def __str__(self) -> str:
        return (f"({self.resource_type.name}:{self.pattern_type.name}:{self.name}, {self.principal} "
                f"from {self.host}: {self.permission.name} {self.operation.name})")


def _enum(kind: type[enum.IntEnum], value: int, what: str) -> enum.IntEnum:
    try:
        return kind(value)
    except ValueError:
        raise InvalidAcl(f"Unknown {what} {value}") from None


def check_principal(principal: str) -> None:
    """Kafka's SecurityUtils.parseKafkaPrincipal: TYPE:NAME with both parts present."""
    kind, sep, name = principal.partition(":")
    if not sep or not kind or not name:
        raise InvalidAcl(f"Could not parse principal from `{principal}` (no colon is present "
                         "separating the principal type from the principal name)")


def new_binding(resource_type: int, name: str, pattern_type: int, principal: str, host: str,
                operation: int, permission: int) -> AclBinding:
    """An ACL to create, validated as Kafka's AclControlManager.validateNewAcl and
    AclApis.handleCreateAcls do. Raises InvalidAcl."""
    rt = _enum(ResourceType, resource_type, "resourceType")
    if rt in (ResourceType.UNKNOWN, ResourceType.ANY):
        raise InvalidAcl(f"Invalid resourceType {rt.name}")
    pt = _enum(PatternType, pattern_type, "patternType")
    if pt not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise InvalidAcl(f"Invalid patternType {pt.name}")
    op = _enum(Operation, operation, "operation")
    if op in (Operation.UNKNOWN, Operation.ANY):
        raise InvalidAcl(f"Invalid operation {op.name}")
    perm = _enum(Permission, permission, "permissionType")
    if perm in (Permission.UNKNOWN, Permission.ANY):
        raise InvalidAcl(f"Invalid permissionType {perm.name}")
    if rt == ResourceType.CLUSTER and name != CLUSTER_NAME:
        raise InvalidAcl(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if not name:
        raise InvalidAcl("Invalid empty resource name")
    check_principal(principal)
    if not host:
        raise InvalidAcl("Invalid empty host")
    return AclBinding(rt, name, pt, principal, host, op, perm)


@dataclass(frozen=True)
class AclFilter:
    """A DescribeAcls or DeleteAcls filter: None and ANY match anything."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    @classmethod
    def parse(cls, resource_type: int, name: str | None, pattern_type: int, principal: str | None,
              host: str | None, operation: int, permission: int) -> AclFilter:
        f = cls(_enum(ResourceType, resource_type, "resourceType"), name,
                _enum(PatternType, pattern_type, "patternType"), principal, host,
                _enum(Operation, operation, "operation"), _enum(Permission, permission, "permissionType"))
        for value, what in ((f.resource_type, "resource type"), (f.pattern_type, "pattern type"),
                            (f.operation, "operation"), (f.permission, "permission type")):
            if value == 0:
                raise InvalidAcl(f"The filter's {what} is UNKNOWN")
        return f

    def matches(self, b: AclBinding) -> bool:
        if self.resource_type != ResourceType.ANY and self.resource_type != b.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH) and self.pattern_type != b.pattern_type:
            return False
        if self.name is not None:
            if self.pattern_type in (PatternType.ANY, b.pattern_type):
                if self.name != b.name:
                    return False
            elif b.pattern_type == PatternType.LITERAL:
                if self.name != b.name and b.name != WILDCARD:
                    return False
            elif not self.name.startswith(b.name):  # PREFIXED under MATCH
                return False
        if self.principal is not None and self.principal != b.principal:
            return False
        if self.host is not None and self.host != b.host:
            return False
        if self.operation != Operation.ANY and self.operation != b.operation:
            return False
        return self.permission == Permission.ANY or self.permission == b.permission


def _verdict(op: Operation, acl: AclBinding) -> Permission | None:
    """StandardAuthorizerData.findResult for an ACL whose principal and host match."""
    if acl.operation != Operation.ALL:
        if acl.permission == Permission.ALLOW:
            if op == Operation.DESCRIBE:
                if acl.operation not in IMPLIES_DESCRIBE:
                    return None
            elif op == Operation.DESCRIBE_CONFIGS:
                if acl.operation not in IMPLIES_DESCRIBE_CONFIGS:
                    return None
            elif op != acl.operation:
                return None
        elif op != acl.operation:
            return None
    return acl.permission


class Authorizer:
    """Every ACL of a broker, indexed by resource, and the decisions made from them."""

    CACHE_LIMIT = 65_536

    def __init__(self, acls: Iterable[AclBinding] = (), super_users: Iterable[str] = ()) -> None:
        self.super_users = frozenset(super_users)
        self._acls: set[AclBinding] = set()
        # resource type -> name -> ACLs; literal and prefixed kept apart.
        self._literal: dict[ResourceType, dict[str, list[AclBinding]]] = {}
        self._prefixed: dict[ResourceType, dict[str, list[AclBinding]]] = {}
        self._cache: dict[tuple, bool] = {}
        for b in acls:
            self._add(b)

    # ---- contents ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._acls)

    def __iter__(self) -> Iterator[AclBinding]:
        return iter(sorted(self._acls, key=AclBinding.to_json))

    def _index(self, b: AclBinding) -> dict[str, list[AclBinding]]:
        table = self._literal if b.pattern_type == PatternType.LITERAL else self._prefixed
        return table.setdefault(b.resource_type, {})

    def _add(self, b: AclBinding) -> bool:
        if b in self._acls:
            return False
        self._acls.add(b)
        self._index(b).setdefault(b.name, []).append(b)
        self._cache.clear()
        return True

    def add(self, bindings: Iterable[AclBinding]) -> list[AclBinding]:
        """Add ACLs (already present ones are no change, as in Kafka); returns those added."""
        return [b for b in bindings if self._add(b)]

    def remove(self, flt: AclFilter) -> list[AclBinding]:
        """Remove and return every ACL the filter matches."""
        gone = [b for b in self if flt.matches(b)]
        for b in gone:
            self._acls.discard(b)
            bucket = self._index(b)
            bucket[b.name].remove(b)
            if not bucket[b.name]:
                del bucket[b.name]
        if gone:
            self._cache.clear()
        return gone

    def matching(self, flt: AclFilter) -> list[AclBinding]:
        return [b for b in self if flt.matches(b)]

    # ---- decisions --------------------------------------------------------------
    def _applicable(self, rtype: ResourceType, name: str) -> Iterator[AclBinding]:
        literal = self._literal.get(rtype)
        if literal:
            yield from literal.get(name, ())
            if name != WILDCARD:
                yield from literal.get(WILDCARD, ())
        prefixed = self._prefixed.get(rtype)
        if prefixed:
            if len(prefixed) < len(name):
                for prefix, acls in prefixed.items():
                    if name.startswith(prefix):
                        yield from acls
            else:
                for i in range(1, len(name) + 1):
                    yield from prefixed.get(name[:i], ())

    def authorize(self, principal: str, host: str, op: Operation, rtype: ResourceType, name: str) -> bool:
        if principal in self.super_users:
            return True
        key = (principal, host, op, rtype, name)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        allowed = False
        for acl in self._applicable(rtype, name):
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.host != WILDCARD and acl.host != host:
                continue
            verdict = _verdict(op, acl)
            if verdict == Permission.DENY:
                allowed = False
                break
            if verdict == Permission.ALLOW:
                allowed = True
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = allowed
        return allowed

    def authorized_operations(self, principal: str, host: str, rtype: ResourceType, name: str) -> int:
        """KIP-430 bit field: bit `op` set for every supported operation allowed."""
        bits = 0
        for op in SUPPORTED_OPERATIONS.get(rtype, ()):
            if self.authorize(principal, host, op, rtype, name):
                bits |= 1 << int(op)
        return bits

    def authorize_by_type(self, principal: str, host: str, op: Operation, rtype: ResourceType) -> bool:
        """StandardAuthorizer.authorizeByResourceType: is `op` allowed on at least one
        resource of the type? (InitProducerId of an idempotent producer without
        IdempotentWrite asks whether it may Write to some topic.)"""
        if principal in self.super_users:
            return True
        mine = [b for b in self._acls
                if b.resource_type == rtype and b.principal in (principal, WILDCARD_PRINCIPAL)
                and b.host in (WILDCARD, host) and b.operation in (op, Operation.ALL)]
        denies = [b for b in mine if b.permission == Permission.DENY]
        if any(b.pattern_type == PatternType.LITERAL and b.name == WILDCARD for b in denies):
            return False
        deny_literal = {b.name for b in denies if b.pattern_type == PatternType.LITERAL}
        deny_prefix = [b.name for b in denies if b.pattern_type == PatternType.PREFIXED]
        for b in mine:
            if b.permission != Permission.ALLOW:
                continue
            if b.pattern_type == PatternType.LITERAL and b.name == WILDCARD:
                return True
            if b.pattern_type == PatternType.LITERAL and b.name in deny_literal:
                continue
            if any(b.name.startswith(p) for p in deny_prefix):
                continue
            return True
        return False
