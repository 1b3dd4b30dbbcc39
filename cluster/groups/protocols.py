"""Choosing the group's protocol (assignor) from what its members offer, as Kafka does.

Separate from the state machine because it is a pure function of the member list: every
member must support the chosen protocol, and among those candidates each member votes for
the first one in its own preference order; the most votes win. Kafka breaks ties
arbitrarily; here the leader's (else the first member's) preference order decides, so
tests are deterministic.
"""

from __future__ import annotations

from typing import Sequence

from cluster.groups.model import Member


def select_protocol(members: Sequence[Member], leader: Member | None = None) -> str | None:
    if not members:
        return None
    candidates = set(members[0].protocol_names())
    for m in members[1:]:
        candidates &= set(m.protocol_names())
    if not candidates:
        return None
    votes = {c: 0 for c in candidates}
    for m in members:
        votes[next(p for p in m.protocol_names() if p in candidates)] += 1
    first = leader if leader is not None else members[0]
    order = {p: i for i, p in enumerate(first.protocol_names())}
    return max(candidates, key=lambda c: (votes[c], -order[c]))


def supports_any(members: Sequence[Member], protocols: tuple[tuple[str, bytes], ...]) -> bool:
    """Whether a joiner offering `protocols` shares at least one with every current member."""
    if not members:
        return bool(protocols)
    return any(all(name in m.protocol_names() for m in members) for name, _ in protocols)
