"""What a link may do on each end, and whether a cluster lets it: the pure half of `dcmirror check`.

A link runs with least privilege, so the list of ACLs it needs is part of the product: the
README prints it, `dcmirror check` verifies it before any data moves, and the same list
turns into `kafka-acls` lines for whatever is missing. The list follows what `mirror/`
really sends on each end (see README "What a link needs"):

- source: Metadata and ListOffsets (Describe), Fetch (Read), DescribeConfigs (topic configs
  follow, unless ``sync_configs: false``); ListGroups and OffsetFetch of the link's groups
  (Describe on each group).
- target: Metadata/ListOffsets (Describe), CreateTopics (Create, for topics not there yet),
  CreatePartitions (Alter), DescribeConfigs/IncrementalAlterConfigs (configs follow; in
  offset-preserving mode always: the link reads and sets the mirror marker),
  DeleteTopics (only with ``propagate_deletes``), Produce (Write) of the data in translation
  mode, OffsetCommit of checkpoints (Read on the group *and* on the topic, as Kafka checks
  both), DescribeGroups (Describe); the link's bookkeeping topics ``__dcmirror.*.<link>``
  (Create, Read, Write); the scale-out group ``dcmirror.<link>`` (Read: JoinGroup,
  SyncGroup, Heartbeat, LeaveGroup); and on a dcmirror target in offset-preserving mode
  ClusterAction on the cluster (DcMirrorAppend, the ``dcmirror.mirror.source`` config).

Evidence comes from KIP-430 (authorized operations in Metadata, DescribeGroups and
DescribeCluster) where the broker reports it, else from harmless probes (validate-only
requests, requests for a topic that does not exist yet); `verdict` combines them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Iterable, Literal

from mirror.config.model import LinkConfig
from mirror.records.link_state import last_contact_topic, link_state_topic
from mirror.daemon.membership import group_id_for
from mirror.records.offsets import checkpoints_topic, offset_syncs_topic
from mirror.config.policy import ReplicationPolicy

#: Kafka's AclOperation codes (KIP-430 bitfields set bit ``1 << code``).
OPERATIONS: dict[int, str] = {
    3: "Read", 4: "Write", 5: "Create", 6: "Delete", 7: "Alter", 8: "Describe",
    9: "ClusterAction", 10: "DescribeConfigs", 11: "AlterConfigs", 12: "IdempotentWrite",
    13: "CreateTokens", 14: "DescribeTokens", 15: "TwoPhaseCommit",
}
#: "The broker did not compute authorized operations" (not asked, not supported).
NOT_PROVIDED = -(2**31)

ResourceType = Literal["Topic", "Group", "Cluster"]
Status = Literal["granted", "missing", "unknown"]
End = Literal["source", "target"]


def decode_operations(bits: int | None) -> frozenset[str] | None:
    """The operation names of a KIP-430 bitfield; None when the broker reported none."""
    if bits is None or bits == NOT_PROVIDED or bits < 0:
        return None
    return frozenset(name for code, name in OPERATIONS.items() if bits & (1 << code))


@dataclass(frozen=True)
class Requirement:
    """One operation on one resource, and the mirror step that needs it."""

    end: End
    resource_type: ResourceType
    name: str  # "kafka-cluster" for the cluster
    operation: str
    why: str


@dataclass
class Evidence:
    """What a cluster said about one resource.

    ``exists``: None when not known (the principal may not Describe it). ``operations``:
    the KIP-430 set, None when not reported. ``probes``: operation -> allowed, from a
    harmless request that fails with an authorization error only when denied.
    ``describe_denied``: the broker answered an authorization error to Describe."""

    exists: bool | None = None
    operations: frozenset[str] | None = None
    probes: dict[str, bool] = field(default_factory=dict)
    describe_denied: bool = False


@dataclass(frozen=True)
class Verdict:
    requirement: Requirement
    status: Status
    how: str  # where the answer came from: "KIP-430", "probe", or why it is unknown


#: Operations whose grant implies Describe (Kafka's ACL implication rules).
_IMPLIES_DESCRIBE = frozenset({"Read", "Write", "Delete", "Alter"})


def verdict(req: Requirement, ev: Evidence) -> Verdict:
    """Granted / missing / unknown for one requirement, from what the cluster said."""
    op = req.operation
    if ev.operations is not None and op in ev.operations:
        return Verdict(req, "granted", "KIP-430")
    if op in ev.probes:
        return Verdict(req, "granted" if ev.probes[op] else "missing", "probe")
    if ev.describe_denied and (op == "Describe" or op in _IMPLIES_DESCRIBE):
        return Verdict(req, "missing", "Describe denied")
    if ev.operations is not None:  # the broker computed them: authoritative
        return Verdict(req, "missing", "KIP-430")
    if ev.exists is False:
        return Verdict(req, "unknown", f"{req.resource_type.lower()} does not exist yet")
    return Verdict(req, "unknown", "not reported by the broker")


# -- what a link needs -------------------------------------------------------------------


def internal_topics(link: LinkConfig, translate: bool) -> list[str]:
    """The link's own bookkeeping topics on its target."""
    names = [checkpoints_topic(link.name), link_state_topic(link.name), last_contact_topic(link.name)]
    if translate:
        names.insert(0, offset_syncs_topic(link.name))
    return names


