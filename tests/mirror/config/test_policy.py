"""Naming, filters, loop prevention and the conservative regex-overlap check."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirror.config.model import LinkConfig
from mirror.config.policy import (
    NameFilter,
    ReplicationPolicy,
    filters_may_overlap,
    is_internal_topic,
    patterns_may_overlap,
)

ALIASES = frozenset({"east", "west", "south"})


def prefix(source: str, target: str, topics: tuple[str, ...] = (".*",)) -> ReplicationPolicy:
    return ReplicationPolicy(source, target, "prefix", ".", NameFilter(topics), known_aliases=ALIASES)


def test_identity_names() -> None:
    p = ReplicationPolicy("east", "west", "identity")
    assert p.target_topic("orders") == "orders"
    assert p.source_of("orders") == "orders"


def test_prefix_names_and_inverse() -> None:
    p = prefix("east", "west")
    assert p.target_topic("orders") == "east.orders"
    assert p.source_of("east.orders") == "orders"
    assert p.source_of("east.") is None
    assert p.source_of("west.orders") is None
    assert p.source_of("orders") is None
    custom = ReplicationPolicy("east", "west", "prefix", "_")
    assert custom.target_topic("orders") == "east_orders"
    assert custom.source_of("east_orders") == "orders"


@given(st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True), st.sampled_from([".", "_", "-", "::"]))
def test_prefix_round_trips(topic: str, sep: str) -> None:
    p = ReplicationPolicy("east", "west", "prefix", sep)
    assert p.source_of(p.target_topic(topic)) == topic


def test_full_match_filters() -> None:
    f = NameFilter(("orders.*", "payments"), ("orders\\.test",))
    assert f.matches("orders") and f.matches("orders.eu") and f.matches("payments")
    assert not f.matches("payments-archive")  # full match, not search
    assert not f.matches("my-orders")
    assert not f.matches("orders.test")


@pytest.mark.parametrize(
    "topic",
    [
        "__consumer_offsets",
        "__transaction_state",
        "__dcmirror.offset-syncs.east-to-west",
        "__dcmirror.checkpoints.east-to-west",
        "mm2-offset-syncs.west.internal",
        "east.checkpoints.internal",
        "mm2-configs.east.internal",
        "connect-offsets-internal",
        "heartbeats",
        "east.heartbeats",
        ".hidden",
    ],
)
def test_internal_topics_are_never_mirrored(topic: str) -> None:
    assert is_internal_topic(topic)
    assert not ReplicationPolicy("east", "west", "identity").should_mirror_topic(topic)


@pytest.mark.parametrize("topic", ["orders", "_schemas", "payments.internalized", "heartbeat-svc"])
def test_user_topics_are_not_internal(topic: str) -> None:
    assert not is_internal_topic(topic)


def test_active_active_loop_prevention() -> None:
    east_to_west, west_to_east = prefix("east", "west"), prefix("west", "east")
    # east's orders arrive on west as east.orders ...
    assert east_to_west.should_mirror_topic("orders")
    mirrored = east_to_west.target_topic("orders")
    # ... and west->east never sends them back to east
    assert not west_to_east.should_mirror_topic(mirrored)
    assert west_to_east.should_mirror_topic("orders")
    # longer chains: west.east.orders on south never goes to east or west
    assert not prefix("south", "east").should_mirror_topic("west.east.orders")
    assert not prefix("south", "west").should_mirror_topic("west.east.orders")
    # a dotted user topic is not provenance unless it starts with a known alias
    assert prefix("east", "west").should_mirror_topic("orders.east")


def test_provenance_walks_known_aliases_only() -> None:
    p = prefix("south", "east")
    assert p.provenance("west.east.orders") == ["west", "east"]
    assert p.provenance("orders.eu") == []
    assert p.provenance("west.") == []


def test_group_filter() -> None:
    p = ReplicationPolicy("east", "west", groups=NameFilter(("billing.*", "ship"), ("billing-test",)))
    assert p.should_mirror_group("billing") and p.should_mirror_group("billing-eu")
    assert p.should_mirror_group("ship")
    assert not p.should_mirror_group("billing-test")
    assert not p.should_mirror_group("shipping")
    everything = ReplicationPolicy("east", "west")
    assert everything.should_mirror_group("any")
    assert not everything.should_mirror_group("__internal") and not everything.should_mirror_group("dcmirror-east")


def test_for_link() -> None:
    link = LinkConfig(name="l", source="east", target="west", topics=["a.*"], exclude=["a\\.b"],
                      groups=["g"], rename="prefix", separator="-")
    p = ReplicationPolicy.for_link(link, ["east", "west"])
    assert p.target_topic("a1") == "east-a1"
    assert p.should_mirror_topic("a1") and not p.should_mirror_topic("a.b")
    assert p.should_mirror_group("g") and not p.should_mirror_group("h")


def test_bad_policy_arguments() -> None:
    with pytest.raises(ValueError):
        ReplicationPolicy("a", "b", "mirror")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ReplicationPolicy("a", "b", "prefix", "")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("orders", "orders", True),
        ("orders", "payments", False),
        ("orders.*", "orders\\.eu", True),
        ("orders.*", "payments", False),
        ("east\\..*", "west\\..*", False),
        ("east\\..*", "ea.*", True),
        (".*\\.log", ".*\\.txt", False),
        (".*", "anything", True),
        ("(?i)orders.*", "ORDERS", True),
        ("a|b", "c.*", True),  # alternation: we cannot tell, so say "may"
    ],
)
def test_pattern_overlap(a: str, b: str, expected: bool) -> None:
    assert patterns_may_overlap(a, b) is expected
    assert patterns_may_overlap(b, a) is expected


names = st.from_regex(r"[a-z.]{0,8}", fullmatch=True)
simple_patterns = st.one_of(
    names.map(re.escape),
    names.map(lambda s: re.escape(s) + ".*"),
    names.map(lambda s: ".*" + re.escape(s)),
    st.tuples(names, names).map(lambda t: re.escape(t[0]) + ".*" + re.escape(t[1])),
)


@given(simple_patterns, simple_patterns, names, names)
def test_overlap_is_conservative(a: str, b: str, x: str, y: str) -> None:
    """If a name matches both, we must never have said "disjoint"."""
    for candidate in (x, y, x + y, y + x):
        if re.fullmatch(a, candidate) and re.fullmatch(b, candidate):
            assert patterns_may_overlap(a, b)


def test_filters_overlap_honours_literal_excludes() -> None:
    assert filters_may_overlap(["payments"], [], ["pay.*"], []) == ("payments", "pay.*")
    assert filters_may_overlap(["payments"], ["payments"], ["pay.*"], []) is None
    assert filters_may_overlap(["__consumer_offsets"], [], [".*"], []) is None
    assert filters_may_overlap(["a.*"], [], ["b.*"], []) is None
