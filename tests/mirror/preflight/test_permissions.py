"""The permission table of `dcmirror check`: what a link needs per end, how evidence
(KIP-430 bitfields, probes) turns into granted/missing/unknown, and the kafka-acls lines."""

from __future__ import annotations

from mirror.config.model import LinkConfig
from mirror.preflight.permissions import (
    NOT_PROVIDED,
    Evidence,
    Requirement,
    acl_command,
    acl_pattern,
    decode_operations,
    grant_commands,
    source_requirements,
    target_requirements,
    verdict,
)
from mirror.config.policy import ReplicationPolicy


def _link(**kw) -> LinkConfig:
    return LinkConfig(name="l", source="east", target="west", topics=["orders\\..*"], **kw)


def _ops(reqs, name):
    return {r.operation for r in reqs if r.name == name}


def test_decode_kip430_bitfield() -> None:
    bits = (1 << 3) | (1 << 8) | (1 << 10)  # Read, Describe, DescribeConfigs
    assert decode_operations(bits) == {"Read", "Describe", "DescribeConfigs"}
    assert decode_operations(NOT_PROVIDED) is None
    assert decode_operations(None) is None
    assert decode_operations(0) == frozenset()


def test_source_needs_describe_read_describeconfigs_and_group_describe() -> None:
    reqs = source_requirements(_link(), ["orders.eu"], ["billing"])
    assert _ops(reqs, "orders.eu") == {"Describe", "Read", "DescribeConfigs"}
    assert _ops(reqs, "billing") == {"Describe"}
    assert {r.end for r in reqs} == {"source"}
    no_cfg = source_requirements(_link(sync_configs=False), ["orders.eu"], [])
    assert _ops(no_cfg, "orders.eu") == {"Describe", "Read"}


def test_foreign_target_needs_write_and_the_bookkeeping_topics() -> None:
    link = _link()
    policy = ReplicationPolicy.for_link(link)
    reqs = target_requirements(link, policy, ["orders.eu"], ["billing"], translate=True, existing=set())
    assert _ops(reqs, "orders.eu") == {"Create", "Describe", "Write", "Alter", "DescribeConfigs",
                                        "AlterConfigs", "Read"}
    for t in ("__dcmirror.offset-syncs.l", "__dcmirror.checkpoints.l", "__dcmirror.link-state.l",
              "__dcmirror.last-contact.l"):
        assert _ops(reqs, t) == {"Create", "Read", "Write"}, t
    assert _ops(reqs, "billing") == {"Read"}
    assert _ops(reqs, "dcmirror.l") == {"Read"}
    assert not any(r.resource_type == "Cluster" for r in reqs)


def test_dcmirror_target_needs_cluster_action_not_write_and_no_offset_syncs() -> None:
    link = _link(rename="prefix", propagate_deletes=True)
    policy = ReplicationPolicy.for_link(link)
    reqs = target_requirements(link, policy, ["orders.eu"], [], translate=False,
                               existing={"east.orders.eu", "__dcmirror.link-state.l"})
    assert ("Cluster", "kafka-cluster", "ClusterAction") in {(r.resource_type, r.name, r.operation) for r in reqs}
    assert _ops(reqs, "east.orders.eu") == {"Describe", "Alter", "DescribeConfigs", "AlterConfigs", "Read",
                                            "Delete"}  # exists: no Create; no Write (private append)
    assert _ops(reqs, "__dcmirror.link-state.l") == {"Read", "Write"}
    assert not _ops(reqs, "__dcmirror.offset-syncs.l")


def test_no_groups_means_no_topic_read_for_commits() -> None:
    link = _link(groups=[])
    reqs = target_requirements(link, ReplicationPolicy.for_link(link), ["orders.eu"], [], translate=True,
                               existing={"orders.eu"})
    assert "Read" not in _ops(reqs, "orders.eu")


R = Requirement("target", "Topic", "t", "Write", "why")


def test_verdict_prefers_kip430_and_treats_it_as_authoritative() -> None:
    assert verdict(R, Evidence(exists=True, operations=frozenset({"Write"}))).status == "granted"
    v = verdict(R, Evidence(exists=True, operations=frozenset({"Read", "Describe"})))
    assert (v.status, v.how) == ("missing", "KIP-430")


def test_verdict_uses_probes_when_kip430_is_silent() -> None:
    assert verdict(R, Evidence(exists=False, probes={"Write": True})).status == "granted"
    assert verdict(R, Evidence(exists=False, probes={"Write": False})).status == "missing"
    unknown = verdict(Requirement("target", "Topic", "t", "Delete", "x"), Evidence(exists=False))
    assert unknown.status == "unknown" and "does not exist" in unknown.how
    assert verdict(R, Evidence(exists=True)).status == "unknown"


def test_describe_denied_denies_everything_that_implies_describe() -> None:
    ev = Evidence(describe_denied=True, probes={"Describe": False})
    assert verdict(R, ev).status == "missing"
    assert verdict(Requirement("source", "Group", "g", "Read", "x"), ev).status == "missing"
    # DescribeConfigs does not imply Describe in Kafka: a probe decides
    assert verdict(Requirement("source", "Topic", "t", "DescribeConfigs", "x"), ev).status == "unknown"


def test_acl_patterns_from_link_regexes() -> None:
    assert acl_pattern("payments") == ("literal", "payments")
    assert acl_pattern("orders\\..*") == ("prefixed", "orders.")
    assert acl_pattern(".*") == ("literal", "*")
    assert acl_pattern("orders|payments") is None
    assert acl_pattern("a.b") is None  # '.' is any character
    assert acl_pattern("x.*y") is None


def test_grant_commands_one_line_per_resource() -> None:
    missing = [Requirement("target", "Topic", "orders.eu", "Write", ""),
               Requirement("target", "Topic", "orders.eu", "Create", ""),
               Requirement("target", "Group", "billing", "Read", ""),
               Requirement("target", "Cluster", "kafka-cluster", "ClusterAction", "")]
    lines = grant_commands("User:mirror", "k:9093", missing)
    assert lines == [
        "kafka-acls --bootstrap-server k:9093 --add --allow-principal User:mirror --operation Write "
        "--operation Create --topic orders.eu",
        "kafka-acls --bootstrap-server k:9093 --add --allow-principal User:mirror --operation Read --group billing",
        "kafka-acls --bootstrap-server k:9093 --add --allow-principal User:mirror --operation ClusterAction --cluster",
    ]
    assert acl_command("User:m", "b:1", "Topic", "orders.", ["Read"], "prefixed").endswith(
        "--topic orders. --resource-pattern-type prefixed")