def source_requirements(link: LinkConfig, topics: Iterable[str], groups: Iterable[str]) -> list[Requirement]:
    """Per mirrored source topic and checkpointed source group."""
    out = []
    for t in sorted(topics):
        out.append(Requirement("source", "Topic", t, "Describe", "metadata, end offsets"))
        out.append(Requirement("source", "Topic", t, "Read", "fetch the data"))
        if link.sync_configs:
            out.append(Requirement("source", "Topic", t, "DescribeConfigs", "topic configs follow"))
    for g in sorted(groups):
        out.append(Requirement("source", "Group", g, "Describe", "read committed offsets for checkpoints"))
    return out


def target_requirements(
    link: LinkConfig, policy: ReplicationPolicy, source_topics: Iterable[str], groups: Iterable[str],
    *, translate: bool, existing: set[str],
) -> list[Requirement]:
    """Per target topic (created where missing), internal topic, group, and the cluster.
    ``existing``: target topics known to exist (no Create needed)."""
    out = []
    if not translate:
        out.append(Requirement("target", "Cluster", "kafka-cluster", "ClusterAction",
                               "offset-preserving append (DcMirrorAppend), dcmirror.mirror.source"))
    has_groups = bool(link.groups)
    for t in sorted(policy.target_topic(s) for s in source_topics):
        if t not in existing:
            out.append(Requirement("target", "Topic", t, "Create", "create the copy"))
        out.append(Requirement("target", "Topic", t, "Describe", "metadata, end offsets"))
        if translate:
            out.append(Requirement("target", "Topic", t, "Write", "produce the data"))
        out.append(Requirement("target", "Topic", t, "Alter", "partition count follows"))
        if link.sync_configs or not translate:
            why = "topic configs follow" if link.sync_configs else "mirror marker (adopt existing topics)"
            out.append(Requirement("target", "Topic", t, "DescribeConfigs", why))
            out.append(Requirement("target", "Topic", t, "AlterConfigs", why))
        if has_groups:
            out.append(Requirement("target", "Topic", t, "Read", "commit group offsets (checkpoints)"))
        if link.propagate_deletes:
            out.append(Requirement("target", "Topic", t, "Delete", "propagate_deletes"))
    for t in internal_topics(link, translate):
        if t not in existing:
            out.append(Requirement("target", "Topic", t, "Create", "the link's bookkeeping"))
        out.append(Requirement("target", "Topic", t, "Read", "the link's bookkeeping"))
        out.append(Requirement("target", "Topic", t, "Write", "the link's bookkeeping"))
    for g in sorted(groups):
        out.append(Requirement("target", "Group", g, "Read", "commit checkpointed offsets"))
    out.append(Requirement("target", "Group", group_id_for(link.name), "Read",
                           "scale-out membership (JoinGroup, Heartbeat)"))
    return out


# -- kafka-acls lines ------------------------------------------------------------------


def acl_pattern(regex: str) -> tuple[str, str] | None:
    """(pattern type, name) of the Kafka resource pattern matching what ``regex`` matches,
    when there is one: a literal name, ``prefix.*`` (PREFIXED), or ``.*`` (``*``)."""
    if regex in (".*", ".+"):
        return "literal", "*"
    try:
        parsed = list(sre_parser.parse(regex))
    except re.error:
        return None
    chars = []
    for i, (op, av) in enumerate(parsed):
        if op == sre_constants.LITERAL:
            chars.append(chr(av))
            continue
        if op == sre_constants.MAX_REPEAT and i == len(parsed) - 1 and chars:
            lo, hi, item = av
            if lo == 0 and hi == sre_constants.MAXREPEAT and list(item) == [(sre_constants.ANY, None)]:
                return "prefixed", "".join(chars)
        return None
    return ("literal", "".join(chars)) if chars else None


def acl_command(principal: str, bootstrap: str, resource_type: str, name: str, operations: Iterable[str],
                pattern: str = "literal", config_file: str | None = None) -> str:
    """One `kafka-acls` line granting ``operations`` on one resource."""
    flag = {"Topic": "--topic", "Group": "--group"}.get(resource_type)
    parts = ["kafka-acls", "--bootstrap-server", bootstrap]
    if config_file:
        parts += ["--command-config", config_file]
    parts += ["--add", "--allow-principal", principal]
    for op in operations:
        parts += ["--operation", op]
    parts += ["--cluster"] if flag is None else [flag, _quote(name)]
    if pattern != "literal" and flag is not None:
        parts += ["--resource-pattern-type", pattern]
    return " ".join(parts)


def _quote(name: str) -> str:
    return f"'{name}'" if name == "*" or not re.fullmatch(r"[A-Za-z0-9._-]+", name) else name


def grant_commands(principal: str, bootstrap: str, missing: Iterable[Requirement]) -> list[str]:
    """`kafka-acls` lines granting exactly ``missing``: one line per resource."""
    by_resource: dict[tuple[str, str], list[str]] = {}
    for r in missing:
        ops = by_resource.setdefault((r.resource_type, r.name), [])
        if r.operation not in ops:
            ops.append(r.operation)
    return [acl_command(principal, bootstrap, rt, name, ops) for (rt, name), ops in by_resource.items()]
