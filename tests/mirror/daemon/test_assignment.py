"""The scale-out assignor: balanced, deterministic, sticky, and never two owners at once."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.daemon.assignment import (
    Assignment,
    AssignmentDecodeError,
    MemberMetadata,
    assign,
    from_ranges,
    to_ranges,
)

TP = tuple[str, int]


def parts(**topics: int) -> frozenset[TP]:
    return frozenset((t, p) for t, n in topics.items() for p in range(n))


def meta(owned=frozenset(), generation: int = 1) -> MemberMetadata:
    return MemberMetadata("h", 1, frozenset(owned) if owned is not None else None, generation)


def test_fresh_group_is_split_evenly_and_completely() -> None:
    ps = parts(orders=6, payments=1)
    plan = assign({"m-b": meta(), "m-a": meta(), "m-c": meta()}, ps)
    shares = plan.now
    assert sorted(len(s) for s in shares.values()) == [2, 2, 3]
    assert frozenset().union(*shares.values()) == ps
    assert sum(len(s) for s in shares.values()) == len(ps)  # disjoint
    # round-robin: each member gets partitions of orders, not one block
    assert all(any(t == "orders" for t, _ in s) for s in shares.values())


def test_result_does_not_depend_on_input_order() -> None:
    ps = parts(a=5, b=3)
    members = {f"m{i}": meta({("a", i)}) for i in range(4)}
    expected = assign(members, ps)
    for seed in range(10):
        keys = list(members)
        random.Random(seed).shuffle(keys)
        plist = list(ps)
        random.Random(seed).shuffle(plist)
        again = assign({k: members[k] for k in keys}, plist)
        assert again.now == expected.now and again.target == expected.target


def test_single_member_gets_everything() -> None:
    ps = parts(t=8)
    assert assign({"only": meta()}, ps).now == {"only": ps}


def test_a_member_leaving_moves_only_its_share() -> None:
    ps = parts(t=6)
    first = assign({"a": meta(), "b": meta()}, ps).now
    # b is gone: a keeps its own and takes b's, nothing withheld (b is not there to revoke)
    plan = assign({"a": meta(first["a"], 1)}, ps)
    assert plan.now == {"a": ps} and not plan.withheld


def test_a_joining_member_waits_until_the_owner_revoked() -> None:
    ps = parts(t=6)
    # generation 1: a alone owns everything; b joins
    plan = assign({"a": meta(ps, 1), "b": meta()}, ps)
    assert len(plan.target["a"]) == 3 and len(plan.target["b"]) == 3
    assert plan.now["a"] == plan.target["a"]  # a keeps half (sticky)
    assert plan.now["b"] == frozenset()  # the other half is withheld until a let go of it
    assert plan.withheld == plan.target["b"]
    # generation 2: a rejoined owning only its half
    plan2 = assign({"a": meta(plan.now["a"], 2), "b": meta(frozenset(), 2)}, ps)
    assert plan2.now == plan.target and not plan2.withheld


def test_new_partitions_are_dealt_without_moving_owned_ones() -> None:
    ps = parts(t=4)
    first = assign({"a": meta(), "b": meta()}, ps).now
    grown = ps | parts(u=4)
    plan = assign({"a": meta(first["a"], 1), "b": meta(first["b"], 1)}, grown)
    assert plan.now["a"] >= first["a"] and plan.now["b"] >= first["b"]
    assert sorted(len(s) for s in plan.now.values()) == [4, 4]


def test_conflicting_claims_go_to_the_newest_generation() -> None:
    ps = parts(t=2)
    plan = assign({"a": meta({("t", 0)}, 3), "b": meta({("t", 0)}, 5)}, ps)
    assert ("t", 0) in plan.now["b"] and ("t", 0) not in plan.now["a"]


def test_unknown_owned_set_counts_as_free() -> None:
    ps = parts(t=4)
    plan = assign({"a": meta(None), "b": meta(None)}, ps)
    assert not plan.withheld and frozenset().union(*plan.now.values()) == ps


@settings(max_examples=200, deadline=None)
@given(
    n_members=st.integers(1, 6),
    topics=st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 9), min_size=0, max_size=4),
    seed=st.integers(0, 10_000),
)
def test_invariants_and_convergence(n_members: int, topics: dict[str, int], seed: int) -> None:
    """Any claimed ownership: targets balanced and complete, no partition given to two
    members, and a few generations of 'revoke, then rejoin' converge to the target."""
    ps = parts(**topics)
    rng = random.Random(seed)
    ids = [f"m{i}" for i in range(n_members)]
    owned = {m: frozenset(tp for tp in ps if rng.random() < 0.3) for m in ids}
    gen = 1
    for _ in range(4):
        members = {m: meta(owned[m], gen) for m in ids}
        plan = assign(members, ps)
        sizes = [len(s) for s in plan.target.values()]
        assert max(sizes) - min(sizes) <= 1
        assert frozenset().union(*plan.target.values()) == ps
        given_out = [tp for s in plan.now.values() for tp in s]
        assert len(given_out) == len(set(given_out))  # never two owners
        for m in ids:
            assert plan.now[m] <= plan.target[m]
        owned = dict(plan.now)
        gen += 1
        if not plan.withheld:
            break
    assert not plan.withheld and plan.now == plan.target


def test_encodings_round_trip_and_reject_garbage() -> None:
    ps = parts(orders=40, x=1) - {("orders", 7)}
    assert from_ranges(to_ranges(ps)) == ps
    assert to_ranges(ps)["orders"] == [[0, 6], [8, 39]]
    m = MemberMetadata("host-1", 42, ps, 7, "abc")
    assert MemberMetadata.decode(m.encode()) == m
    assert MemberMetadata.decode(MemberMetadata(owned=None).encode()).owned is None
    a = Assignment(ps, 7, "leader-id", 2)
    assert Assignment.decode(a.encode()) == a
    assert Assignment.decode(b"") == Assignment()
    for junk in (b"\x00\x01", b"[]", b'{"v": 2}', b'{"v": 1, "partitions": {"t": [[3, 1]]}}'):
        with pytest.raises(AssignmentDecodeError):
            Assignment.decode(junk)


def test_too_many_owned_partitions_for_join_metadata() -> None:
    scattered = frozenset((f"topic-{i}", p) for i in range(200) for p in range(0, 20, 2))
    m = MemberMetadata("h", 1, scattered, 1)
    assert not m.fits()
    with pytest.raises(ValueError):
        m.encode()
    assert MemberMetadata("h", 1, None, 1).fits()
