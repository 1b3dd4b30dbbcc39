"""The topic planner: source vs target descriptions -> actions, idempotent when in sync."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy
from mirror.replication.topics import (
    MIRRORED_CONFIGS,
    NEVER_MIRRORED,
    AlterConfigs,
    CreatePartitions,
    CreateTopic,
    DeleteTopic,
    MirroredTopic,
    ReportDeleted,
    ReportRecreated,
    TopicDescription,
    TopicPlan,
    Warn,
    mirrored_config,
    plan_topics,
)

T = TopicDescription


def link(**kw: object) -> LinkConfig:
    base: dict[str, object] = {"name": "ew", "source": "east", "target": "west", "topics": ["orders.*", "payments"]}
    base.update(kw)
    return LinkConfig(**base)  # type: ignore[arg-type]


def plan(sources: Iterable[T], targets: Iterable[T], lk: LinkConfig | None = None,
         known: dict[str, str] | None = None) -> TopicPlan:
    lk = lk or link()
    policy = ReplicationPolicy.for_link(lk, ["east", "west"])
    return plan_topics(list(sources), list(targets), lk, policy, known)


def apply(plan_: TopicPlan, targets: list[T]) -> list[T]:
    """What an admin client would leave on the target after applying the plan."""
    by_name = {t.name: t for t in targets}
    for action in plan_.actions:
        if isinstance(action, CreateTopic):
            by_name[action.name] = T(action.name, action.partitions, action.configs)
        elif isinstance(action, CreatePartitions):
            old = by_name[action.name]
            by_name[action.name] = T(old.name, action.total, old.configs, old.topic_id)
        elif isinstance(action, AlterConfigs):
            old = by_name[action.name]
            configs = {k: v for k, v in old.configs.items() if k not in action.delete} | dict(action.set)
            by_name[action.name] = T(old.name, old.partitions, configs, old.topic_id)
        elif isinstance(action, DeleteTopic):
            del by_name[action.name]
    return list(by_name.values())


def test_creates_missing_topics_with_mirrored_configs_only() -> None:
    src = [
        T("orders", 6, {"retention.ms": "86400000", "min.insync.replicas": "2", "cleanup.policy": "delete"}, "id1"),
        T("payments", 3, {}, "id2"),
        T("scratch", 1, {}, "id3"),
        T("__consumer_offsets", 50, {}, "id4"),
    ]
    p = plan(src, [])
    assert p.actions == (
        CreateTopic("orders", 6, {"retention.ms": "86400000", "cleanup.policy": "delete"}, -1, "orders"),
        CreateTopic("payments", 3, {}, -1, "payments"),
    )
    assert p.mirrored == (MirroredTopic("orders", "orders", 6), MirroredTopic("payments", "payments", 3))
    assert dict(p.source_ids) == {"orders": "id1", "payments": "id2"}


def test_prefix_naming_and_replication_factor() -> None:
    p = plan([T("orders", 2)], [], link(rename="prefix", replication_factor=3))
    assert p.actions == (CreateTopic("east.orders", 2, {}, 3, "orders"),)


def test_in_sync_target_yields_no_actions() -> None:
    src = [T("orders", 4, {"retention.ms": "1000"}, "id1")]
    tgt = [T("orders", 4, {"retention.ms": "1000", "min.insync.replicas": "2"})]
    assert plan(src, tgt, known={"orders": "id1"}).actions == ()


def test_grows_partitions_and_warns_when_target_has_more() -> None:
    assert plan([T("orders", 8)], [T("orders", 4)]).actions == (CreatePartitions("orders", 8),)
    (warn,) = plan([T("orders", 2)], [T("orders", 4)]).actions
    assert isinstance(warn, Warn) and warn.topic == "orders" and "4 partitions" in warn.message


def test_alters_changed_configs_and_deletes_dropped_overrides() -> None:
    src = [T("orders", 1, {"retention.ms": "5", "compression.type": "zstd"})]
    tgt = [T("orders", 1, {"retention.ms": "9", "max.message.bytes": "100", "min.insync.replicas": "3"})]
    (alter,) = plan(src, tgt).actions
    assert alter == AlterConfigs("orders", {"retention.ms": "5", "compression.type": "zstd"}, ("max.message.bytes",))
    # the target's own broker-local override is left alone
    assert "min.insync.replicas" not in alter.delete


def test_exclude_configs_and_sync_configs_off() -> None:
    src = [T("orders", 1, {"retention.ms": "5", "segment.bytes": "1024"})]
    p = plan(src, [T("orders", 1, {"segment.bytes": "2048"})], link(exclude_configs=["segment\\..*"]))
    assert p.actions == (AlterConfigs("orders", {"retention.ms": "5"}, ()),)
    assert plan(src, [T("orders", 1)], link(sync_configs=False)).actions == ()
    assert plan(src, [], link(sync_configs=False)).actions == (CreateTopic("orders", 1, {}, -1, "orders"),)


def test_never_mirrors_broker_local_configs() -> None:
    assert not (MIRRORED_CONFIGS & NEVER_MIRRORED)
    everything = {k: "1" for k in MIRRORED_CONFIGS | NEVER_MIRRORED | {"confluent.placement.constraints"}}
    assert set(mirrored_config(everything)) == set(MIRRORED_CONFIGS)
    for key in ("retention.ms", "retention.bytes", "cleanup.policy", "max.message.bytes",
                "message.timestamp.type", "segment.bytes", "compression.type",
                "delete.retention.ms", "min.compaction.lag.ms"):
        assert key in MIRRORED_CONFIGS


def test_deleted_source_is_reported_or_propagated() -> None:
    known = {"orders": "id1"}
    p = plan([], [T("orders", 1)], known=known)
    assert p.actions == (ReportDeleted("orders", "orders"),)
    assert "orders" not in p.source_ids  # reported once
    assert plan([], [T("orders", 1)], known=dict(p.source_ids)).actions == ()
    p = plan([], [T("orders", 1)], link(propagate_deletes=True), known=known)
    assert p.actions == (DeleteTopic("orders", "orders"),)
    assert dict(p.source_ids) == known  # until the target copy is gone


def test_identity_never_claims_target_topics_it_did_not_mirror() -> None:
    assert plan([], [T("orders", 1), T("local-only", 1)]).actions == ()
    assert plan([], [T("orders", 1)], link(propagate_deletes=True), known={}).actions == ()


def test_prefix_recognises_its_topics_by_name() -> None:
    p = plan([], [T("east.orders", 1), T("west.orders", 1), T("east.unrelated", 1)], link(rename="prefix"))
    assert p.actions == (ReportDeleted("orders", "east.orders"),)


def test_recreated_source_is_reported_and_not_mirrored() -> None:
    p = plan([T("orders", 3, {}, "new")], [T("orders", 3)], known={"orders": "old"})
    assert p.actions == (ReportRecreated("orders", "orders", "old", "new"),)
    assert p.mirrored == ()
    assert dict(p.source_ids) == {"orders": "old"}  # keeps refusing until an operator acts
    assert plan([T("orders", 3, {}, "new")], [T("orders", 3)], known=dict(p.source_ids)).actions == p.actions
    # once the operator deletes the old copy, the new topic is mirrored afresh
    fresh = plan([T("orders", 3, {}, "new")], [], known=dict(p.source_ids))
    assert fresh.actions == (CreateTopic("orders", 3, {}, -1, "orders"),)
    assert dict(fresh.source_ids) == {"orders": "new"}


def test_adopting_an_existing_target_topic_warns_once() -> None:
    p = plan([T("orders", 1, {}, "id1")], [T("orders", 1)], known={})
    assert [type(a) for a in p.actions] == [Warn]
    assert plan([T("orders", 1, {}, "id1")], [T("orders", 1)], known=dict(p.source_ids)).actions == ()


def test_loops_are_not_planned() -> None:
    lk = link(source="west", target="east", rename="prefix", topics=[".*"])
    policy = ReplicationPolicy.for_link(lk, ["east", "west"])
    p = plan_topics([T("east.orders", 1), T("orders", 1)], [], lk, policy)
    assert p.actions == (CreateTopic("west.orders", 1, {}, -1, "orders"),)


config_values = st.dictionaries(
    st.sampled_from(sorted(MIRRORED_CONFIGS | NEVER_MIRRORED)), st.sampled_from(["1", "2", "delete"]), max_size=5
)
topic_descs = st.lists(
    st.tuples(st.sampled_from(["orders", "orders.eu", "payments", "other"]), st.integers(1, 8), config_values),
    unique_by=lambda t: t[0],
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(topic_descs, topic_descs, st.sampled_from(["identity", "prefix"]), st.booleans())
def test_applying_a_plan_reaches_a_fixed_point(src_raw: list, tgt_raw: list, rename: str, deletes: bool) -> None:
    lk = link(rename=rename, propagate_deletes=deletes)
    sources = [T(n, p, c, f"id-{n}") for n, p, c in src_raw]
    policy = ReplicationPolicy.for_link(lk, ["east", "west"])
    targets = [T(policy.target_topic(n), p, c) for n, p, c in tgt_raw]
    first = plan(sources, targets, lk)
    after = apply(first, targets)
    second = plan(sources, after, lk, known=dict(first.source_ids))
    # only warnings about extra target partitions may remain: we never shrink topics
    assert all(isinstance(a, Warn) and "partitions" in a.message for a in second.actions), second.actions
    for m in first.mirrored:
        tgt = next(t for t in after if t.name == m.target)
        assert tgt.partitions >= m.partitions
