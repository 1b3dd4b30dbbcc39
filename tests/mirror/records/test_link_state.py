"""Link-state and last-contact records: encodings and the fold that decides what the daemon obeys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirror.records.link_state import (
    Ack,
    Contact,
    LinkState,
    StateLog,
    contact_changed,
    last_contact_topic,
    link_state_topic,
)
from mirror.config.policy import is_internal_topic

ends = st.dictionaries(st.text("abc.-", min_size=1, max_size=8),
                       st.dictionaries(st.integers(0, 50), st.integers(0, 2**40), max_size=4), max_size=4)


@given(ends, st.sampled_from(["normal", "paused", "failed-over", "failing-back", "reversed"]))
def test_state_round_trips(promoted, state) -> None:
    s = LinkState(state, 123, by="me", reason="why", promoted=promoted, details={"topics": ["a"]})
    key, value = s.encode()
    assert key == b"state" and LinkState.decode(value) == s


@given(ends, st.integers(0, 2**45))
def test_contact_round_trips(source_ends, at) -> None:
    c = Contact(at, source_ends)
    assert Contact.decode(c.encode()[1]) == c


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError):
        LinkState("exploded")


def test_only_normal_copies() -> None:
    assert LinkState("normal").copying
    assert not any(LinkState(s).copying for s in ("paused", "failing-over", "failed-over", "failing-back", "reversed"))


def test_fold_keeps_the_newest_state_and_ack_and_skips_garbage() -> None:
    log = StateLog()
    assert log.state.state == "normal"  # no record yet: a fresh link copies
    log.apply(*LinkState("failing-over", 1).encode())
    log.apply(*Ack("failing-over", 1, 2).encode())
    log.apply(b"state", b"{not json")
    log.apply(b"state", json.dumps({"v": 9, "state": "from-the-future"}).encode())
    log.apply(b"other", b"{}")
    log.apply(None, None)
    assert log.state.state == "failing-over" and log.ack == Ack("failing-over", 1, 2)
    log.apply(*LinkState("failed-over", 3).encode())
    assert log.state.state == "failed-over"


def test_contact_written_when_ends_move_or_to_refresh() -> None:
    prev = Contact(1000, {"t": {0: 5}})
    assert contact_changed(None, {"t": {0: 5}}, 1000, 30_000)
    assert not contact_changed(prev, {"t": {0: 5}}, 2000, 30_000)
    assert contact_changed(prev, {"t": {0: 6}}, 2000, 30_000)
    assert contact_changed(prev, {"t": {0: 5}}, 31_000, 30_000)


def test_topics_are_internal_so_never_mirrored() -> None:
    assert is_internal_topic(link_state_topic("east-to-west"))
    assert is_internal_topic(last_contact_topic("east-to-west"))
