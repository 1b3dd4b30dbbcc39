"""The adopt-or-conflict rule for target topics the link did not create (mirror/replication/existing.py),
the planner's side of it, and the translation-mode claim record."""

from __future__ import annotations

from mirror.config.model import LinkConfig
from mirror.replication.existing import Existing, conflict_reason
from mirror.records.offsets import CLAIM_PARTITION, OffsetSyncIndex, claim_sync, decode_sync, encode_sync
from mirror.config.policy import ReplicationPolicy
from mirror.replication.topics import AdoptExisting, CreatePartitions, TopicDescription as T, plan_topics


def test_only_empty_topics_at_offset_zero_without_group_offsets_are_adoptable() -> None:
    assert Existing("t", {0: (0, 0), 1: (0, 0)}).adoptable
    assert not Existing("t", {0: (0, 1)}).adoptable
    assert not Existing("t", {0: (0, 0)}, ("billing",)).adoptable
    assert not Existing("t", {0: (0, 0)}, (), "other-dc").adoptable
    assert not Existing("t", {0: (5, 5)}).adoptable  # offsets could not match the source's
    assert Existing("t", {0: (5, 5)}, at_zero=False).adoptable  # translation: empty is enough
    assert not Existing("t", {0: (5, 6)}, at_zero=False).adoptable


def test_the_reason_names_topic_findings_and_the_resolving_command() -> None:
    reason = conflict_reason(Existing("orders", {0: (0, 3), 1: (0, 0)}, ("billing",)), "e2w", "dc.yaml")
    assert "target topic orders already exists" in reason and "link e2w" in reason
    assert "3 record(s) in partition(s) 0 of 2" in reason
    assert "dcmirror link adopt dc.yaml --link e2w --topic orders --truncate" in reason
    marked = conflict_reason(Existing("orders", {0: (0, 0)}, (), "west"), "e2w", "dc.yaml")
    assert "marked as a mirror of 'west'" in marked


def _link() -> LinkConfig:
    return LinkConfig(name="e2w", source="east", target="west", topics=["orders.*"])


def test_the_planner_asks_to_adopt_existing_topics_it_does_not_own() -> None:
    lk = _link()
    policy = ReplicationPolicy.for_link(lk, ["east", "west"])
    sources = [T("orders.a", 3, {}, "id-a"), T("orders.b", 2, {}, "id-b")]
    targets = [T("orders.a", 1), T("orders.b", 2)]
    plan = plan_topics(sources, targets, lk, policy, None, owned={"orders.b"})
    assert plan.actions == (AdoptExisting("orders.a", "orders.a", 3, (CreatePartitions("orders.a", 3),)),)
    assert {m.source for m in plan.mirrored} == {"orders.a", "orders.b"}  # the applier blocks conflicts
    owned = plan_topics(sources, targets, lk, policy, None, owned={"orders.a", "orders.b"})
    assert owned.actions == (CreatePartitions("orders.a", 3),)


def test_a_claim_is_a_sync_record_translation_never_asks_for() -> None:
    key, value = encode_sync(claim_sync("orders"))
    back = decode_sync(key, value)
    assert (back.topic, back.partition) == ("orders", CLAIM_PARTITION)
    index = OffsetSyncIndex()
    index.add(back)
    assert index.translate("orders", 0, 10) is None  # no translation point for real partitions
